"""Synthetic multi-rank traces: deterministic, in the form HTA reads, and HTA agrees with their ground truth.

The tolerances are stated per check in ptdeploy.lessons.htacheck.comparison_table (0.05-0.1 percentage points
for percentages, exact for counts and the straggler rank, 0.01 GB/s for bandwidth).
"""

import gzip
import json
import logging
import os
import re
import subprocess
import sys
from dataclasses import replace

import pytest
from hta.trace_analysis import TraceAnalysis
from hta.utils.utils import get_kernel_type

from ptdeploy.lessons import tracegen
from ptdeploy.lessons.htacheck import comparison_table
from ptdeploy.paths import REPO_ROOT

logging.getLogger("hta").setLevel(logging.ERROR)
SMALL = tracegen.JobConfig(steps=4)  # 3 analysed steps: enough for every analysis, quicker to parse


def load(path):
    with gzip.open(path, "rt") as fh:
        return json.load(fh)


@pytest.fixture(scope="module")
def default_traces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("traces")
    return folder, tracegen.generate(folder, tracegen.JobConfig())


def test_same_seed_same_bytes_other_seed_other_trace(tmp_path):
    a, b, c = (tmp_path / n for n in "abc")
    tracegen.generate(a, SMALL)
    tracegen.generate(b, SMALL)
    tracegen.generate(c, replace(SMALL, seed=1))
    name = "rank1.pt.trace.json.gz"
    assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / name).read_bytes() != (c / name).read_bytes()


def test_traces_carry_what_hta_reads(default_traces):
    folder, _ = default_traces
    cfg = tracegen.JobConfig()
    files = sorted(folder.glob("*.pt.trace.json.gz"))
    assert len(files) == cfg.ranks
    for rank, path in enumerate(files):
        with gzip.open(path, "rt") as fh:
            head = fh.read(400)
        assert re.search(r'"rank":\s+(\d+)', head).group(1) == str(rank)  # HTA's own regex
        events = load(path)["traceEvents"]
        steps = [e["name"] for e in events if e.get("name", "").startswith("ProfilerStep#")]
        assert steps == [f"ProfilerStep#{s}" for s in range(cfg.first_step, cfg.first_step + cfg.steps)]
        gpu = [e for e in events if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")]
        runtime = {e["args"]["correlation"]: e for e in events if e.get("cat") == "cuda_runtime"}
        assert {e["args"]["stream"] for e in gpu} == {tracegen.COMPUTE_STREAM, tracegen.COMM_STREAM}
        for e in gpu:
            launch = runtime[e["args"]["correlation"]]
            assert launch["name"] in ("cudaLaunchKernel", "cudaMemcpyAsync", "cudaMemsetAsync")
            assert e["ts"] >= launch["ts"] + launch["dur"]  # a GPU op starts after its launch returns
        assert all(isinstance(e["ts"], int) for e in events)  # integer us: no rounding by HTA's parser
        kinds = {get_kernel_type(e["name"]) for e in gpu}
        assert kinds == {"COMPUTATION", "COMMUNICATION", "MEMORY"}


def test_streams_never_run_two_ops_at_once(default_traces):
    folder, _ = default_traces
    for path in folder.glob("*.gz"):
        events = load(path)["traceEvents"]
        for stream in (tracegen.COMPUTE_STREAM, tracegen.COMM_STREAM):
            ops = sorted(
                (e["ts"], e["ts"] + e["dur"])
                for e in events
                if e.get("ph") == "X" and e.get("args", {}).get("stream") == stream
            )
            assert all(end <= next_start for (_, end), (next_start, _) in zip(ops, ops[1:]))


@pytest.mark.slow
def test_hta_agrees_with_the_ground_truth(default_traces):
    folder, truth = default_traces
    table = comparison_table(TraceAnalysis(trace_dir=str(folder)), truth)
    assert table["as expected"].all(), table[~table["as expected"]].to_string()
    # the one expected difference: HTA calls the NCCL stream's wait for gradients host wait
    assert (table["expected"] == "differ").sum() == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    "change",
    [
        {"host_stall_us": 0},
        {"overlap": 0.2, "straggler_rank": 1},
        {"straggler_rank": None, "optimizer_kernels": 1, "slow_launches": 0},
        {"ranks": 8, "straggler_rank": 5, "kernel_gap_us": 5, "seed": 7},
    ],
    ids=lambda c: ",".join(c),
)
def test_hta_agrees_when_the_knobs_move(tmp_path, change):
    cfg = replace(SMALL, **change)
    truth = tracegen.generate(tmp_path, cfg)
    table = comparison_table(TraceAnalysis(trace_dir=str(tmp_path)), truth)
    assert table["as expected"].all(), table[~table["as expected"]].to_string()


@pytest.mark.slow
def test_knobs_move_the_matching_answer(tmp_path):
    def hta(cfg, check, rank=0):
        folder = tmp_path / str(abs(hash(cfg)))
        truth = tracegen.generate(folder, cfg)
        table = comparison_table(TraceAnalysis(trace_dir=str(folder)), truth)
        return table.set_index(["check", "rank"]).loc[(check, rank), "HTA"]

    host = "host wait, % of idle, stream 7"
    assert hta(replace(SMALL, host_stall_us=2000), host) > hta(replace(SMALL, host_stall_us=0), host) + 20
    overlap = "comm/comp overlap (%)"
    low, high = (hta(replace(SMALL, overlap=o), overlap, SMALL.straggler_rank) for o in (0.2, 0.8))
    assert low < 25 < 70 < high


def test_config_rejects_impossible_jobs():
    with pytest.raises(ValueError):
        tracegen.JobConfig(overlap=1.0)
    with pytest.raises(ValueError):
        tracegen.JobConfig(ranks=2, straggler_rank=2)
    with pytest.raises(ValueError):
        tracegen.JobConfig(steps=2)


@pytest.mark.slow
def test_recorder_without_gpu_says_so():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the script would record traces")
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "record_gpu_trace.py")],
        capture_output=True,
        text=True,
        env={**os.environ, "KINETO_LOG_LEVEL": "6"},
    )
    assert result.returncode == 1
    assert "no CUDA GPU is available" in result.stderr
