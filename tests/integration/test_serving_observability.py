"""The service's metrics and request ids under `make serve`: nginx on every address, two gunicorn workers.

/metrics sums both workers and keeps a killed worker's counts; only this machine may read it; a request
id follows each request from the client (or nginx) to the response and the service's log.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from ptdeploy import system_packages
from ptdeploy.paths import CAT_JPG
from ptdeploy.serving import metrics
from ptdeploy.tools import processes

CAT = CAT_JPG.read_bytes()
PROXY = [sys.executable, "-m", "ptdeploy.serving.proxy"]
TEXT = {"capture_output": True, "text": True, "timeout": 60}
needs_prometheus = pytest.mark.skipif(
    system_packages.find("prometheus") is None or system_packages.find("promtool") is None,
    reason="needs Debian's prometheus: `make system-packages-tests` (run by `make test`)",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("metrics") / "server.log"
    env = {
        "PTDEPLOY_HOST": "0.0.0.0",  # nginx on every address: /metrics must still be for 127.0.0.1 only
        "PTDEPLOY_WORKERS": "2",
        "PTDEPLOY_THREADS": "4",
        "PTDEPLOY_LOG_LEVEL": "warning",
        "MALLOC_ARENA_MAX": "2",
    }
    with processes.running(PROXY, env=env, timeout=300, log=log) as server:
        wait_for_workers(server, 2)
        yield server


def gunicorn_workers(server) -> list[psutil.Process]:
    """The live worker processes (a killed one is a zombie until gunicorn reaps it)."""
    workers = []
    for child in psutil.Process(server.process.pid).children():
        try:
            if "gunicorn" in " ".join(child.cmdline()):
                workers += [w for w in child.children() if w.status() != psutil.STATUS_ZOMBIE]
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            pass
    return workers


def wait_for_workers(server, n: int, timeout: float = 120) -> list[int]:
    """The pids of ``n`` workers that each answered /health as ready."""
    deadline = time.monotonic() + timeout
    seen = set()
    while time.monotonic() < deadline:
        pids = {p.pid for p in gunicorn_workers(server)}
        answer = requests.get(f"{server.url}/health", timeout=10)
        if answer.ok:
            seen.add(answer.json()["pid"])
        if len(pids) == n and pids <= seen:
            return sorted(pids)
        seen &= pids
    raise TimeoutError(f"{n} ready workers not seen within {timeout} s")


def predict_counts(server) -> dict[str, float]:
    """/metrics through nginx from 127.0.0.1: requests to /predict by status, and their latency count."""
    text = requests.get(f"{server.url}/metrics", timeout=10)
    assert text.status_code == 200, text.text
    counts = {}
    for family in text_string_to_metric_families(text.text):
        for s in family.samples:
            if s.labels.get("endpoint") == "/predict":
                key = s.labels.get("status") or s.name.removeprefix("ptdeploy_request_duration_seconds_")
                counts[key] = counts.get(key, 0) + s.value
    return counts


def test_counts_of_both_workers_add_up_and_survive_a_killed_worker(server):
    before = predict_counts(server)
    cat = {"file": ("cat.jpg", CAT, "image/jpeg")}
    text = {"file": ("notes.txt", b"not an image", "text/plain")}
    with ThreadPoolExecutor(4) as pool:
        good = list(
            pool.map(lambda _: requests.post(f"{server.url}/predict", files=cat, timeout=30), range(20))
        )
        bad = list(
            pool.map(lambda _: requests.post(f"{server.url}/predict", files=text, timeout=30), range(5))
        )
    assert [r.status_code for r in good] == [200] * 20 and [r.status_code for r in bad] == [415] * 5
    served_by = {r.headers.get("X-Request-ID") for r in good}
    assert len(served_by) == 20  # one id per request

    def sent_since(counts):
        return {k: counts.get(k, 0) - before.get(k, 0) for k in ("200", "415", "count")}

    assert sent_since(predict_counts(server)) == {"200": 20, "415": 5, "count": 25}
    victim = wait_for_workers(server, 2)[0]
    os.kill(victim, signal.SIGKILL)  # gunicorn starts a new worker in its place
    assert victim not in wait_for_workers(server, 2)
    assert sent_since(predict_counts(server)) == {"200": 20, "415": 5, "count": 25}  # nothing lost


def test_metrics_are_for_this_machine_only(server):
    outside = [
        a.address
        for addrs in psutil.net_if_addrs().values()
        for a in addrs
        if a.family.name == "AF_INET" and not a.address.startswith("127.")
    ]
    if not outside:
        pytest.skip("this machine has no address but loopback")
    url = f"http://{outside[0]}:{server.port}"
    assert requests.get(f"{url}/health", timeout=10).ok  # the service itself answers there
    refused = requests.get(f"{url}/metrics", timeout=10)
    assert refused.status_code == 403 and refused.json()["error"] == 403
    assert requests.get(f"{server.url}/metrics", timeout=10).ok


def test_a_request_id_follows_each_request_into_the_log(server):
    given = requests.get(f"{server.url}/health", headers={"X-Request-ID": "trace-42"}, timeout=10)
    assert given.headers["X-Request-ID"] == "trace-42"
    made = requests.get(f"{server.url}/health", timeout=10).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)  # nginx's own id, passed to the service and back
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [json.loads(x) for x in server.log.read_text().splitlines() if x.startswith('{"time"')]
        ids = {line["request_id"]: line for line in lines}
        if "trace-42" in ids and made in ids:
            break
        time.sleep(0.2)
    assert ids["trace-42"]["status"] == 200 and ids["trace-42"]["path"] == "/health"
    assert ids[made]["status"] == 200


RULES = Path(__file__).resolve().parents[2] / "src" / "ptdeploy" / "serving" / "prometheus" / "rules.yml"


@needs_prometheus
def test_the_alert_rules_are_valid():
    checked = subprocess.run([system_packages.require("promtool"), "check", "rules", str(RULES)], **TEXT)
    assert checked.returncode == 0 and "SUCCESS: 4 rules found" in checked.stdout, (
        checked.stdout + checked.stderr
    )


def query(prometheus, expr: str) -> float | None:
    answer = requests.get(f"{prometheus.url}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", answer
    result = answer["data"]["result"]
    return float(result[0]["value"][1]) if result else None


@needs_prometheus
def test_a_real_prometheus_scrape_counts_what_was_sent(server, tmp_path):
    config = {
        "global": {"scrape_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {"job_name": "ptdeploy", "static_configs": [{"targets": [f"127.0.0.1:{server.port}"]}]}
        ],
    }
    (tmp_path / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    command = [system_packages.require("prometheus"), f"--config.file={tmp_path / 'prometheus.yml'}"]
    command += [f"--storage.tsdb.path={tmp_path / 'data'}", "--web.listen-address=127.0.0.1:{port}"]
    good = 'sum(ptdeploy_requests_total{endpoint="/predict",status="200"})'
    bad = 'sum(ptdeploy_requests_total{endpoint="/predict",status="415"})'
    with processes.running(command, ready_path="/-/ready", log=tmp_path / "prometheus.log") as prometheus:
        wait_until(lambda: query(prometheus, 'up{job="ptdeploy"}') == 1)  # its first scrape is in
        before = {expr: query(prometheus, expr) or 0 for expr in (good, bad)}
        cat = {"file": ("cat.jpg", CAT, "image/jpeg")}
        text = {"file": ("notes.txt", b"not an image", "text/plain")}
        for files, status, n in ((cat, 200, 12), (text, 415, 3)):
            for _ in range(n):
                assert requests.post(f"{server.url}/predict", files=files, timeout=30).status_code == status
        wait_until(lambda: query(prometheus, good) == before[good] + 12)
        wait_until(lambda: query(prometheus, bad) == before[bad] + 3)
        # the latency quantile Prometheus computes is the one the service's buckets give
        buckets = 'sum by (le) (ptdeploy_request_duration_seconds_bucket{endpoint="/predict"})'
        p90 = f"histogram_quantile(0.9, {buckets})"
        from_prometheus = query(prometheus, p90)
    text = requests.get(f"{server.url}/metrics", timeout=10).text
    mine = metrics.histogram_quantile(
        0.9, metrics.buckets(text, "ptdeploy_request_duration_seconds", endpoint="/predict")
    )
    assert from_prometheus == pytest.approx(mine)
    assert 0 < from_prometheus <= max(metrics.LATENCY_BUCKETS)


def wait_until(condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "Prometheus did not see it in time"
        time.sleep(0.25)
