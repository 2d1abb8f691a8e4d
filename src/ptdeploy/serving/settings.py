"""Every setting of the classifier service, read in one place.

Two kinds:

* the app's (``DEFAULTS``): what a worker does with a request. ``app_settings()`` gives them, overridden
  by PTDEPLOY_<NAME> environment variables (values parsed as JSON: PTDEPLOY_BATCHING=false,
  PTDEPLOY_TOP_K=3) and then by a dict (``create_app({...})``);
* the process's (``Process``): where it listens and how many workers, threads or replicas serve:
  PTDEPLOY_HOST, PTDEPLOY_PORT, PTDEPLOY_BIND, PTDEPLOY_WORKERS, PTDEPLOY_THREADS, PTDEPLOY_REPLICAS,
  PTDEPLOY_LOG_LEVEL. ``process_settings()`` reads them.

No torch and no Flask here: gunicorn's master process, the nginx proxy and Ray's driver read it too.
"""

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from ptdeploy.imagenet import DEFAULT_CLASSIFIER

PREFIX = "PTDEPLOY_"

DEFAULTS = {
    "CLASSIFIER": DEFAULT_CLASSIFIER,
    "MAX_CONTENT_LENGTH": 10 * 1024 * 1024,  # whole request, bytes -> 413 above
    # Checked from the header, before decoding -> 413 above. 40 MP admits every common camera's
    # photos (phones 12-50 MP, most cameras 24-45 MP) and refuses only what no 224-px model needs.
    # It is no longer what bounds memory: a large JPEG decodes at 1/8 of its size (40 MP -> 0.6 MP),
    # and other formats decode in full but inside DECODE_MEMORY_MB, so a 40 MP PNG (160 MB, Pillow
    # keeps RGB as 4 bytes a pixel) waits until it can decode alone.
    "MAX_IMAGE_PIXELS": 40_000_000,
    "MAX_FILES": 16,  # images per request
    # Per worker: decoded pixels in flight at most this many MB, in at most DECODE_SLOTS decodes at
    # once (0: as many as the model's threads; decoding is CPU work too). DECODE_QUEUE more requests may
    # wait up to DECODE_WAIT_S for room; beyond that -> 503 with Retry-After. 128 MB: one full-size
    # decode of a phone photo (12-24 MP as PNG: 48-96 MB) at a time, next to any number of small or
    # draft-decoded JPEGs (a 24 MP JPEG at 1/8 scale: 1.5 MB).
    "DECODE_MEMORY_MB": 128,
    "DECODE_SLOTS": 0,
    "DECODE_QUEUE": 32,
    "DECODE_WAIT_S": 10,
    "TOP_K": 5,
    "CONFIDENCE_THRESHOLD": 0.2,  # below: "confident": false and a message
    # eager | torchscript | onnxruntime (ptdeploy.serving.runtimes). ONNX Runtime: the fastest on the CPUs
    # measured, several times eager PyTorch for this model (make bench-serve measures the service on each).
    "RUNTIME": "onnxruntime",
    # Dynamic batching across concurrent requests. Off: on a small CPU a batch costs as much per image
    # as single images (the runtime already uses every core for one), so waiting for company only adds
    # latency. Turn it on where a batch is cheaper per image (a GPU, many cores).
    "BATCHING": False,
    "MAX_BATCH_SIZE": 8,
    "BATCH_LATENCY_MS": 5,  # how long a batch waits for company after its first image
    # The model's intra-op threads, on PyTorch or ONNX Runtime. 0: ONNX Runtime gets one per usable CPU,
    # PyTorch keeps its default. gunicorn gives each worker its share of the CPUs (gunicorn_conf.py).
    "MODEL_THREADS": 0,
    "LOAD_IN_BACKGROUND": True,  # answer /health (503) while the model loads
    # Prometheus metrics and GET /metrics (ptdeploy.serving.metrics). Off on Ray Serve, where a scrape
    # would reach one replica and see only its counts.
    "METRICS": True,
    "ACCESS_LOG": True,  # one JSON line per request on stderr, with its request id
}


def parse(text: str):
    """An environment variable's value: JSON where it parses (numbers, true/false), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def app_settings(overrides: Mapping | None = None, env: Mapping[str, str] = os.environ) -> dict:
    """``DEFAULTS``, then PTDEPLOY_<NAME> environment variables, then ``overrides``."""
    settings = dict(DEFAULTS)
    settings.update({name: parse(env[PREFIX + name]) for name in DEFAULTS if PREFIX + name in env})
    settings.update(overrides or {})
    return settings


@dataclass(frozen=True)
class Process:
    host: str
    port: int
    bind: str  # what gunicorn binds: host:port, or e.g. unix:/path/to.sock behind the proxy
    workers: int  # gunicorn workers
    threads: int  # request threads per gunicorn worker
    replicas: int | None  # Ray Serve replicas (None: the config file's number, as many as fit)
    log_level: str


def process_settings(env: Mapping[str, str] = os.environ, default_port: int = 5000) -> Process:
    host = env.get(PREFIX + "HOST", "127.0.0.1")
    port = int(env.get(PREFIX + "PORT", default_port))
    return Process(
        host=host,
        port=port,
        bind=env.get(PREFIX + "BIND") or f"{host}:{port}",
        workers=int(env.get(PREFIX + "WORKERS", 1)),
        threads=int(env.get(PREFIX + "THREADS", 8)),
        replicas=int(env.get(PREFIX + "REPLICAS", 0)) or None,
        log_level=env.get(PREFIX + "LOG_LEVEL", "info"),
    )
