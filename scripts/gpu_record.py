"""Record, on a CUDA machine, what notebooks 03, 06 and 07 show from a real GPU; write it into data/gpu/.

    make gpu-record                     # or: python scripts/gpu_record.py [--out data/gpu] [--skip ...]

The notebooks never need a GPU: they read these small files. Each JSON file carries its provenance
(GPU, torch, CUDA, Python, date, commit). What is recorded:

* ``profiler_cuda.json``: notebook 06's three versions of the profiler tutorial's module on the GPU, at
  the notebook's mask size and at the tutorial's (500^3), medians of interleaved rounds;
* ``06_profiler.cuda.ipynb``: notebook 06 itself, executed end to end on the GPU (needs nbclient);
* ``ddp_1rank.pt.trace.json.gz`` + ``ddp_1rank.json``: a real one-rank DDP/NCCL trace for notebook 07;
* ``cpp_cuda.json``: notebook 03's C++ classifiers with ``--device cuda`` (and on that machine's CPU).

Without CUDA it says so and exits with status 1. It takes a few minutes on one GPU.
"""

import argparse
import gzip
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "src"))  # ptdeploy, when the package is not installed (a bare GPU box)

from ptdeploy.lessons import cpp_build, profiling  # noqa: E402
from ptdeploy.resources import usable_cpus  # noqa: E402
from ptdeploy.tools.provenance import stamp  # noqa: E402

PARTS = ("profiler", "notebook", "trace", "cpp")


def provenance() -> dict:
    recorded = stamp()
    return {
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "date": recorded["date"],
        "commit": recorded["commit"],
        "command": "make gpu-record",
    }


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {path}", flush=True)


# --- notebook 06: the profiler tutorial's module on the GPU -------------------------------------------


def profile_version(version, side: int) -> dict:
    """One profiled forward pass of one version on the GPU; the numbers notebook 06 reads."""
    from torch.profiler import ProfilerActivity, profile

    model, input, mask = profiling.make_inputs(version, "cuda", side)
    model(input, mask)  # warm-up: CUDA context, cuBLAS handles, the caching allocator
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], profile_memory=True) as prof:
        model(input, mask)
        torch.cuda.synchronize()
    # With CUDA activity a record_function label is also a GPU annotation row: take the CPU one.
    averages = [e for e in prof.key_averages() if e.device_type == torch.autograd.DeviceType.CPU]
    rows = {e.key: e for e in averages}
    label = rows["MASK INDICES"]
    memcpy = rows.get("cudaMemcpyAsync")
    result = {
        "self_cpu_total_ms": prof.key_averages().self_cpu_time_total / 1000,
        "mask_indices_self_cpu_ms": label.self_cpu_time_total / 1000,
        "mask_indices_cpu_total_ms": label.cpu_time_total / 1000,
        "memcpy_count": memcpy.count if memcpy else 0,
        "memcpy_ms": memcpy.cpu_time_total / 1000 if memcpy else 0.0,
        "mask_indices_self_cpu_memory_mib": label.self_cpu_memory_usage / 2**20,
        "big_copies": len(profiling.big_copies(prof)),
    }
    del model, input, mask, prof
    torch.cuda.empty_cache()
    return result


def record_profiler(rounds: int = 3) -> dict:
    runs = []
    for side in (profiling.MASK_SIDE, 500):
        samples = {v.name: [] for v in profiling.VERSIONS}
        for _ in range(rounds):  # interleaved: original, float32, nonzero, original, ...
            for version in profiling.VERSIONS:
                samples[version.name].append(profile_version(version, side))
        versions = {}
        for name, rows in samples.items():
            versions[name] = {
                key: (
                    statistics.median(r[key] for r in rows)
                    if isinstance(rows[0][key], float)
                    else rows[0][key]
                )
                for key in rows[0]
            }
        runs.append({"mask_side": side, "versions": versions, "rounds": rounds})
        print(f"profiled mask side {side}: {json.dumps(versions)}", flush=True)
    return {"runs": runs}


def run_notebook_06(out: Path) -> dict:
    """Execute notebook 06 end to end on the GPU (it picks CUDA when there is one); keep the result."""
    from ptdeploy.tools import notebooks

    path = REPO_ROOT / "notebooks" / "06_profiler.ipynb"
    result, executed = notebooks.execute(path)
    import nbformat

    nbformat.write(executed, out / "06_profiler.cuda.ipynb")
    text = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    device = "cuda" if "device: cuda" in text else "cpu" if "device: cpu" in text else "?"
    print(f"notebook 06 on the GPU: ok={result.ok} in {result.seconds:.1f} s, {device} {result.error}")
    return {
        "ran": result.ok,
        "seconds": round(result.seconds, 1),
        "device_printed": device,
        "error": result.error,
    }


# --- notebook 07: a real DDP trace -------------------------------------------------------------------


