"""nginx in front of gunicorn (`make serve`): slow clients cannot take the service down."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from ptdeploy import system_packages
from ptdeploy.paths import CAT_JPG, output_dir
from ptdeploy.serving import metrics, proxy
from ptdeploy.tools import processes

CAT = CAT_JPG.read_bytes()
PROXY = [sys.executable, "-m", "ptdeploy.serving.proxy"]


@pytest.fixture(scope="module")
def server():
    env = {"PTDEPLOY_LOG_LEVEL": "warning", "PTDEPLOY_THREADS": "8", "MALLOC_ARENA_MAX": "2"}
    with processes.running(PROXY, env=env, timeout=240) as server:
        yield server


def slow_clients(port: int, n: int) -> list[socket.socket]:
    """A slowloris: n connections that send a request line and one header, then nothing more."""
    conns = []
    for _ in range(n):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        conns.append(sock)
    return conns


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.2)
    try:
        sock.recv(1024)
    except TimeoutError:
        return False  # still open, still waiting
    except OSError:
        return True  # reset
    return True  # EOF, or an error answer before it: the server is done with this client


def test_service_answers_within_a_second_while_50_slow_clients_hang(server):
    conns = slow_clients(server.port, 50)
    try:
        start = time.monotonic()
        assert requests.get(server.url + "/health", timeout=1).status_code == 200
        answer = requests.post(server.url + "/predict", files={"file": ("cat.jpg", CAT)}, timeout=1)
        assert answer.json()["class_name"] == "Egyptian_cat"
        assert time.monotonic() - start < 2
    finally:
        for sock in conns:
            sock.close()


def test_slow_clients_are_cut_off_within_the_header_timeout(server):
    conns = slow_clients(server.port, 10)
    try:
        time.sleep(7)  # client_header_timeout is 5 s
        assert all(closed_by_server(sock) for sock in conns)
    finally:
        for sock in conns:
            sock.close()


def test_too_large_upload_is_refused_by_nginx_as_json_and_counted(server):
    def refused():
        text = requests.get(server.url + "/metrics", timeout=10).text
        return metrics.totals(text, "ptdeploy_refused_requests_total", by="reason").get("too_large", 0)

    before = refused()
    big = b"\0" * (11 * 2**20)  # over the app's 10 MB cap
    response = requests.post(server.url + "/predict", files={"file": ("big.bin", big)}, timeout=30)
    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"] == 413 and "10 MB" in response.json()["message"]
    # nginx refused it unread and told the app, without the body, which answered and counted it
    assert refused() == before + 1


def test_a_client_cannot_claim_nginx_refused_it(server):
    forged = {"X-Refused-By-Proxy": "too_large"}
    response = requests.post(
        server.url + "/predict", files={"file": ("cat.jpg", CAT)}, headers=forged, timeout=30
    )
    assert response.status_code == 200, response.text


def test_too_large_upload_gets_json_even_with_the_app_down():
    """nginx alone, its upstream a closed port: the refusal it cannot hand over is its JSON 503 page."""
    port, closed = processes.free_port(), processes.free_port()
    run_dir = output_dir("nginx", f"app-down-{port}")
    run_dir.chmod(0o755)  # as proxy.main: nginx's workers (nobody, under root) read the error pages
    conf = proxy.render(run_dir, f"127.0.0.1:{port}", f"127.0.0.1:{closed}")
    nginx = subprocess.Popen(
        [system_packages.require("nginx"), "-p", str(run_dir), "-c", str(conf), "-e", "stderr"]
    )
    try:
        deadline = time.monotonic() + 10
        while processes.port_is_free(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        big = b"\0" * (11 * 2**20)
        response = requests.post(
            f"http://127.0.0.1:{port}/predict", files={"file": ("big.bin", big)}, timeout=30
        )
        assert response.status_code == 503
        assert response.headers["Content-Type"] == "application/json"
        assert response.json()["error"] == 503
    finally:
        proxy.stop(nginx, signal.SIGQUIT)


def test_nginx_error_pages_are_json(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        reply = sock.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 400")
    assert "application/json" in reply and '"error": 400' in reply


def test_sigterm_stops_nginx_and_gunicorn_and_frees_the_port():
    server = processes.start(PROXY, env={"PTDEPLOY_LOG_LEVEL": "warning"}, timeout=240)
    assert server.process.send_signal(signal.SIGTERM) is None
    assert server.process.wait(30) == 0
    assert processes.port_is_free(server.port)
    deadline = time.monotonic() + 5  # workers may take a moment to finish exiting
    while time.monotonic() < deadline:
        try:
            os.killpg(server.process.pid, 0)
        except ProcessLookupError:
            break  # nothing of its process group is left
        time.sleep(0.1)
    else:
        pytest.fail("processes of the stack outlived it")
