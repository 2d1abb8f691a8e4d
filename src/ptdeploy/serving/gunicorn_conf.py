"""gunicorn settings for the classifier service (``gunicorn -c python:ptdeploy.serving.gunicorn_conf``).

Read from ``ptdeploy.serving.settings``: PTDEPLOY_HOST (127.0.0.1) and PTDEPLOY_PORT (5000), or
PTDEPLOY_BIND (e.g. unix:/path/to.sock, as ptdeploy.serving.proxy runs it behind nginx), PTDEPLOY_WORKERS
(1), PTDEPLOY_THREADS (8 request threads per worker), PTDEPLOY_MODEL_THREADS (usable CPUs // workers),
PTDEPLOY_LOG_LEVEL (info). Keep torch out of this module: the master process must not load it.

Metrics: the workers write theirs to one folder (PROMETHEUS_MULTIPROC_DIR; a fresh temporary one unless
set), which /metrics sums; emptied when the server starts, removed when it stops (ptdeploy.serving.metrics).
"""

import os
import shutil
import tempfile
from pathlib import Path

from ptdeploy.resources import usable_cpus
from ptdeploy.serving.metrics import MULTIPROCESS_DIR, worker_exited
from ptdeploy.serving.settings import app_settings, process_settings

_process = process_settings()

bind = _process.bind
workers = _process.workers
# Request threads wait on I/O and on the batcher; the CPU work happens in the runtime's own threads.
worker_class = "gthread"
threads = _process.threads
preload_app = False  # each worker loads the model after fork
# model threads x workers <= usable CPUs, or the workers fight over the same cores.
model_threads = app_settings()["MODEL_THREADS"] or max(1, usable_cpus() // workers)
raw_env = [f"PTDEPLOY_MODEL_THREADS={model_threads}"]
timeout = 60  # a worker silent this long is restarted
graceful_timeout = 10  # SIGTERM: finish requests in flight for up to this long, then exit
loglevel = _process.log_level
accesslog = None
errorlog = "-"
# gunicorn 27's admin socket lives at one fixed path per user: two servers (tests, benchmark)
# would fight over it, and this service does not use it.
control_socket_disable = True

_own_metrics_dir: list[str] = []  # the folder this server made, removed when it stops


def on_starting(server):
    """In the master, before any worker: prometheus-client picks its multiprocess mode when a worker
    first imports it. Counts start at zero with each server."""
    folder = os.environ.get(MULTIPROCESS_DIR)
    if folder:
        for stale in Path(folder).glob("*.db"):
            stale.unlink()
    else:
        _own_metrics_dir.append(tempfile.mkdtemp(prefix="ptdeploy-metrics-"))
        os.environ[MULTIPROCESS_DIR] = _own_metrics_dir[0]


def child_exit(server, worker):
    worker_exited(worker.pid)


def on_exit(server):
    for folder in _own_metrics_dir:
        shutil.rmtree(folder, ignore_errors=True)
