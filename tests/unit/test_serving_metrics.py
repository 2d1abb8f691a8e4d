"""What the service tells its operator (ptdeploy.serving.metrics): /metrics counts what was sent, each
request gets an id and one JSON log line, and counts of several worker processes add up, dead ones too."""

import io
import json
import logging
import os
import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ptdeploy.paths import CAT_JPG
from ptdeploy.serving import create_app
from ptdeploy.serving import metrics as service_metrics

CAT = CAT_JPG.read_bytes()


def scrape(client) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of one GET /metrics."""
    response = client.get("/metrics")
    assert response.status_code == 200 and response.content_type.startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


@pytest.fixture(scope="module")
def app():
    return create_app({"LOAD_IN_BACKGROUND": False, "BATCHING": False, "MAX_FILES": 2})


def test_metrics_count_what_was_sent(app):
    client = app.test_client()
    for _ in range(3):
        assert client.post("/predict", data={"file": (io.BytesIO(CAT), "cat.jpg")}).status_code == 200
    assert client.post("/predict", data={"file": (io.BytesIO(b"not an image"), "x.txt")}).status_code == 415
    two = {"file": [(io.BytesIO(CAT), "a.jpg"), (io.BytesIO(CAT), "b.jpg")]}
    assert client.post("/predict", data=two).status_code == 200
    three = {"file": [(io.BytesIO(CAT), f"{i}.jpg") for i in range(3)]}
    assert client.post("/predict", data=three).status_code == 413  # MAX_FILES
    assert client.get("/nowhere").status_code == 404
    m = scrape(client)
    predict = (("endpoint", "/predict"),)
    assert m[("ptdeploy_requests_total", (("endpoint", "/predict"), ("status", "200")))] == 4
    assert m[("ptdeploy_requests_total", (("endpoint", "/predict"), ("status", "415")))] == 1
    assert m[("ptdeploy_requests_total", (("endpoint", "/predict"), ("status", "413")))] == 1
    assert m[("ptdeploy_requests_total", (("endpoint", "other"), ("status", "404")))] == 1  # not the path
    assert m[("ptdeploy_request_duration_seconds_count", predict)] == 6
    assert m[("ptdeploy_decode_duration_seconds_count", ())] == 5  # the cats; the text file fails to decode
    assert m[("ptdeploy_model_duration_seconds_count", ())] == 5
    assert m[("ptdeploy_images_per_request_sum", ())] == 3 + 1 + 2 + 3
    assert m[("ptdeploy_refused_requests_total", (("reason", "too_large"),))] == 1
    assert m[("ptdeploy_requests_in_flight", ())] == 1  # this scrape
    runtime = (("model", app.config["CLASSIFIER"]), ("runtime", "onnxruntime"))
    assert m[("ptdeploy_runtime_info", runtime)] == 1
    assert m[("ptdeploy_model_load_seconds", ())] > 0


def test_a_full_decode_budget_is_counted():
    app = create_app({"LOAD_IN_BACKGROUND": False, "BATCHING": False, "DECODE_SLOTS": 1, "DECODE_QUEUE": 0})
    client = app.test_client()
    with app.extensions["ptdeploy"].decodes.reserve(1):
        assert client.post("/predict", data={"file": (io.BytesIO(CAT), "cat.jpg")}).status_code == 503
    assert scrape(client)[("ptdeploy_refused_requests_total", (("reason", "decode_budget"),))] == 1


@pytest.mark.parametrize(
    "sent, kept",
    [
        ("abc-123.x:y_z", True),
        ("", False),
        ("two words", False),
        ('x"\n{"forged": 1}', False),
        ("x" * 200, False),
    ],
)
def test_request_id_is_kept_only_when_it_is_a_plain_token(sent, kept):
    made = service_metrics.request_id(sent)
    assert (made == sent) is kept
    if not kept:
        assert len(made) == 32 and int(made, 16) >= 0


def test_each_request_logs_one_json_line_with_its_id_and_no_upload(app, caplog):
    client = app.test_client()
    with caplog.at_level(logging.INFO, logger="ptdeploy.serving.access"):
        given = client.post(
            "/predict", data={"file": (io.BytesIO(CAT), "cat.jpg")}, headers={"X-Request-ID": "r-1"}
        )
        made = client.post("/predict", data={"file": (io.BytesIO(b"\x89PNG junk"), "x.png")})
    assert given.headers["X-Request-ID"] == "r-1"
    assert len(made.headers["X-Request-ID"]) == 32
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "ptdeploy.serving.access"]
    assert [(line["request_id"], line["status"]) for line in lines] == [
        ("r-1", 200),
        (made.headers["X-Request-ID"], made.status_code),
    ]
    assert lines[0]["path"] == "/predict" and lines[0]["images"] == 1 and lines[0]["duration_ms"] > 0
    assert all("PNG junk" not in r.getMessage() for r in caplog.records)


WORKER = """
import sys
from ptdeploy.serving.metrics import Metrics
m = Metrics()
assert m.multiprocess
for _ in range(int(sys.argv[1])):
    m.requests.labels("/predict", "200").inc()
