"""What the classifier service tells its operator: Prometheus metrics and one log line per request.

Metrics, at ``GET /metrics`` in Prometheus' text format (prometheus-client), named ``ptdeploy_*``:
requests by endpoint and status, latency histograms (the whole request, decoding + preprocessing, the
model with its batching wait), requests in flight, images per request, refusals (``decode_budget``: 503
when decoding memory is full; ``too_large``: 413), the runtime in use, and the model's load time.

Under gunicorn each worker is its own process. With ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn_conf.py
sets it) every process writes its values to files there and ``/metrics`` sums them, whichever worker
answers. A worker's counts stay in its files after it exits, so a restart loses none.

On Ray Serve (``RayMetrics``) there is no ``/metrics`` route: each replica records through Ray's own
metrics, which every node's metrics agent serves, and Ray Serve counts requests, latency and requests in
flight itself (``RAY_NAMES`` says which name replaces which).

Logs: one JSON line per request on stderr, with a request id: the client's ``X-Request-ID`` when it is a
plain token (nginx sends one for every request), else a new one; it is returned in the response header.
No log line holds request bodies.
"""

import json
import logging
import os
import re
import sys
import threading
import time
import uuid
from typing import NamedTuple

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


class Definition(NamedTuple):
    kind: str  # counter, gauge or histogram
    name: str
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()  # a histogram's upper bounds
    mode: str = ""  # a gauge's multiprocess mode: how the values of several worker processes combine


# What the service records, by the attribute that records it.
DEFINITIONS = {
    "requests": Definition(
        "counter",
        "ptdeploy_requests",
        "HTTP requests answered, by endpoint and status",
        ("endpoint", "status"),
    ),
    "latency": Definition(
        "histogram",
        "ptdeploy_request_duration_seconds",
        "Time to answer a request, by endpoint",
        ("endpoint",),
        LATENCY_BUCKETS,
    ),
    "decode": Definition(
        "histogram",
        "ptdeploy_decode_duration_seconds",
        "Time to decode and preprocess one image",
        buckets=LATENCY_BUCKETS,
    ),
    "model": Definition(
        "histogram",
        "ptdeploy_model_duration_seconds",
        "Time from a prepared image to its answer: the model, and any wait for a batch",
        buckets=LATENCY_BUCKETS,
    ),
    "in_flight": Definition(
        "gauge", "ptdeploy_requests_in_flight", "Requests being answered now", mode="livesum"
    ),
    "images": Definition(
        "histogram", "ptdeploy_images_per_request", "Images in one /predict request", buckets=IMAGE_BUCKETS
    ),
    "refused": Definition(
        "counter",
        "ptdeploy_refused_requests",
        "Requests refused: decode_budget (503, decoding memory full), too_large (413)",
        ("reason",),
    ),
    "runtime": Definition(
        "gauge",
        "ptdeploy_runtime_info",
        "The model and runtime serving (value 1)",
        ("model", "runtime"),
        mode="max",
    ),
    "load_seconds": Definition(
        "gauge", "ptdeploy_model_load_seconds", "Time the worker took to load its model", mode="liveall"
    ),
}


class Metrics:
    """The service's metrics (``DEFINITIONS``), in this app's own registry, or in the shared files of
    multiprocess mode. ``Metrics(enabled=False)`` records nothing (the serving benchmark measures what they
    cost)."""

    def __init__(self, enabled: bool = True):
        _access_handler()  # the request log does not depend on metrics (Ray Serve: log on, metrics off)
        self.enabled = enabled
        if not enabled:
            for attribute in DEFINITIONS:
                setattr(self, attribute, _Off())
            return
        import prometheus_client

        self.content_type = prometheus_client.CONTENT_TYPE_LATEST
        self.multiprocess = bool(os.environ.get(MULTIPROCESS_DIR))
        self.registry = prometheus_client.CollectorRegistry()
        # multiprocess: values live in files and are collected at scrape time, not through a registry
        registry = None if self.multiprocess else self.registry
        for attribute, d in DEFINITIONS.items():
            if d.kind == "histogram":
                metric = prometheus_client.Histogram(
                    d.name, d.help, d.labels, buckets=d.buckets, registry=registry
                )
            elif d.kind == "gauge":
                metric = prometheus_client.Gauge(
                    d.name, d.help, d.labels, multiprocess_mode=d.mode, registry=registry
                )
            else:
                metric = prometheus_client.Counter(d.name, d.help, d.labels, registry=registry)
            setattr(self, attribute, metric)

    def exposition(self) -> bytes:
        """The text a scrape of /metrics gets."""
        from prometheus_client import CollectorRegistry, generate_latest, multiprocess

        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)


