"""What the classifier service tells its operator: Prometheus metrics and one log line per request.

Metrics, at ``GET /metrics`` in Prometheus' text format (prometheus-client), named ``ptdeploy_*``:
requests by endpoint and status, latency histograms (the whole request, decoding + preprocessing, the
model with its batching wait), requests in flight, images per request, refusals (``decode_budget``: 503
when decoding memory is full; ``too_large``: 413), the runtime in use, and the model's load time.

Under gunicorn each worker is its own process. With ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn_conf.py
sets it) every process writes its values to files there and ``/metrics`` sums them, whichever worker
answers. A worker's counts stay in its files after it exits, so a restart loses none.

Logs: one JSON line per request on stderr, with a request id: the client's ``X-Request-ID`` when it is a
plain token (nginx sends one for every request), else a new one; it is returned in the response header.
No log line holds request bodies.
"""

import json
import logging
import os
import re
import sys
import time
import uuid

# prometheus-client is imported where it is used: it picks its multiprocess mode when first imported, and
# gunicorn's master (gunicorn_conf.py imports this module) sets MULTIPROCESS_DIR before any worker does.

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
# Seconds: a cached small image is answered in milliseconds, a 40-megapixel photo under load in seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
IMAGE_BUCKETS = (1, 2, 4, 8, 16, 32)
# An incoming request id is kept only if it is a plain token: anything else could forge log lines.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

access_log = logging.getLogger("ptdeploy.serving.access")


def _access_handler() -> None:
    """Request lines go to stderr as they are (each one JSON); gunicorn's own log is stderr too."""
    if not access_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access_log.addHandler(handler)
        access_log.setLevel(logging.INFO)
        access_log.propagate = False


class _Off:
    """A metric that records nothing: what every metric is when metrics are switched off."""

    def labels(self, *values):
        return self

    def inc(self, amount=1): ...
    def dec(self, amount=1): ...
    def set(self, value): ...
    def observe(self, value): ...


class Metrics:
    """The service's metrics, in this app's own registry, or in the shared files of multiprocess mode.
    ``Metrics(enabled=False)`` records nothing (the serving benchmark measures what they cost)."""

    def __init__(self, enabled: bool = True):
        _access_handler()  # the request log does not depend on metrics (Ray Serve: log on, metrics off)
        self.enabled = enabled
        if not enabled:
            off = _Off()
            self.requests = self.latency = self.decode = self.model = self.in_flight = off
            self.images = self.refused = self.runtime = self.load_seconds = off
            return
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram

        self.content_type = CONTENT_TYPE_LATEST
        self.multiprocess = bool(os.environ.get(MULTIPROCESS_DIR))
        self.registry = CollectorRegistry()
        # multiprocess: values live in files and are collected at scrape time, not through a registry
        kw = {"registry": None if self.multiprocess else self.registry}
        self.requests = Counter(
            "ptdeploy_requests",
            "HTTP requests answered, by endpoint and status",
            ["endpoint", "status"],
            **kw,
        )
        self.latency = Histogram(
            "ptdeploy_request_duration_seconds",
            "Time to answer a request, by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            **kw,
        )
        self.decode = Histogram(
            "ptdeploy_decode_duration_seconds",
            "Time to decode and preprocess one image",
            buckets=LATENCY_BUCKETS,
            **kw,
        )
        self.model = Histogram(
            "ptdeploy_model_duration_seconds",
            "Time from a prepared image to its answer: the model, and any wait for a batch",
            buckets=LATENCY_BUCKETS,
            **kw,
        )
        self.in_flight = Gauge(
            "ptdeploy_requests_in_flight", "Requests being answered now", multiprocess_mode="livesum", **kw
        )
        self.images = Histogram(
            "ptdeploy_images_per_request", "Images in one /predict request", buckets=IMAGE_BUCKETS, **kw
        )
        self.refused = Counter(
            "ptdeploy_refused_requests",
            "Requests refused: decode_budget (503, decoding memory full), too_large (413)",
            ["reason"],
            **kw,
        )
        self.runtime = Gauge(
            "ptdeploy_runtime_info", "The model and runtime serving (value 1)", ["model", "runtime"],
            multiprocess_mode="max", **kw,
        )  # fmt: skip
        self.load_seconds = Gauge(
            "ptdeploy_model_load_seconds", "Time the worker took to load its model",
            multiprocess_mode="liveall", **kw,
        )  # fmt: skip

    def exposition(self) -> bytes:
        """The text a scrape of /metrics gets."""
        from prometheus_client import CollectorRegistry, generate_latest, multiprocess

        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)


def request_id(incoming: str | None) -> str:
    """The client's id when it is a plain token, else a fresh one."""
    if incoming and REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def log_request(**fields) -> None:
    """One JSON line: time, then the fields given (request_id, method, path, status, ...)."""
    line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "event": "request", **fields}
    access_log.info(json.dumps(line, separators=(",", ":")))


def worker_exited(pid: int) -> None:
    """gunicorn's child_exit hook: the live gauges of a worker that is gone no longer count."""
    if os.environ.get(MULTIPROCESS_DIR):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def buckets(text: str, name: str, **labels: str) -> dict[float, float]:
    """A histogram's cumulative bucket counts {upper bound: count} from /metrics text, summed over the
    series whose labels include ``labels``."""
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == f"{name}_bucket" and labels.items() <= s.labels.items():
                bound = float(s.labels["le"])
                found[bound] = found.get(bound, 0) + s.value
    return found


def histogram_quantile(q: float, cumulative: dict[float, float]) -> float:
    """What Prometheus' histogram_quantile gives for these buckets: the bucket the q-th rank falls in,
    and a straight line inside it (an estimate no finer than the buckets)."""
    if float("inf") not in cumulative:
        raise ValueError("a histogram needs a +Inf bucket")
    rank = q * cumulative[float("inf")]
    lower, below = 0.0, 0.0
    for bound in sorted(cumulative):
        if cumulative[bound] >= rank:
            if bound == float("inf"):
                return lower  # beyond the last bucket: its upper bound is all that is known
            return lower + (bound - lower) * (rank - below) / (cumulative[bound] - below)
        lower, below = bound, cumulative[bound]
    raise AssertionError("unreachable: the +Inf bucket holds every count")
