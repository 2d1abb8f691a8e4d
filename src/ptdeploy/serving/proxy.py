"""Run the classifier service as production does: nginx in front, gunicorn behind it on a Unix socket.

    python -m ptdeploy.serving.proxy        # what `make serve` runs

nginx listens on PTDEPLOY_HOST:PTDEPLOY_PORT (127.0.0.1:5000 by default) and buffers every request
before gunicorn sees it (see nginx.conf beside this file); gunicorn listens on a Unix socket under
outputs/nginx/ that nothing else uses. One process supervises both: SIGTERM or Ctrl-C stops both
cleanly (exit 0), and if either dies the other is stopped too (exit 1). nginx comes from the system
(system-packages.txt: the Makefile installs it); its configuration, pid, temp files and logs all
live under outputs/nginx/, so it runs as root and as a normal user.
"""

import grp
import json
import os
import signal
import subprocess
import sys
import time
from importlib.resources import files
from pathlib import Path

from ptdeploy import system_packages
from ptdeploy.paths import output_dir
from ptdeploy.serving.settings import app_settings, process_settings

# Requests in flight per client address before nginx answers 429 (slow senders whose headers are
# incomplete do not count: they are cut off by client_header_timeout instead).
CONN_PER_CLIENT = 64
STOP_TIMEOUT_S = 15


def max_body_bytes() -> int:
    """The app's upload cap (PTDEPLOY_MAX_CONTENT_LENGTH or its default): nginx enforces the same."""
    return int(app_settings()["MAX_CONTENT_LENGTH"])


def worker_user() -> str:
    """As root, nginx's workers drop to nobody; as anyone else they stay that user (no directive)."""
    if os.geteuid() != 0:
        return ""
    try:
        group = grp.getgrnam("nogroup").gr_name  # Debian's name for nobody's group
    except KeyError:
        group = "nobody"
    return f"user nobody {group};"


def error_pages(limit: int) -> dict[int, str]:
    """nginx's own refusals, worded as the app words its errors."""
    return {
        400: "The request is not valid HTTP.",
        403: "Only this machine may read the metrics.",
        429: "Too many requests in flight from this address; retry shortly.",
        500: "Internal error in the proxy.",
        503: "The service is not available right now; retry shortly.",
        504: "The service took too long to answer.",
    }


def render(run_dir: Path, listen: str, upstream: str) -> Path:
    """Write nginx.conf and its JSON error pages for this run into `run_dir`; return the config's path."""
    limit = max_body_bytes()
    errors = run_dir / "_errors"
    errors.mkdir(exist_ok=True)
    errors.chmod(0o755)
    for code, message in error_pages(limit).items():
        page = errors / f"{code}.json"
        page.write_text(json.dumps({"error": code, "message": message}) + "\n")
        page.chmod(0o644)
    fields = {
        "USER": worker_user(),
        "RUN_DIR": str(run_dir),
        "LISTEN": listen,
        "UPSTREAM": upstream,
        "MAX_BODY": str(limit),
        "CONN_PER_CLIENT": str(CONN_PER_CLIENT),
    }
    text = files("ptdeploy.serving").joinpath("nginx.conf").read_text()
    for name, value in fields.items():
        text = text.replace("{{" + name + "}}", value)
    if "{{" in text:
        raise ValueError("nginx.conf has a field the launcher does not fill in")
    path = run_dir / "nginx.conf"
    path.write_text(text)
    return path


def stop(proc: subprocess.Popen, sig: int) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    try:
        nginx = system_packages.require("nginx")
    except system_packages.MissingProgram as exc:
        print(exc, file=sys.stderr)
        return 1
    process = process_settings()
    host, port = process.host, str(process.port)
    run_dir = output_dir("nginx", port)
    run_dir.chmod(0o755)  # nginx's workers (nobody, under root) create their temp files in here
    socket = run_dir / "gunicorn.sock"
    socket.unlink(missing_ok=True)
    conf = render(run_dir, f"{host}:{port}", f"unix:{socket}")

    env = dict(os.environ, PTDEPLOY_BIND=f"unix:{socket}")
    app_cmd = [sys.executable, "-m", "gunicorn", "-c", "python:ptdeploy.serving.gunicorn_conf"]
    procs = {"gunicorn": subprocess.Popen([*app_cmd, "ptdeploy.serving.wsgi:app"], env=env)}
    procs["nginx"] = subprocess.Popen([nginx, "-p", str(run_dir), "-c", str(conf), "-e", "stderr"])
    print(f"nginx on http://{host}:{port} -> gunicorn on {socket}", flush=True)

    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stopping and all(p.poll() is None for p in procs.values()):
        time.sleep(0.2)
    died = [name for name, p in procs.items() if p.poll() is not None]
    stop(procs["nginx"], signal.SIGQUIT)  # graceful: finish the requests in flight, then exit
    stop(procs["gunicorn"], signal.SIGTERM)
    socket.unlink(missing_ok=True)
    if died and not stopping:
        print(f"stopped: {', '.join(died)} exited on its own", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