def record_trace(out: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            str(REPO_ROOT / "scripts" / "record_gpu_trace.py"),
            "--gpus",
            "1",
            "--out",
            tmp,
        ]
        subprocess.run(cmd, check=True, timeout=600)
        traces = sorted(Path(tmp).rglob("*.json*"))
        if len(traces) != 1:
            raise RuntimeError(f"expected one trace, found {traces}")
        dest = out / "ddp_1rank.pt.trace.json.gz"
        if traces[0].suffix == ".gz":
            shutil.copyfile(traces[0], dest)
        else:
            dest.write_bytes(gzip.compress(traces[0].read_bytes(), mtime=0))
    with gzip.open(dest) as f:
        events = json.load(f)["traceEvents"]
    kernels = sum(1 for e in events if e.get("cat") == "kernel")
    print(f"trace: {dest.stat().st_size} bytes, {len(events)} events, {kernels} kernels")
    return {"file": dest.name, "bytes": dest.stat().st_size, "events": len(events), "kernels": kernels}


# --- notebook 03: the C++ classifiers on the GPU -----------------------------------------------------


def cpp_result(program: Path, model: Path, inputs: Path, labels: Path, device: str, runs: int) -> dict:
    proc = cpp_build.run(program, model, inputs, labels, runs, "--device", device, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{program.name} --device {device} exited {proc.returncode}: {proc.stderr[-2000:]}"
        )
    threads, times = cpp_build.parse_latencies(proc.stdout)
    return {
        "top5": [list(row) for row in cpp_build.parse_top5(proc.stdout)],
        "threads": threads,
        "latency_ms": [round(t, 4) for t in times],
        "median_ms": round(statistics.median(times), 4),
    }


def record_cpp(work: Path) -> dict:
    from PIL import Image

    from ptdeploy.lessons.classifier import load_classifier
    from ptdeploy.paths import CAT_JPG

    start = time.perf_counter()
    build = cpp_build.build(jobs=usable_cpus(), echo=False)
    print(f"C++ build: linked via {build.torch_link} in {time.perf_counter() - start:.0f} s", flush=True)
    classifier = load_classifier()
    cat = classifier.preprocess(Image.open(CAT_JPG))
    model_pt, cat_pt, labels_txt = work / "classifier_traced.pt", work / "cat_input.pt", work / "labels.txt"
    with torch.no_grad():
        torch.jit.trace(classifier.model, cat).save(model_pt)
    torch.save(cat, cat_pt)
    labels_txt.write_text("".join(f"{w} {n}\n" for w, n in (classifier.labels[i] for i in range(1000))))
    with torch.no_grad():
        probs = classifier.model.cuda()(cat.cuda()).softmax(dim=1)[0].cpu()
    top = probs.topk(5)
    python_top5 = [[*classifier.labels[i], p] for i, p in zip(top.indices.tolist(), top.values.tolist())]
    classifier.model.cpu()
    results = {
        "torchscript_cuda": cpp_result(build.programs["classify"], model_pt, cat_pt, labels_txt, "cuda", 100),
        "torchscript_cpu": cpp_result(build.programs["classify"], model_pt, cat_pt, labels_txt, "cpu", 30),
    }
    try:  # an AOTInductor package compiled for the GPU
        start = time.perf_counter()
        model = classifier.model.cuda().eval()
        exported = torch.export.export(model, (cat.cuda(),))
        package = work / "classifier_cuda.pt2"
        torch._inductor.aoti_compile_and_package(exported, package_path=str(package))
        print(f"AOTInductor compile for CUDA: {time.perf_counter() - start:.0f} s", flush=True)
        results["aoti_cuda"] = cpp_result(
            build.programs["aoti_classify"], package, cat_pt, labels_txt, "cuda", 100
        )
    except Exception:
        print("AOTInductor for CUDA failed:\n" + traceback.format_exc(), flush=True)
    for name, r in results.items():
        print(f"{name}: top-1 {r['top5'][0][2]} median {r['median_ms']:.3f} ms", flush=True)
    return {"link": build.torch_link, "python_top5": python_top5, "results": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "data" / "gpu")
    parser.add_argument("--skip", nargs="*", choices=PARTS, default=[], help="parts not to record")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu-record needs a CUDA GPU, and torch sees none here; nothing was recorded.", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    prov = provenance()
    print(f"recording on {prov['gpu']} with torch {prov['torch']}", flush=True)
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        steps = {
            "profiler": lambda: {"profiler": record_profiler()},
            "notebook": lambda: {"notebook": run_notebook_06(args.out)},
            "trace": lambda: {"trace": record_trace(args.out)},
            "cpp": lambda: {"cpp": record_cpp(Path(tmp))},
        }
        found = {}
        for part, step in steps.items():
            if part in args.skip:
                continue
            try:
                found.update(step())
            except Exception:
                print(f"{part} failed:\n{traceback.format_exc()}", flush=True)
                failed.append(part)
    if "profiler" in found:
        write_json(
            args.out / "profiler_cuda.json",
            {
                "provenance": prov,
                **found["profiler"],
                **({"notebook": found["notebook"]} if "notebook" in found else {}),
            },
        )
    if "trace" in found:
        write_json(args.out / "ddp_1rank.json", {"provenance": prov, **found["trace"]})
    if "cpp" in found:
        write_json(args.out / "cpp_cuda.json", {"provenance": prov, **found["cpp"]})
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
