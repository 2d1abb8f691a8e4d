"""The Flask application factory: configuration in one place, JSON everywhere, no stack traces out."""

import logging
import os
import threading
import time
from importlib.resources import files

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ptdeploy.serving.admission import Busy
from ptdeploy.serving.images import BadImage, decode_image
from ptdeploy.serving.metrics import Metrics, log_request, request_id
from ptdeploy.serving.settings import app_settings

log = logging.getLogger(__name__)


class ModelState:
    """Loads the model (in a thread, so /health can say "loading") and runs predictions."""

    def __init__(self, config, batcher=None, metrics: Metrics | None = None):
        self.config = config
        self.metrics = metrics or Metrics(config["METRICS"])
        self._own_batcher = batcher
        self.ready = threading.Event()
        self.error: str | None = None
        self.predictor = None
        self.batcher = None
        self.decodes = None
        if config["LOAD_IN_BACKGROUND"]:
            threading.Thread(target=self._load, name="model-loader", daemon=True).start()
        else:
            self._load()

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            # Imported here: under gunicorn this runs in the worker, after fork. On ONNX Runtime (the
            # default) nothing below imports torch.
            from ptdeploy.resources import usable_cpus
            from ptdeploy.serving.admission import DecodeBudget
            from ptdeploy.serving.batching import Batcher
            from ptdeploy.serving.predictor import Predictor
            from ptdeploy.serving.runtimes import load_runtime

            runtime = self.config["RUNTIME"]
            threads = self.config["MODEL_THREADS"] or usable_cpus()
            if runtime != "onnxruntime" and self.config["MODEL_THREADS"]:
                import torch

                torch.set_num_threads(self.config["MODEL_THREADS"])
            self.predictor = Predictor(
                load_runtime(runtime, self.config["CLASSIFIER"], threads),
                runtime,
                self.config["TOP_K"],
                self.config["CONFIDENCE_THRESHOLD"],
            )
            self.decodes = DecodeBudget(
                self.config["DECODE_MEMORY_MB"] * 2**20,
                self.config["DECODE_SLOTS"] or threads,
                self.config["DECODE_QUEUE"],
                self.config["DECODE_WAIT_S"],
            )
            if self._own_batcher is not None:  # e.g. Ray Serve's @serve.batch (ray_app.py)
                self.batcher = self._own_batcher
            elif self.config["BATCHING"]:
                self.batcher = Batcher(
                    self.predictor.predict_batch,
                    self.config["MAX_BATCH_SIZE"],
                    self.config["BATCH_LATENCY_MS"] / 1000,
                )
            self.metrics.load_seconds.set(time.perf_counter() - started)
            self.metrics.runtime.labels(self.config["CLASSIFIER"], runtime).set(1)
            self.ready.set()
        except Exception as exc:
            log.exception("model failed to load")
            self.error = f"{type(exc).__name__}: {exc}"

    def classify(self, data: bytes) -> dict:
        """Bytes of one upload -> answer dict; raises BadImage for input we refuse, Busy when full."""
        predictor = self.predictor
        started = time.perf_counter()
        # Decode no larger than the preprocessing needs: it resizes the shorter side to resize_side.
        image = decode_image(
            data, self.config["MAX_IMAGE_PIXELS"], predictor.resize_side, self.decodes.reserve
        )
        prepared = predictor.prepare(image)
        decoded = time.perf_counter()
        self.metrics.decode.observe(decoded - started)
        if self.batcher is not None:
            answer = self.batcher(prepared)
        else:
            answer = predictor.predict_batch([prepared])[0]
        self.metrics.model.observe(time.perf_counter() - decoded)
        return answer


# nginx passes the requests it refuses as too large on, without their bodies, with this header, so that
# the refusal is answered and counted here like any other.
PROXY_REFUSED = "X-Refused-By-Proxy"


def error(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"error": status, "message": message}), status


