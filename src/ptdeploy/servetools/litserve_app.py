"""The same classifier on the same runtime behind LitServe: the benchmark's outside anchor.

Runtime and batching follow the service's settings (PTDEPLOY_RUNTIME, PTDEPLOY_BATCHING, or the
defaults in ptdeploy.serving.app), so both servers run the same model the same way.

Run: PTDEPLOY_PORT=8000 python -m ptdeploy.servetools.litserve_app  (binds 127.0.0.1).
"""

import os

import litserve as ls

from ptdeploy.resources import usable_cpus
from ptdeploy.serving.app import DEFAULTS
from ptdeploy.serving.images import decode_image
from ptdeploy.serving.predictor import Predictor
from ptdeploy.serving.runtimes import load_runtime

RUNTIME = os.environ.get("PTDEPLOY_RUNTIME", DEFAULTS["RUNTIME"])
BATCHING = os.environ.get("PTDEPLOY_BATCHING", str(DEFAULTS["BATCHING"])).lower() == "true"


class ClassifierAPI(ls.LitAPI):
    def setup(self, device):
        threads = int(os.environ.get("PTDEPLOY_TORCH_THREADS", "0")) or usable_cpus()
        if RUNTIME != "onnxruntime":
            import torch

            torch.set_num_threads(threads)
        forward = load_runtime(RUNTIME, DEFAULTS["CLASSIFIER"], threads)
        self.predictor = Predictor(forward, RUNTIME, DEFAULTS["TOP_K"], DEFAULTS["CONFIDENCE_THRESHOLD"])

    def decode_request(self, request):
        # multipart field "file", like the Flask service
        data = request["file"].file.read()
        image = decode_image(data, DEFAULTS["MAX_IMAGE_PIXELS"], self.predictor.resize_side)
        return self.predictor.prepare(image)

    def batch(self, inputs):
        return inputs  # predict_batch takes the list

    def predict(self, arrays):
        if BATCHING:  # LitServe hands over the batch() list
            return self.predictor.predict_batch(arrays)
        return self.predictor.predict_batch([arrays])[0]  # unbatched: one image in, one answer out

    def unbatch(self, outputs):
        return outputs

    def encode_response(self, output):
        return output


if __name__ == "__main__":
    api = ClassifierAPI(
        max_batch_size=DEFAULTS["MAX_BATCH_SIZE"] if BATCHING else 1,
        batch_timeout=DEFAULTS["BATCH_LATENCY_MS"] / 1000 if BATCHING else 0.0,
    )
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1)
    server.run(
        host="127.0.0.1",
        port=int(os.environ.get("PTDEPLOY_PORT", "8000")),
        generate_client_file=False,
        log_level="warning",
    )
