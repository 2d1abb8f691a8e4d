"""The classifier service on Ray Serve: the same Flask app in each replica, Ray's batching and routing.

Each replica builds the service with ``create_app`` (same decoding, same limits, same JSON answers and
errors, same runtime setting) and hands every HTTP request to it; the predictions of concurrent requests
go through Ray Serve's own ``@serve.batch``. Every answer says which replica served it (``X-Replica``).

Metrics: no ``/metrics`` route here. Each replica records the service's own metrics through Ray's
(``metrics.RayMetrics``), and Ray's metrics agent serves them with Ray Serve's request counts and latency
(``metrics_url``; ``metrics.RAY_NAMES`` says which name stands for which).

Run it locally: ``python -m ptdeploy.serving.ray_app`` (``make serve-ray``): a local Ray instance bounded
in CPUs and memory, dashboard off, HTTP on 127.0.0.1. On a running Ray cluster the same file deploys with
``serve deploy src/ptdeploy/serving/ray_serve.yaml`` (or ``serve run`` it).
"""

import argparse
import asyncio
import logging
import os
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from ray import serve
from starlette.requests import Request
from starlette.responses import Response
from werkzeug.test import EnvironBuilder, run_wsgi_app

from ptdeploy import resources
from ptdeploy.serving.app import create_app
from ptdeploy.serving.metrics import RayMetrics
from ptdeploy.serving.settings import app_settings, process_settings

CONFIG = Path(__file__).with_name("ray_serve.yaml")
OBJECT_STORE_BYTES = 100 * 2**20  # answers are small JSON; Ray's default would take 30% of RAM
# Memory budgets (PSS) for Ray's own processes (driver, GCS, raylet, agents, Serve's controller and proxy)
# and for one replica with the ONNX Runtime model (it never imports torch), with room above what notebook
# 01 measures of each.
RAY_MB = 800
MB_PER_REPLICA = 250
MAX_ONGOING_REQUESTS = 16  # per replica; more wait in Ray's proxy
REQUEST_THREADS = 32  # per replica: more than the requests Ray lets in at once
# Put first on the PYTHONPATH of Ray's processes: see the module's docstring.
RAY_SITE = Path(__file__).with_name("ray_site")


class ServeBatcher:
    """A prepared image array -> answer, called from the Flask request thread, batched by the replica's
    ``@serve.batch``."""

    def __init__(self, batched, timeout_s: float = 30.0):
        self.batched = batched  # the deployment's @serve.batch method (a coroutine function)
        self.timeout_s = timeout_s
        self.loop: asyncio.AbstractEventLoop | None = None  # the replica's event loop, set per request
        self.batch_sizes: Counter[int] = Counter()  # /health shows it, as with the built-in batcher

    def __call__(self, image):
        future = asyncio.run_coroutine_threadsafe(self.batched(image), self.loop)
        return future.result(self.timeout_s)


@serve.deployment(max_ongoing_requests=MAX_ONGOING_REQUESTS)
class ClassifierDeployment:
    """One replica: the Flask service in-process; Ray's HTTP proxy routes requests to it."""

    def __init__(self, settings: dict | None = None):
        import ray

        config = app_settings({**(settings or {}), "LOAD_IN_BACKGROUND": False})  # Ray waits anyway
        if not config["MODEL_THREADS"]:  # one thread per CPU Ray gave this replica
            config["MODEL_THREADS"] = max(1, int(ray.get_runtime_context().get_assigned_resources()["CPU"]))
        # Off by default, as in the gunicorn service: batches of one, through the same queue.
        self._predict.set_max_batch_size(config["MAX_BATCH_SIZE"] if config["BATCHING"] else 1)
        self._predict.set_batch_wait_timeout_s(config["BATCH_LATENCY_MS"] / 1000)
        self.batcher = ServeBatcher(self._predict)
        # No /metrics route here (it would count one replica): Ray's metrics agent exports what each
        # replica records, summed by whoever scrapes it.
        metrics = RayMetrics() if config["METRICS"] else None
        self.app = create_app({**config, "METRICS": False}, batcher=self.batcher, metrics=metrics)
        self.replica = serve.get_replica_context().replica_id.unique_id
        # Two pools, so that requests waiting for their batch can never take the thread the batch needs.
        self.request_threads = ThreadPoolExecutor(REQUEST_THREADS, thread_name_prefix="request")
        self.model_thread = ThreadPoolExecutor(1, thread_name_prefix="model")  # one batch at a time

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.005)
    async def _predict(self, images: list) -> list[dict]:
        self.batcher.batch_sizes[len(images)] += 1
        predictor = self.app.extensions["ptdeploy"].predictor
        return await asyncio.get_running_loop().run_in_executor(
            self.model_thread, predictor.predict_batch, images
        )

    async def __call__(self, request: Request) -> Response:
        self.batcher.loop = asyncio.get_running_loop()
        environ = EnvironBuilder(
            method=request.method,
            path=request.url.path,
            query_string=request.url.query,
            headers=list(request.headers.items()),
            data=await request.body(),
        ).get_environ()
        # The Flask app is synchronous (decoding, preprocessing): run it in a thread, off the event loop.
        loop = asyncio.get_running_loop()
        body, status, headers = await loop.run_in_executor(
            self.request_threads, run_wsgi_app, self.app, environ, True
        )
        response = Response(b"".join(body), status_code=int(status.split()[0]))
        for name, value in headers.items():
            if name.lower() != "content-length":  # Starlette sets it from the body
                response.headers.append(name, value)
        response.headers["X-Replica"] = self.replica
        return response