def create_app(config: dict | None = None, batcher=None, metrics=None) -> Flask:
    """The service, with ``settings.app_settings(config)``. ``batcher`` (a callable: a prepared image
    array -> answer, with a ``batch_sizes`` Counter), if given, runs every prediction instead of the
    built-in one; ``metrics``, if given, records instead of ``Metrics(config["METRICS"])``. ray_app.py
    passes Ray Serve's batching and ``RayMetrics``."""
    app = Flask(__name__)
    app.config.from_mapping(app_settings(config))
    app.config["PROPAGATE_EXCEPTIONS"] = False  # never hand a traceback to the client
    app.json.sort_keys = False  # keep answers in the order we build them
    metrics = metrics or Metrics(app.config["METRICS"])
    state = ModelState(app.config, batcher, metrics)
    app.extensions["ptdeploy"] = state

    @app.before_request
    def start_request():
        g.request_id = request_id(request.headers.get("X-Request-ID"))
        g.started = time.perf_counter()
        metrics.in_flight.inc()
        g.in_flight = True
        if request.headers.get(PROXY_REFUSED) == "too_large":  # nginx refused the upload unread (nginx.conf)
            raise RequestEntityTooLarge()

    @app.after_request
    def account(response: Response) -> Response:
        seconds = time.perf_counter() - g.get("started", time.perf_counter())
        endpoint = request.url_rule.rule if request.url_rule else "other"  # not the raw path: bounded labels
        metrics.requests.labels(endpoint, str(response.status_code)).inc()
        metrics.latency.labels(endpoint).observe(seconds)
        if response.status_code == 413:
            metrics.refused.labels("too_large").inc()
        elif g.get("refused"):
            metrics.refused.labels(g.refused).inc()
        rid = g.get("request_id") or request_id(None)
        response.headers["X-Request-ID"] = rid
        fields = {"request_id": rid, "method": request.method, "path": request.path, "endpoint": endpoint}
        fields |= {"status": response.status_code, "duration_ms": round(seconds * 1000, 1)}
        if g.get("images"):
            fields["images"] = g.images
        if app.config["ACCESS_LOG"]:
            log_request(**fields)
        return response

    @app.teardown_request
    def finish_request(exc):
        if g.pop("in_flight", False):
            metrics.in_flight.dec()

    if app.config["METRICS"]:

        @app.get("/metrics")
        def metrics_page():
            # Behind nginx only 127.0.0.1 may ask (nginx.conf); gunicorn alone binds 127.0.0.1 by default.
            return Response(metrics.exposition(), content_type=metrics.content_type)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge):
        limit = app.config["MAX_CONTENT_LENGTH"] / 2**20
        return error(413, f"The upload is larger than this service accepts ({limit:g} MB per request).")

    @app.errorhandler(Busy)
    def busy(exc: Busy):
        g.refused = "decode_budget"
        response, status = error(503, exc.message)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response, status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception):
        # the details go to the log, not to the client; never the upload itself
        log.exception("unhandled error (request %s)", g.get("request_id"))
        return error(500, "Internal error; the server logged the details.")

    @app.get("/")
    def index():
        page = files("ptdeploy.serving").joinpath("index.html").read_text()
        return Response(page, mimetype="text/html")

    @app.get("/health")
    def health():
        if state.ready.is_set():
            answer = {
                "status": "ready",
                "model": app.config["CLASSIFIER"],
                "runtime": state.predictor.runtime,
                "pid": os.getpid(),
            }
            if state.batcher is not None:  # how many mini-batches of each size ran so far
                answer["batch_sizes"] = dict(sorted(state.batcher.batch_sizes.items()))
            return jsonify(answer)
        if state.error:
            return jsonify({"status": "failed", "message": "The model failed to load."}), 500
        return jsonify({"status": "loading"}), 503

    @app.post("/predict")
    def predict():
        if not state.ready.is_set():
            return error(503, "The model is still loading; try again in a few seconds.")
        uploads = request.files.getlist("file")
        if not uploads:
            sent = sorted(request.files) or sorted(request.form)
            hint = f" (got field(s): {', '.join(sent)})" if sent else ""
            return error(
                400,
                "Send the image as a multipart/form-data file field named 'file'"
                f"{hint}, e.g. curl -F file=@cat.jpg http://HOST/predict",
            )
        g.images = len(uploads)
        metrics.images.observe(len(uploads))
        if len(uploads) > app.config["MAX_FILES"]:
            return error(413, f"At most {app.config['MAX_FILES']} images per request.")
        if len(uploads) == 1:  # the tutorial's request: one answer, at the top level
            try:
                return jsonify(state.classify(uploads[0].read()))
            except BadImage as exc:
                return error(exc.status, exc.message)
        results = []  # several images: one entry each, in order; a bad one fails alone
        for upload in uploads:
            try:
                results.append({"filename": upload.filename, **state.classify(upload.read())})
            except BadImage as exc:
                results.append({"filename": upload.filename, "error": exc.status, "message": exc.message})
        return jsonify({"results": results})

    return app
