"""gunicorn settings for the classifier service (``gunicorn -c python:ptdeploy.serving.gunicorn_conf``).

Environment variables: PTDEPLOY_HOST (127.0.0.1), PTDEPLOY_PORT (5000), or PTDEPLOY_BIND (e.g.
unix:/path/to.sock, as ptdeploy.serving.proxy runs it behind nginx), PTDEPLOY_WORKERS (1),
PTDEPLOY_THREADS (8 request threads per worker), PTDEPLOY_TORCH_THREADS (cores // workers),
PTDEPLOY_LOG_LEVEL (info). Keep torch out of this module: the master process must not load it.
"""

import os

from ptdeploy.resources import usable_cpus

_cores = usable_cpus()  # CPU_LIMIT / cgroup quota / affinity (Binder reports the host's cores)

bind = os.environ.get("PTDEPLOY_BIND") or (
    f"{os.environ.get('PTDEPLOY_HOST', '127.0.0.1')}:{os.environ.get('PTDEPLOY_PORT', '5000')}"
)
workers = int(os.environ.get("PTDEPLOY_WORKERS", "1"))
# Request threads wait on I/O and on the batcher; the CPU work happens in torch's own threads.
worker_class = "gthread"
threads = int(os.environ.get("PTDEPLOY_THREADS", "8"))
preload_app = False  # each worker loads the model after fork
# torch threads x workers <= cores, or the workers fight over the same cores.
torch_threads = int(os.environ.get("PTDEPLOY_TORCH_THREADS", "0")) or max(1, _cores // workers)
raw_env = [f"PTDEPLOY_TORCH_THREADS={torch_threads}"]
timeout = 60  # a worker silent this long is restarted
graceful_timeout = 10  # SIGTERM: finish requests in flight for up to this long, then exit
loglevel = os.environ.get("PTDEPLOY_LOG_LEVEL", "info")
accesslog = None
errorlog = "-"
# gunicorn 27's admin socket lives at one fixed path per user: two servers (tests, benchmark)
# would fight over it, and this service does not use it.
control_socket_disable = True
