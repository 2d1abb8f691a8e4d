"""Looking at a Ray Serve deployment from outside: which replicas answer, and what Ray costs in memory.

Each answer of ``ptdeploy.serving.ray_app`` names its replica (``X-Replica``) and ``/health`` gives the
replica's pid, so a client can tell the replicas apart and find their processes.
"""

import time

import psutil
import requests

from ptdeploy.serving import metrics


def replica_pids(url: str, tries: int = 20, timeout: float = 60) -> dict[str, int]:
    """replica id -> pid, from ``tries`` /health requests (Ray spreads them over the replicas)."""
    pids = {}
    for _ in range(tries):
        answer = requests.get(url + "/health", timeout=timeout)
        if answer.ok:
            pids[answer.headers["X-Replica"]] = answer.json()["pid"]
    return pids


def wait_for_replicas(url: str, count: int, timeout: float) -> dict[str, int]:
    """Wait until ``count`` replicas answer (the first one answers while the others still load)."""
    deadline = time.monotonic() + timeout
    while len(pids := replica_pids(url, tries=10)) < count and time.monotonic() < deadline:
        time.sleep(1)
    return pids


def ray_request_counts(metrics_url: str) -> dict[int, int]:
    """Requests Ray Serve's HTTP proxy answered, by status, from one scrape of Ray's metrics agent."""
    text = requests.get(metrics_url, timeout=10).text
    counted = metrics.totals(
        text, "ray_serve_num_http_requests_total", by="status_code", application="classifier"
    )
    return {int(status): int(total) for status, total in sorted(counted.items())}


def settled(read, pause: float, timeout: float = 60):
    """``read()`` once two reads ``pause`` seconds apart agree. Ray's processes hand their metrics to the
    agent every few seconds (``RAY_metrics_report_interval_ms``), so a scrape lags the requests; with
    ``pause`` longer than that interval, two equal reads mean nothing is still on its way."""
    deadline = time.monotonic() + timeout
    last = read()
    while time.monotonic() < deadline:
        time.sleep(pause)
        if (now := read()) == last:
            return now
        last = now
    raise TimeoutError(f"the values still changed after {timeout} s")


def ray_memory(pid: int) -> tuple[int, list[int]]:
    """(PSS bytes of Ray's own processes, [PSS bytes of each replica]) under the process ``pid``.

    PSS splits shared pages between the processes that share them, so the sum is what the whole takes.
    "Ray's own" is everything but the replicas: the driver, GCS, raylet, agents, Serve's controller and
    HTTP proxy.
    """
    root = psutil.Process(pid)
    own, replicas = 0, []
    for proc in [root, *root.children(recursive=True)]:
        try:
            pss = proc.memory_full_info().pss
            name = " ".join(proc.cmdline())
        except psutil.Error:  # exited meanwhile
            continue
        if "ServeReplica" in name:
            replicas.append(pss)
        else:
            own += pss
    return own, replicas


def family(pid: int) -> list[int]:
    """``pid`` and every process under it (to check that none outlives a shutdown)."""
    return [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]


def alive(pids: list[int]) -> list[int]:
    """The processes of ``pids`` that still run (zombies waiting for their parent do not count)."""
    running = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                running.append(pid)
        except psutil.NoSuchProcess:
            pass
    return running
