"""The classifier service as a client sees it: `make serve`'s nginx + gunicorn, driven over HTTP.

Every request goes through nginx, as in production, so each check also covers the proxy: its
buffering, its limits and its JSON error pages. (Bare gunicorn, `make serve-direct`, is covered by the
SIGTERM test below and by the other test files.)"""

import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptdeploy.paths import CAT_JPG
from ptdeploy.tools import processes, samples

CAT = CAT_JPG.read_bytes()
PROXY = [sys.executable, "-m", "ptdeploy.serving.proxy"]


@pytest.fixture(scope="module")
def server():
    # MALLOC_ARENA_MAX as `make serve` sets it: fewer glibc arenas, steadier memory with many threads.
    env = {
        "PTDEPLOY_LOG_LEVEL": "warning",
        "PTDEPLOY_WORKERS": "1",
        "PTDEPLOY_THREADS": "8",
        "MALLOC_ARENA_MAX": "2",
    }
    with processes.running(PROXY, env=env, timeout=300) as server:
        yield server


def assert_json_error(response, status):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == status and len(body["message"]) > 10
    assert "Traceback" not in response.text and 'File "' not in response.text


BAD = samples.bad_uploads()


@pytest.mark.parametrize("case", list(BAD))
def test_bad_upload_gets_a_clear_json_error(server, case):
    files, status = BAD[case]
    assert_json_error(requests.post(server.url + "/predict", files=files, timeout=30), status)


@pytest.mark.parametrize(
    "method, path, kwargs, status",
    [
        ("POST", "/predict", {}, 400),  # no body at all
        ("POST", "/predict", {"data": {"file": "not a file"}}, 400),  # a form field, not a file
        ("POST", "/predict", {"json": {"file": "cat.jpg"}}, 400),  # JSON instead of multipart
        ("GET", "/predict", {}, 405),
        ("PUT", "/predict", {"files": {"file": CAT}}, 405),
        ("DELETE", "/health", {}, 405),
        ("GET", "/nowhere", {}, 404),
        ("POST", "/predict/extra", {"files": {"file": CAT}}, 404),
        ("POST", "/predict", {"files": [("file", ("cat.jpg", CAT))] * 17}, 413),  # > MAX_FILES
    ],
)
def test_bad_request_gets_a_clear_json_error(server, method, path, kwargs, status):
    assert_json_error(requests.request(method, server.url + path, timeout=30, **kwargs), status)


def test_the_tutorial_request_still_works(server):
    answer = requests.post(server.url + "/predict", files={"file": open(CAT_JPG, "rb")}, timeout=30).json()
    assert (answer["class_id"], answer["class_name"]) == ("n02124075", "Egyptian_cat")
    assert answer["confident"] and len(answer["top5"]) == 5


@pytest.mark.parametrize("name", list(samples.unusual_images()))
def test_unusual_images_are_classified(server, name):
    data = samples.unusual_images()[name]
    answer = requests.post(server.url + "/predict", files={"file": ("x", data)}, timeout=30).json()
    # every variant is the same cat; greyscale ones lose colour, so accept any cat in the top 3
    assert {"Egyptian_cat", "tabby", "tiger_cat"} & {g["class_name"] for g in answer["top5"][:3]}, answer


def test_several_images_one_result_each_a_bad_one_fails_alone(server):
    files = [
        ("file", ("a.jpg", CAT)),
        ("file", ("b.txt", b"hello")),
        ("file", ("c.webp", samples.unusual_images()["WebP"])),
    ]
    response = requests.post(server.url + "/predict", files=files, timeout=30)
    assert response.status_code == 200
    a, b, c = response.json()["results"]
    assert [a["filename"], b["filename"], c["filename"]] == ["a.jpg", "b.txt", "c.webp"]
    assert a["class_name"] == c["class_name"] == "Egyptian_cat"
    assert b["error"] == 415 and "class_name" not in b


def mutations():
    flip = st.tuples(st.integers(0, len(CAT) - 1), st.integers(0, 255))
    return st.one_of(
        st.binary(max_size=2048),  # random bytes
        st.integers(0, len(CAT)).map(lambda n: CAT[:n]),  # truncated
        st.lists(flip, min_size=1, max_size=20).map(  # bytes overwritten
            lambda edits: bytes(_apply(bytearray(CAT), edits))
        ),
    )


