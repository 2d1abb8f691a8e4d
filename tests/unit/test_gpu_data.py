"""data/gpu/: the recordings notebooks 03, 06 and 07 read, and the command that makes them."""

import gzip
import json
import os
import subprocess
import sys

import pytest

from ptdeploy.paths import DATA_DIR, REPO_ROOT

GPU = DATA_DIR / "gpu"
PROVENANCE = {"gpu", "torch", "cuda", "python", "date", "commit", "command"}
PROFILE_KEYS = {
    "self_cpu_total_ms",
    "mask_indices_self_cpu_ms",
    "mask_indices_cpu_total_ms",
    "memcpy_count",
    "memcpy_ms",
    "mask_indices_self_cpu_memory_mib",
    "big_copies",
}


def load(name):
    data = json.loads((GPU / name).read_text())
    assert set(data["provenance"]) == PROVENANCE
    assert "GPU" in data["provenance"]["gpu"] or "NVIDIA" in data["provenance"]["gpu"]
    return data


def test_profiler_recording_has_every_version_at_both_sizes():
    data = load("profiler_cuda.json")
    assert [run["mask_side"] for run in data["runs"]] == [256, 500]
    for run in data["runs"]:
        assert set(run["versions"]) == {"original", "float32", "nonzero"}
        for numbers in run["versions"].values():
            assert set(numbers) == PROFILE_KEYS
        # What the GPU shows: float32 halves the round trip; nonzero has no big copy at all.
        original, float32, nonzero = (run["versions"][v] for v in ("original", "float32", "nonzero"))
        assert float32["mask_indices_self_cpu_memory_mib"] == pytest.approx(
            original["mask_indices_self_cpu_memory_mib"] / 2
        )
        assert original["big_copies"] == float32["big_copies"] == 2 and nonzero["big_copies"] == 0
    assert data["notebook"]["ran"] and data["notebook"]["device_printed"] == "cuda"


def test_trace_recording_is_a_real_gpu_trace():
    meta = load("ddp_1rank.json")
    trace = GPU / meta["file"]
    assert trace.stat().st_size == meta["bytes"]
    with gzip.open(trace) as f:
        data = json.load(f)
    # DDP over NCCL, world size 1: HTA reads the rank from here. (One rank has nothing to all-reduce
    # with, so the trace holds compute kernels and copies, no NCCL kernels.)
    assert data["distributedInfo"]["rank"] == 0 and data["distributedInfo"]["backend"] == "nccl"
    kernels = [e for e in data["traceEvents"] if e.get("cat") == "kernel"]
    assert len(kernels) == meta["kernels"] > 0


def test_cpp_recording_classifies_the_cat_on_cuda():
    data = load("cpp_cuda.json")
    assert data["link"] in {"PACKAGE", "DIRECT"}
    assert data["python_top5"][0][:2] == ["n02124075", "Egyptian_cat"]
    for name in ("torchscript_cuda", "torchscript_cpu"):
        result = data["results"][name]
        assert result["top5"][0][1:3] == ["n02124075", "Egyptian_cat"]
        assert len(result["latency_ms"]) > 0 and result["median_ms"] > 0


@pytest.mark.slow
@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="checks the refusal on a machine without CUDA"
)
def test_gpu_record_refuses_without_cuda(tmp_path):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, "scripts/gpu_record.py", "--out", str(tmp_path)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "needs a CUDA GPU" in result.stderr
    assert list(tmp_path.iterdir()) == []
