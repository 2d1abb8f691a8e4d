"""Start a server as a child process on a free loopback port, wait until it answers, stop it cleanly.

Used by the notebook, the tests and the benchmark, so all of them talk to a real server over HTTP.
A server still running when Python exits is stopped then: a notebook that fails halfway never reaches
the cell that stops its server, but its kernel's shutdown does.
"""

import atexit
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from ptdeploy.paths import REPO_ROOT

GUNICORN_CONF = "python:ptdeploy.serving.gunicorn_conf"
_running: set["Server"] = set()  # started and not stopped yet
LAST_LINES = 5  # of a server's output, quoted when it exits before it is ready


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def gunicorn_command() -> list[str]:
    return [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF, "ptdeploy.serving.wsgi:app"]


class Server:
    def __init__(self, process: subprocess.Popen, port: int, log: Path | None):
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self.returncode: int | None = None
        _running.add(self)

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM to the server, wait; returns its exit code.

        Then whatever it started and left behind (the server runs in its own process group;
        LitServe's worker processes, for one, outlive their parent) gets SIGTERM, then SIGKILL.
        """
        _running.discard(self)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.returncode = self.process.returncode
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break  # the group is empty
            time.sleep(1)
        return self.returncode


def start(
    command: list[str],
    env: dict[str, str] | None = None,
    ready_path: str = "/health",
    port: int | None = None,
    timeout: float = 120,
    log: Path | None = None,
    cwd: Path = REPO_ROOT,
    any_answer: bool = False,
) -> Server:
    """Run ``command`` with PTDEPLOY_PORT set to a free port; return once ``ready_path`` answers 2xx.

    ``command`` and ``env`` values may contain ``{port}``, replaced by the chosen port. With ``any_answer``
    any HTTP answer counts as ready (for servers without a health route). Stop it with ``Server.stop()``.
    """
    port = port or free_port()
    extra = {key: value.replace("{port}", str(port)) for key, value in (env or {}).items()}
    full_env = {**os.environ, "PTDEPLOY_PORT": str(port), "PYTHONUNBUFFERED": "1", **extra}
    # Without a log file the output still goes to a scratch file, to say why a server died at start.
    out = open(log, "w") if log else tempfile.TemporaryFile("w+")
    process = subprocess.Popen(
        [part.replace("{port}", str(port)) for part in command],
        env=full_env,
        cwd=cwd,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so stop() can clean up its children
    )
    server = Server(process, port, log)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if process.poll() is not None:
                out.seek(0)
                last = "".join(out.read().splitlines(keepends=True)[-LAST_LINES:]).rstrip()
                raise RuntimeError(
                    f"server exited with code {process.returncode} before it was ready; it said:\n{last}"
                )
            try:
                answer = requests.get(server.url + ready_path, timeout=2)
                if answer.ok or any_answer:
                    return server
            except requests.RequestException:  # not listening yet, or too busy to answer within 2 s
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"server not ready after {timeout} s")
            time.sleep(0.1)
    except BaseException:
        server.stop()  # whatever went wrong (Ctrl-C too), leave no server and no children behind
        raise
    finally:
        out.close()  # the child has its own copy


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_running):
        server.stop(timeout=5)


@contextmanager
def running(command: list[str], **kwargs) -> Iterator[Server]:
    """``start()`` as a context manager: the server is stopped (SIGTERM) on leaving the block."""
    server = start(command, **kwargs)
    try:
        yield server
    finally:
        server.stop()