m.in_flight.inc()
"""
SCRAPE = """
from prometheus_client.parser import text_string_to_metric_families
from ptdeploy.serving.metrics import Metrics
text = Metrics().exposition().decode()
for family in text_string_to_metric_families(text):
    for s in family.samples:
        if s.name in ("ptdeploy_requests_total", "ptdeploy_requests_in_flight"):
            print(s.name, int(s.value))
"""


def test_worker_processes_add_up_and_a_dead_worker_keeps_its_counts(tmp_path):
    """As under gunicorn: each worker process writes to the shared folder; a scrape in any process sums
    them. A worker that exited (gunicorn's child_exit hook) keeps its counts but leaves the live gauges."""
    env = {**os.environ, service_metrics.MULTIPROCESS_DIR: str(tmp_path)}

    def run(code, *args):
        return subprocess.run([sys.executable, "-c", code, *args], env=env, text=True, capture_output=True)

    first, second = run(WORKER, "3"), run(WORKER, "4")
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    pids = sorted(int(p.stem.rsplit("_", 1)[1]) for p in tmp_path.glob("gauge_livesum_*.db"))
    assert len(pids) == 2
    before = run(SCRAPE).stdout.split("\n")
    assert "ptdeploy_requests_total 7" in before and "ptdeploy_requests_in_flight 2" in before
    os.environ[service_metrics.MULTIPROCESS_DIR] = str(tmp_path)
    try:
        service_metrics.worker_exited(pids[0])
    finally:
        del os.environ[service_metrics.MULTIPROCESS_DIR]
    after = run(SCRAPE).stdout.split("\n")
    assert "ptdeploy_requests_total 7" in after and "ptdeploy_requests_in_flight 1" in after


def test_metrics_and_the_request_log_can_be_switched_off(caplog):
    """Ray Serve switches metrics off (a scrape there would reach one replica); the serving benchmark
    switches both off to measure what they cost."""
    app = create_app({"LOAD_IN_BACKGROUND": False, "METRICS": False, "ACCESS_LOG": False})
    with caplog.at_level(logging.INFO, logger="ptdeploy.serving.access"):
        answer = app.test_client().post("/predict", data={"file": (io.BytesIO(CAT), "cat.jpg")})
        assert app.test_client().get("/metrics").status_code == 404
    assert answer.status_code == 200 and len(answer.headers["X-Request-ID"]) == 32  # the id stays
    assert not [r for r in caplog.records if r.name == "ptdeploy.serving.access"]


def test_histogram_quantile_is_prometheus_interpolation():
    cumulative = {0.1: 10, 0.5: 30, float("inf"): 40}
    assert service_metrics.histogram_quantile(0.5, cumulative) == pytest.approx(0.3)  # rank 20, halfway
    assert service_metrics.histogram_quantile(0.25, cumulative) == pytest.approx(0.1)
    assert service_metrics.histogram_quantile(0.9, cumulative) == 0.5  # in +Inf: the last bound known
    with pytest.raises(ValueError):
        service_metrics.histogram_quantile(0.5, {0.1: 1})


def test_buckets_are_read_and_summed_over_matching_series():
    text = (
        "# TYPE t histogram\n"
        't_bucket{endpoint="/a",le="0.1"} 1.0\nt_bucket{endpoint="/a",le="+Inf"} 2.0\n'
        't_bucket{endpoint="/b",le="0.1"} 5.0\nt_bucket{endpoint="/b",le="+Inf"} 7.0\n'
    )
    assert service_metrics.buckets(text, "t", endpoint="/a") == {0.1: 1, float("inf"): 2}
    assert service_metrics.buckets(text, "t") == {0.1: 6, float("inf"): 9}


def test_the_request_log_works_with_metrics_off(capfd):
    """As on Ray Serve: metrics off, each request still logged, on stderr."""
    handlers = list(service_metrics.access_log.handlers)
    service_metrics.access_log.handlers.clear()  # as in a fresh process
    try:
        app = create_app({"LOAD_IN_BACKGROUND": False, "METRICS": False})
        app.test_client().get("/health", headers={"X-Request-ID": "ray-1"})
    finally:
        service_metrics.access_log.handlers[:] = handlers  # the new one wrote to this test's stderr
    line = json.loads(capfd.readouterr().err.strip().splitlines()[-1])
    assert line["request_id"] == "ray-1" and line["path"] == "/health"


class FakeRayMetric:
    """Records what a Ray metric would be given."""

    def __init__(self):
        self.calls = []

    def inc(self, value, tags=None):
        self.calls.append(("inc", value, tags))

    def observe(self, value, tags=None):
        self.calls.append(("observe", value, tags))

    def set(self, value, tags=None):
        self.calls.append(("set", value, tags))


def test_a_ray_metric_takes_prometheus_clients_calls():
    fake = FakeRayMetric()
    refused = service_metrics._RayMetric(fake, ("reason",))
    refused.labels("too_large").inc()
    service_metrics._RayMetric(fake).observe(0.25)
    service_metrics._RayMetric(fake, ("model", "runtime")).labels("m", "r").set(1)
    assert fake.calls == [
        ("inc", 1, {"reason": "too_large"}),
        ("observe", 0.25, None),
        ("set", 1, {"model": "m", "runtime": "r"}),
    ]
    with pytest.raises(ValueError):  # a label missing or one too many is a mistake, not a silent drop
        refused.labels("too_large", "extra")


def test_a_ray_gauge_says_its_last_values_again():
    fake = FakeRayMetric()
    runtime = service_metrics._RayMetric(fake, ("runtime",))
    runtime.labels("onnxruntime").set(1)
    runtime.labels("onnxruntime").set(2)
    runtime.labels("torch").set(1)
    fake.calls.clear()
    runtime.say_again()  # Ray drops a gauge it no longer hears of
    assert fake.calls == [("set", 2, {"runtime": "onnxruntime"}), ("set", 1, {"runtime": "torch"})]


def test_every_metric_has_its_name_on_ray():
    names = {d.name + ("_total" if d.kind == "counter" else "") for d in service_metrics.DEFINITIONS.values()}
    assert set(service_metrics.RAY_NAMES) == names
    ray_own = {service_metrics.DEFINITIONS[a].name for a in service_metrics.RayMetrics.RAY_COUNTS}
    for ours, theirs in service_metrics.RAY_NAMES.items():
        # the service's own keep their name behind Ray's prefix; Ray's own counts have names of their own
        assert (theirs == "ray_" + ours) != (ours.removesuffix("_total") in ray_own), ours
