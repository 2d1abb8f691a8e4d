"""Serving benchmark: four servers of the same model, driven over loopback at several concurrencies.

(a) the tutorial's app under `flask run`, (b) ptdeploy.serving under gunicorn without batching,
(c) the same with dynamic batching, (d) LitServe with its batching. Next to them, in the same run,
the raw in-process pipeline (decode + preprocess + forward) at its best batch size: what the model
alone does on this machine. The load generator shares the CPU with the server, so on a 2-core
machine it costs the server some of its throughput; that is part of what is measured.
"""

import json
import os
import shutil
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import torch
from tqdm.auto import tqdm

from ptdeploy.paths import CAT_JPG, output_dir
from ptdeploy.servetools import TUTORIAL_APP, process

CORES = len(os.sched_getaffinity(0))


def servers() -> dict[str, dict]:
    """name -> keyword arguments for process.start."""
    tutorial_dir = output_dir("bench_serve", "tutorial")
    shutil.copy(TUTORIAL_APP, tutorial_dir / "app.py")
    quiet = {"PTDEPLOY_LOG_LEVEL": "warning"}
    return {
        "tutorial (flask run)": dict(
            command=[sys.executable, "-m", "flask", "run"],
            env={"FLASK_APP": "app.py", "FLASK_RUN_PORT": "{port}"},
            cwd=tutorial_dir,
            ready_path="/",
            any_answer=True,
        ),
        "gunicorn, no batching": dict(
            command=process.gunicorn_command(),
            # one single-threaded torch per core: the usual way to use CPUs without batching
            env={
                **quiet,
                "PTDEPLOY_BATCHING": "false",
                "PTDEPLOY_WORKERS": str(CORES),
                "PTDEPLOY_THREADS": "4",
            },
            workers=CORES,
        ),
        "gunicorn + batching": dict(
            command=process.gunicorn_command(),
            env={**quiet, "PTDEPLOY_WORKERS": "1", "PTDEPLOY_THREADS": "16"},
        ),
        "LitServe + batching": dict(
            command=[sys.executable, "-m", "ptdeploy.servetools.litserve_app"],
            env=quiet,
        ),
    }


def wait_for_workers(url: str, count: int, timeout: float = 120) -> None:
    """Until ``count`` different worker processes have said "ready" on /health (new connection each time)."""
    ready, deadline = set(), time.monotonic() + timeout
    while len(ready) < count:
        answer = requests.get(url + "/health", timeout=10)
        if answer.ok:
            ready.add(answer.json()["pid"])
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(ready)} of {count} workers ready after {timeout} s")
        time.sleep(0.05)


def drive(url: str, concurrency: int, count: int, max_seconds: float) -> dict:
    """POST data/cat.jpg ``count`` times from ``concurrency`` threads (or until ``max_seconds``)."""
    payload = CAT_JPG.read_bytes()
    local = threading.local()
    latencies, errors = [], 0
    lock = threading.Lock()

    def one(_):
        nonlocal errors
        if time.monotonic() > stop_at:
            return
        if not hasattr(local, "session"):  # a pool thread that did no warm-up request
            local.session = requests.Session()
        t0 = time.perf_counter()
        try:
            ok = local.session.post(url, files={"file": ("cat.jpg", payload)}, timeout=60).ok
        except requests.RequestException:
            ok = False
        with lock:
            latencies.append(time.perf_counter() - t0) if ok else None
            errors += not ok

    def warm_up(_):
        # One successful request per connection. With several gunicorn workers, /health said
        # ready for one of them; another may still be loading its model (503) for a few seconds.
        local.session = requests.Session()
        deadline = time.monotonic() + 120
        while not local.session.post(url, files={"file": ("cat.jpg", payload)}, timeout=60).ok:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer during warm-up")
            time.sleep(0.2)

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(warm_up, range(concurrency)))
        stop_at = time.monotonic() + max_seconds
        start = time.perf_counter()
        list(pool.map(one, range(count)))
        elapsed = time.perf_counter() - start
    ordered = sorted(latencies)
    return {
        "concurrency": concurrency,
        "requests": len(ordered),
        "errors": errors,
        "req_per_s": len(ordered) / elapsed,
        "p50_ms": 1000 * statistics.median(ordered) if ordered else None,
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else None,
    }


def raw_pipeline(batch_sizes=(1, 4, 8, 16), seconds: float = 3.0) -> dict:
    """In-process img/s of decode + preprocess + forward, per torch thread count and batch size.

    Both 1 thread and one per core are tried: on a busy machine, torch's threads waiting on each
    other can make the multi-threaded run far slower, and the ceiling should be the best one.
    """
    from ptdeploy.classifier import load_classifier
    from ptdeploy.serving.app import DEFAULTS
    from ptdeploy.serving.images import decode_image
    from ptdeploy.serving.predictor import Predictor

    predictor = Predictor(load_classifier())
    classifier = predictor.classifier
    payload = CAT_JPG.read_bytes()

    def step(n):
        tensors = [
            classifier.to_tensor(decode_image(payload, DEFAULTS["MAX_IMAGE_PIXELS"], classifier.resize_side))
            for _ in range(n)
        ]
        predictor.predict_batch(tensors)

    result = {}
    before = torch.get_num_threads()
    for threads in sorted({1, CORES}):
        torch.set_num_threads(threads)
        for n in batch_sizes:
            step(n)  # warm-up
            done, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                step(n)
                done += n
            result[f"{threads} thread(s), batch {n}"] = done / (time.perf_counter() - start)
    torch.set_num_threads(before)
    return result


def run(
    concurrencies=(1, 4, 16),
    count: int = 200,
    max_seconds: float = 30.0,
    out: Path | None = None,
    progress: bool = True,
) -> dict:
    results = {"cores": CORES, "count": count, "raw_img_per_s": {}, "servers": {}}
    results["raw_img_per_s"] = raw_pipeline(seconds=min(3.0, max_seconds / 6))
    plan = servers()
    with tqdm(total=len(plan) * len(concurrencies), desc="serving benchmark", disable=not progress) as bar:
        for name, kwargs in plan.items():
            workers = kwargs.pop("workers", None)
            server = process.start(**kwargs)
            try:
                if workers:
                    wait_for_workers(server.url, workers)
                runs = []
                for c in concurrencies:
                    runs.append(drive(server.url + "/predict", c, count, max_seconds))
                    bar.update()
            finally:
                server.stop()
            results["servers"][name] = runs
    results["raw_best_img_per_s"] = max(results["raw_img_per_s"].values())
    if out:
        out.write_text(json.dumps(results, indent=1))
    return results


def table(results: dict) -> str:
    lines = [f"{'server':24} {'conc':>4} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}"]
    for name, runs in results["servers"].items():
        for r in runs:
            lines.append(
                f"{name:24} {r['concurrency']:>4} {r['req_per_s']:>7.1f} {r['p50_ms'] or 0:>8.0f} "
                f"{r['p99_ms'] or 0:>8.0f} {r['errors']:>6}"
            )
    raw = results["raw_img_per_s"]
    best = max(raw, key=raw.get)
    lines.append(
        f"raw in-process pipeline, no HTTP, measured before the servers: best {raw[best]:.1f} img/s ({best})"
    )
    return "\n".join(lines)