def build_app(args: dict | None = None):
    """Application builder for ``serve run`` / ``serve deploy``: ``args`` are service settings (app.py)."""
    return ClassifierDeployment.bind(dict(args or {}))


def replicas_that_fit(wanted: int, cpus_per_replica: float) -> tuple[int, str]:
    """How many replicas this machine's real limits (CPUs, memory: ``ptdeploy.resources``) hold, at least 1,
    and a line that says what those limits are."""
    by_cpu = int(resources.usable_cpus() // cpus_per_replica)
    by_memory = int((resources.usable_memory() / 2**20 - RAY_MB) // MB_PER_REPLICA)
    return max(1, min(wanted, by_cpu, by_memory)), resources.describe()


def load_config(path: Path = CONFIG) -> tuple[dict, dict, dict]:
    """(http_options, the application's settings, the deployment's options) from a serve config file."""
    config = yaml.safe_load(path.read_text())
    application = config["applications"][0]
    deployment = {k: v for k, v in application["deployments"][0].items() if k != "name"}
    return config.get("http_options", {}), application.get("args", {}), deployment


def start_ray(cpus: int, metrics_port: int | None = None) -> None:
    """A new local Ray instance (never one that happens to run here) with ``cpus`` CPUs, a small object
    store and no dashboard. Its metrics agent serves Prometheus' text on ``metrics_port`` (None: a free
    port Ray picks; ``metrics_url`` says which)."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # offline: no usage report
    # Ray's processes inherit this environment (RAY_SITE: seconds less start-up CPU in each).
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(RAY_SITE), os.environ.get("PYTHONPATH")]))
    ray.init(
        address="local",
        num_cpus=cpus,
        object_store_memory=OBJECT_STORE_BYTES,
        include_dashboard=False,
        logging_level=logging.WARNING,
        _metrics_export_port=metrics_port,
    )


def metrics_url() -> str:
    """Where this machine's Ray metrics agent serves the metrics of every Ray process here: Serve's proxy
    (requests, latency) and the replicas (the service's own). Like Ray's other ports it listens on every
    interface: a Ray node belongs on a private network."""
    import ray

    return f"http://127.0.0.1:{ray._private.worker.global_worker.node.metrics_export_port}/metrics"


def deploy(host: str, port: int, deployment: dict, settings: dict) -> None:
    """Serve's HTTP proxy on host:port, and the classifier with ``deployment``'s options; returns once
    every replica is up."""
    serve.start(http_options={"host": host, "port": port})
    serve.run(ClassifierDeployment.options(**deployment).bind(settings), name="classifier", route_prefix="/")


def stop() -> None:
    import ray

    serve.shutdown()
    ray.shutdown()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    process = process_settings(default_port=8000)
    parser.add_argument("--host", default=process.host)
    parser.add_argument("--port", type=int, default=process.port)
    parser.add_argument("--replicas", type=int, default=process.replicas)
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("PTDEPLOY_RAY_METRICS_PORT", 0)) or None,
        help="port of Ray's metrics agent (default: a free one, printed)",
    )
    args = parser.parse_args(argv)
    _, settings, deployment = load_config(args.config)
    cpus_each = deployment.get("ray_actor_options", {}).get("num_cpus", 1)
    wanted = args.replicas or deployment.get("num_replicas", 1)
    deployment["num_replicas"], machine = replicas_that_fit(wanted, cpus_each)
    began = time.monotonic()
    start_ray(max(1, round(deployment["num_replicas"] * cpus_each)), args.metrics_port)
    # After ray.init, which installs its own handlers: SIGTERM and SIGINT end the block below.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.default_int_handler)
    try:
        deploy(args.host, args.port, deployment, settings)
        print(
            f"Ray Serve: {deployment['num_replicas']} replica(s) of {wanted} wanted ({machine}) on "
            f"http://{args.host}:{args.port}, ready in {time.monotonic() - began:.1f} s",
            flush=True,
        )
        print(f"Ray's metrics (Prometheus): {metrics_url()}", flush=True)
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        began = time.monotonic()
        stop()
        print(f"Ray Serve stopped in {time.monotonic() - began:.1f} s", flush=True)


if __name__ == "__main__":
    main()