class _RayMetric:
    """A Ray metric behind prometheus-client's face (``labels``, ``inc``, ``observe``, ``set``), so the
    app records the same way on Ray Serve as under gunicorn. A gauge keeps its last values (``values``)
    so they can be said again."""

    def __init__(self, metric, label_names: tuple[str, ...] = (), tags: dict | None = None, values=None):
        self.metric, self.label_names, self.tags = metric, label_names, tags
        self.values: dict[tuple, tuple[dict | None, float]] = {} if values is None else values

    def labels(self, *values):
        tags = dict(zip(self.label_names, values, strict=True))
        return _RayMetric(self.metric, self.label_names, tags, self.values)

    def inc(self, amount=1):
        self.metric.inc(amount, tags=self.tags)

    def observe(self, value):
        self.metric.observe(value, tags=self.tags)

    def set(self, value):
        self.values[tuple(sorted((self.tags or {}).items()))] = (self.tags, value)
        self.metric.set(value, tags=self.tags)

    def say_again(self):
        for tags, value in list(self.values.values()):
            self.metric.set(value, tags=tags)


class RayMetrics:
    """The service's metrics inside a Ray Serve replica (``ray.serve.metrics``: Ray adds the deployment,
    replica and application tags and exports them from each node's metrics agent, named ``ray_*``).

    Requests by status, their latency and the requests in flight are not recorded here: Ray Serve counts
    them already (see ``RAY_NAMES``). The rest are the service's own.

    Ray's agent drops a gauge it has not heard of for two report intervals (Ray 2.60), so a value set
    once, such as the runtime or the load time, would vanish from the scrapes: a thread sets the gauges
    again every interval."""

    enabled = True
    RAY_COUNTS = ("requests", "latency", "in_flight")

    def __init__(self):
        import ray
        from ray.serve import metrics as ray_metrics

        _access_handler()
        gauges = []
        for attribute, d in DEFINITIONS.items():
            if attribute in self.RAY_COUNTS:
                setattr(self, attribute, _Off())
                continue
            if d.kind == "histogram":
                metric = ray_metrics.Histogram(d.name, d.help, boundaries=list(d.buckets), tag_keys=d.labels)
            elif d.kind == "gauge":
                metric = ray_metrics.Gauge(d.name, d.help, tag_keys=d.labels)
            else:
                metric = ray_metrics.Counter(d.name, d.help, tag_keys=d.labels)
            setattr(self, attribute, _RayMetric(metric, d.labels))
            if d.kind == "gauge":
                gauges.append(getattr(self, attribute))
        interval_s = max(ray._config.metrics_report_interval_ms(), 1000) / 1000

        def keep_saying():
            while True:
                time.sleep(interval_s)
                for gauge in gauges:
                    gauge.say_again()

        threading.Thread(target=keep_saying, name="ray-gauges", daemon=True).start()


# The gunicorn service's metrics and what a scrape of Ray's metrics agents finds instead. The first three
# are Ray Serve's own (its proxy's requests and latency in milliseconds, with the route prefix, not the
# endpoint; the requests each replica is processing); the rest are the service's, with Ray's prefix.
RAY_NAMES = {
    "ptdeploy_requests_total": "ray_serve_num_http_requests_total",
    "ptdeploy_request_duration_seconds": "ray_serve_http_request_latency_ms",
    "ptdeploy_requests_in_flight": "ray_serve_replica_processing_queries",
    "ptdeploy_decode_duration_seconds": "ray_ptdeploy_decode_duration_seconds",
    "ptdeploy_model_duration_seconds": "ray_ptdeploy_model_duration_seconds",
    "ptdeploy_images_per_request": "ray_ptdeploy_images_per_request",
    "ptdeploy_refused_requests_total": "ray_ptdeploy_refused_requests_total",
    "ptdeploy_runtime_info": "ray_ptdeploy_runtime_info",
    "ptdeploy_model_load_seconds": "ray_ptdeploy_model_load_seconds",
}


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


def totals(text: str, name: str, by: str, **labels: str) -> dict[str, float]:
    """A counter's values from /metrics text {value of the label ``by``: total}, summed over the series
    whose labels include ``labels``."""
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and labels.items() <= s.labels.items():
                found[s.labels[by]] = found.get(s.labels[by], 0) + s.value
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