def _apply(data, edits):
    for pos, value in edits:
        data[pos] = value
    return data


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=mutations())
def test_fuzz_every_answer_is_json_2xx_or_4xx(server, data):
    response = requests.post(server.url + "/predict", files={"file": ("fuzz", data)}, timeout=30)
    assert 200 <= response.status_code < 500, response.text
    assert isinstance(response.json(), dict)
    assert requests.get(server.url + "/health", timeout=10).json()["status"] == "ready"


def worker_rss(server) -> int:
    """The gunicorn worker's RSS (the fixture runs one worker; /health names its pid)."""
    pid = requests.get(server.url + "/health", timeout=10).json()["pid"]
    return psutil.Process(pid).memory_info().rss


@pytest.mark.slow
def test_load_2000_requests_at_concurrency_16(server):
    local = threading.local()

    def one(_):
        if not hasattr(local, "session"):
            local.session = requests.Session()
        response = local.session.post(server.url + "/predict", files={"file": ("cat.jpg", CAT)}, timeout=60)
        return response.status_code, response.json().get("class_name")

    rss = []
    answers = []
    with ThreadPoolExecutor(16) as pool:
        for _ in range(4):
            answers += pool.map(one, range(500))
            rss.append(worker_rss(server))
    assert len(answers) == 2000
    assert answers.count((200, "Egyptian_cat")) == 2000
    # No unbounded growth. The allocator's pools grow while batches of new sizes show up (seen: +100 MB
    # over requests 1000-2000 on a loaded machine), then stay; a leak of even 100 kB per request would
    # add 50 MB over the last 500.
    assert rss[3] - rss[2] < 50 * 2**20, [r >> 20 for r in rss]
    assert requests.get(server.url + "/health", timeout=10).json()["status"] == "ready"


def post(server, data, session=requests):
    return session.post(server.url + "/predict", files={"file": ("photo", data)}, timeout=60)


def test_a_large_jpeg_gets_the_small_photos_answer(server):
    # Behaviour only: the same photo at 24 MP gets the same answer. What it costs in time is measured
    # in notebook 01 (interleaved rounds), not asserted here: timings on a shared machine are not tests.
    large = samples.large_photo("JPEG")
    small_answer, large_answer = post(server, CAT).json(), post(server, large).json()
    assert large_answer["class_name"] == small_answer["class_name"] == "Egyptian_cat"


def test_large_photos_at_concurrency_16_keep_memory_bounded(server):
    jpeg, png = samples.large_photo("JPEG"), samples.large_photo("PNG")
    uploads = [png if i % 8 == 0 else jpeg for i in range(64)]  # 56 JPEGs, 8 PNGs (no draft decoding)
    # Settle first: batches of every size up to 8 (concurrency 16) and one decode of each kind grow
    # torch's and the allocator's pools once (~+200 MiB on a fresh worker, whatever the image size).
    with ThreadPoolExecutor(16) as pool:
        assert all(r.ok for r in pool.map(lambda d: post(server, d), [CAT] * 32 + [jpeg, png]))
    baseline = worker_rss(server)
    peak, done = baseline, threading.Event()

    def watch():
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, worker_rss(server))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(16) as pool:
            responses = list(pool.map(lambda d: post(server, d), uploads))
    finally:
        done.set()
        watcher.join()
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 503}, statuses  # 503 only as the intended "busy, retry"
    assert all("Retry-After" in r.headers for r in responses if r.status_code == 503)
    assert {r.json()["class_name"] for r in responses if r.ok} == {"Egyptian_cat"}
    assert statuses.count(200) >= 32, statuses
    growth = (peak - baseline) / 2**20
    assert growth <= 300, f"worker RSS {baseline / 2**20:.0f} MiB -> peak {peak / 2**20:.0f} MiB"


def test_sigterm_shuts_down_cleanly():
    env = {"PTDEPLOY_LOG_LEVEL": "warning"}
    with processes.running(processes.gunicorn_command(), env=env) as server:
        assert requests.post(server.url + "/predict", files={"file": CAT}, timeout=30).ok
        code = server.stop(timeout=20)
    assert code == 0
    assert processes.port_is_free(server.port)
