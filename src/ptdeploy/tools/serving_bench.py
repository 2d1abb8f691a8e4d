"""Serving benchmark (`make bench-serve`): the same model behind several servers, driven by wrk.

    python -m ptdeploy.tools.serving_bench [--rounds 2] [--save data/bench/serve.json]

Prints a table and writes outputs/bench_serve/results.json; with --save also that file (notebook 01
plots data/bench/serve.json). About 5 minutes per round.

Each server is started on a free loopback port, driven with wrk (a compiled load generator: one
thread, so it takes at most one core from the server) at each concurrency for a fixed time, posting
data/cat.jpg as multipart `file`, then stopped. Right after each server, the raw in-process pipeline
of the same runtime (decode + preprocess + forward; best of batch size, intra-op threads and concurrent
streams) is measured: the ceiling a server of that runtime can reach on this machine. Rounds
interleave servers and pipelines, so a load spike lands on several of them, not on one.

Serving efficiency = a server's best req/s / its runtime's raw img/s (median over rounds). It must be
at most 1 up to noise; a value above 1.05 means the baseline was measured wrong, and is flagged
rather than printed as a ratio.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests
import torch
from tqdm.auto import tqdm

from ptdeploy import system_packages
from ptdeploy.paths import CAT_JPG, output_dir
from ptdeploy.resources import usable_cpus
from ptdeploy.tools import TUTORIAL_APP, processes
from ptdeploy.tools.provenance import stamp

CORES = usable_cpus()  # CPU_LIMIT / cgroup quota / affinity: what this machine really gives us

# wrk's script: a multipart POST of the file named by BENCH_FILE, and a JSON summary when done.
WRK_SCRIPT = r"""
local f = assert(io.open(os.getenv("BENCH_FILE"), "rb"))
local data = f:read("*all")
f:close()
local boundary = "----ptdeploy-bench-boundary"
wrk.method = "POST"
wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
wrk.body = "--" .. boundary .. "\r\n"
  .. 'Content-Disposition: form-data; name="file"; filename="cat.jpg"\r\n'
  .. "Content-Type: image/jpeg\r\n\r\n" .. data .. "\r\n--" .. boundary .. "--\r\n"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, '
    .. '"timeouts": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def servers() -> dict[str, dict]:
    """name -> how to start it (keyword arguments for processes.start) and which runtime it uses."""
    tutorial_dir = output_dir("bench_serve", "tutorial")
    shutil.copy(TUTORIAL_APP, tutorial_dir / "app.py")
    gunicorn = processes.gunicorn_command()
    base = {"PTDEPLOY_LOG_LEVEL": "warning", "MALLOC_ARENA_MAX": "2", "PTDEPLOY_THREADS": "8"}

    def production(runtime: str, workers: int = 1, batching: bool = False) -> dict:
        env = {
            **base,
            "PTDEPLOY_RUNTIME": runtime,
            "PTDEPLOY_BATCHING": "true" if batching else "false",
            "PTDEPLOY_WORKERS": str(workers),
            "PTDEPLOY_MODEL_THREADS": str(max(1, CORES // workers)),
        }
        return {"command": gunicorn, "env": env, "workers": workers, "runtime": runtime}

    return {
        "tutorial (flask run)": {
            "command": [sys.executable, "-m", "flask", "run"],
            "env": {"FLASK_APP": "app.py", "FLASK_RUN_PORT": "{port}"},
            "cwd": tutorial_dir,
            "ready_path": "/",
            "any_answer": True,
            "runtime": "eager",
        },
        "production, eager": production("eager"),
        "production, ONNX Runtime": production("onnxruntime"),
        f"production, ONNX Runtime, {CORES} workers": production("onnxruntime", workers=CORES),
        # what the metrics and the request log cost (ptdeploy.serving.metrics): the row above without them
        "production, ONNX Runtime, no metrics or log": {
            **production("onnxruntime"),
            "env": {
                **production("onnxruntime")["env"],
                "PTDEPLOY_METRICS": "false",
                "PTDEPLOY_ACCESS_LOG": "false",
            },
        },
        "production, ONNX Runtime + batching": production("onnxruntime", batching=True),
        "production, ONNX Runtime, behind nginx": {
            **production("onnxruntime"),
            "command": [sys.executable, "-m", "ptdeploy.serving.proxy"],
        },
        # Scaling out: as many Ray Serve replicas as the gunicorn configuration above has workers.
        f"Ray Serve, ONNX Runtime, {CORES} replicas": {
            "command": [sys.executable, "-m", "ptdeploy.serving.ray_app"],
            "env": {**base, "PTDEPLOY_RUNTIME": "onnxruntime", "PTDEPLOY_REPLICAS": str(CORES)},
            "runtime": "onnxruntime",
        },
        "LitServe, ONNX Runtime": {
            "command": [sys.executable, "-m", "ptdeploy.tools.litserve_app"],
            "env": {**base, "PTDEPLOY_RUNTIME": "onnxruntime"},
            "runtime": "onnxruntime",
        },
    }


def wait_for_workers(url: str, count: int, timeout: float = 180) -> None:
    """Until ``count`` different worker processes have said "ready" on /health."""
    ready, deadline = set(), time.monotonic() + timeout
    while len(ready) < count:
        answer = requests.get(url + "/health", timeout=10)
        if answer.ok:
            ready.add(answer.json()["pid"])
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(ready)} of {count} workers ready after {timeout} s")
        time.sleep(0.05)


def warm_up(url: str, timeout: float = 180) -> None:
    """One successful prediction (a worker may still be loading its model or exporting to ONNX)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.post(url, files={"file": ("cat.jpg", CAT_JPG.read_bytes())}, timeout=60).ok:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer during warm-up")
        time.sleep(0.2)


def wrk(url: str, concurrency: int, seconds: float) -> dict:
    """Drive ``url`` with wrk for ``seconds`` at ``concurrency`` connections; its summary as a dict."""
    script = output_dir("bench_serve") / "multipart.lua"
    script.write_text(WRK_SCRIPT)
    cmd = [
        system_packages.require("wrk"),
        "-t1",
        f"-c{concurrency}",
        f"-d{seconds:g}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        url,
    ]
    env = dict(os.environ, BENCH_FILE=str(CAT_JPG))
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60, check=True)
    line = next(line for line in out.stdout.splitlines() if line.startswith("BENCH "))
    summary = json.loads(line.removeprefix("BENCH "))
    ok = summary["requests"] - summary["non_2xx"]
    return {
        "concurrency": concurrency,
        "requests": summary["requests"],
        "errors": summary["non_2xx"] + summary["socket_errors"] + summary["timeouts"],
        "req_per_s": ok / (summary["duration_us"] / 1e6),
        "p50_ms": summary["p50_us"] / 1000,
        "p99_ms": summary["p99_us"] / 1000,
    }


def raw_pipeline(runtime: str, batch_sizes=(1, 8), streams=(1, 4), seconds: float = 2.0) -> dict:
    """In-process img/s of decode + preprocess + forward on ``runtime``, per (threads, streams, batch).

    Measured the way a server runs: ``streams`` Python threads each loop over the pipeline at once, as
    concurrent requests do (decoding and ONNX Runtime release the GIL, so one stream's decode overlaps
    another's forward pass); with one stream it is the sequential pipeline, which a server can beat.
    Both 1 intra-op thread and one per core are tried: when anything else wants a core, threads of one
    forward pass wait on each other and the multi-threaded run can be far slower. The ceiling is the best.
    """
    from concurrent.futures import ThreadPoolExecutor

    from ptdeploy.serving.images import decode_image
    from ptdeploy.serving.predictor import Predictor
    from ptdeploy.serving.runtimes import load_runtime
    from ptdeploy.serving.settings import DEFAULTS

    payload = CAT_JPG.read_bytes()
    before = torch.get_num_threads()
    result = {}
    try:
        for threads in sorted({1, CORES}):
            torch.set_num_threads(threads)
            predictor = Predictor(load_runtime(runtime, DEFAULTS["CLASSIFIER"], threads), runtime)

            def step(n, predictor=predictor):
                size = predictor.resize_side
                images = [decode_image(payload, DEFAULTS["MAX_IMAGE_PIXELS"], size) for _ in range(n)]
                predictor.predict_batch([predictor.prepare(image) for image in images])

            def loop(n, deadline, step=step):
                done = 0
                while time.perf_counter() < deadline:
                    step(n)
                    done += n
                return done

            for n in batch_sizes:
                step(n)  # warm-up
                for k in streams:
                    start = time.perf_counter()
                    with ThreadPoolExecutor(k) as pool:
                        done = sum(pool.map(loop, [n] * k, [start + seconds] * k))
                    result[f"{threads} thread(s), {k} stream(s), batch {n}"] = done / (
                        time.perf_counter() - start
                    )
    finally:
        torch.set_num_threads(before)
    return result


def provenance() -> dict:
    return {
        **stamp(),
        "cores": CORES,
        "torch": torch.__version__.split("+")[0],
        "load_generator": "wrk -t1 (one thread), loopback, same machine",
        "file": CAT_JPG.name,
    }


def run(
    concurrencies=(1, 4, 16),
    seconds: float = 8.0,
    rounds: int = 1,
    progress: bool = True,
    only: list[str] | None = None,
) -> dict:
    """Every server (or those named in `only`) at every concurrency, each followed by its runtime's
    raw pipeline; `rounds` times."""
    plan = {name: spec for name, spec in servers().items() if only is None or name in only}
    results = {
        "provenance": {**provenance(), "load_before": round(os.getloadavg()[0], 1)},
        "seconds": seconds,
        "servers": {name: {"runtime": spec["runtime"], "runs": []} for name, spec in plan.items()},
        "raw": {},
    }
    raw_samples: dict[str, list[float]] = {}
    steps = rounds * len(plan) * (len(concurrencies) + 1)
    with tqdm(total=steps, desc="serving benchmark", disable=not progress) as bar:
        for _ in range(rounds):
            for name, spec in plan.items():
                kwargs = {k: v for k, v in spec.items() if k not in ("runtime", "workers")}
                try:
                    server = processes.start(timeout=300, **kwargs)
                except (RuntimeError, TimeoutError) as exc:
                    results["servers"][name]["error"] = f"did not start: {exc}"
                    bar.update(len(concurrencies))
                else:
                    try:
                        if spec.get("workers", 1) > 1:
                            wait_for_workers(server.url, spec["workers"])
                        warm_up(server.url + "/predict")
                        for c in concurrencies:
                            results["servers"][name]["runs"].append(wrk(server.url + "/predict", c, seconds))
                            bar.update()
                    except (TimeoutError, subprocess.SubprocessError, requests.RequestException) as exc:
                        results["servers"][name]["error"] = (
                            f"{type(exc).__name__}: {exc}"  # the rest still run
                        )
                    finally:
                        server.stop()
                best = max(raw_pipeline(spec["runtime"]).values())
                raw_samples.setdefault(spec["runtime"], []).append(best)
                bar.update()
    results["provenance"]["load_after"] = round(os.getloadavg()[0], 1)
    for runtime, samples in raw_samples.items():
        results["raw"][runtime] = {"img_per_s": statistics.median(samples), "samples": samples}
    summarize(results)
    return results


def summarize(results: dict) -> None:
    """Per server: median req/s, p50 and p99 per concurrency; efficiency at its best concurrency."""
    for entry in results["servers"].values():
        if not entry["runs"]:
            entry.update(summary={}, best_req_per_s=None, efficiency=None, baseline_suspect=False)
            continue
        by_c: dict[int, list[dict]] = {}
        for r in entry["runs"]:
            by_c.setdefault(r["concurrency"], []).append(r)
        entry["summary"] = {
            c: {
                "req_per_s": statistics.median(r["req_per_s"] for r in rs),
                "p50_ms": statistics.median(r["p50_ms"] for r in rs),
                "p99_ms": statistics.median(r["p99_ms"] for r in rs),
                "errors": sum(r["errors"] for r in rs),
            }
            for c, rs in sorted(by_c.items())
        }
        best = max(s["req_per_s"] for s in entry["summary"].values())
        raw = results["raw"][entry["runtime"]]["img_per_s"]
        entry["best_req_per_s"] = best
        entry["efficiency"] = best / raw if best <= 1.05 * raw else None
        entry["baseline_suspect"] = best > 1.05 * raw


def table(results: dict) -> str:
    head = f"{'server':42} {'conc':>4} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}"
    lines = [head]
    for name, entry in results["servers"].items():
        if "error" in entry:
            lines.append(f"{name:42} failed: {entry['error']}")
        if not entry["runs"]:
            continue
        for c, s in entry["summary"].items():
            lines.append(
                f"{name:42} {c:>4} {s['req_per_s']:>7.1f} {s['p50_ms']:>8.1f} {s['p99_ms']:>8.1f} "
                f"{s['errors']:>6}"
            )
        eff = entry["efficiency"]
        note = (
            "baseline suspect (server beat its raw pipeline)" if entry["baseline_suspect"] else f"{eff:.2f}"
        )
        lines.append(f"{'':42} efficiency at best concurrency: {note}")
    for runtime, raw in results["raw"].items():
        lines.append(f"raw in-process pipeline, {runtime}: {raw['img_per_s']:.1f} img/s (median of rounds)")
    return "\n".join(lines)


def save(results: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n")
    return path


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8, help="wrk's duration per server and concurrency")
    parser.add_argument("--rounds", type=int, default=1, help="rounds over every server (interleaved)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--only", nargs="+", help="run only these servers (names as in the table)")
    parser.add_argument("--save", type=Path, help="also write the results here (e.g. data/bench/serve.json)")
    args = parser.parse_args(argv)
    results = run(tuple(args.concurrency), args.seconds, args.rounds, only=args.only)
    print(table(results))
    for path in [output_dir("bench_serve") / "results.json", *([args.save] if args.save else [])]:
        print(f"saved {save(results, path)}")


if __name__ == "__main__":
    main()
