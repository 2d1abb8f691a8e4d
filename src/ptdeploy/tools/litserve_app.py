"""The same classifier on the same runtime behind LitServe: the benchmark's outside anchor.

Runtime and batching follow the service's settings (ptdeploy.serving.settings: PTDEPLOY_RUNTIME,
PTDEPLOY_BATCHING, ...), so both servers run the same model the same way.

Run: PTDEPLOY_PORT=8000 python -m ptdeploy.tools.litserve_app  (binds 127.0.0.1).
"""

import litserve as ls

from ptdeploy.resources import usable_cpus
from ptdeploy.serving.images import decode_image
from ptdeploy.serving.predictor import Predictor
from ptdeploy.serving.runtimes import load_runtime
from ptdeploy.serving.settings import app_settings, process_settings

SETTINGS = app_settings()  # the service's own settings, from the same PTDEPLOY_<NAME> variables
RUNTIME = SETTINGS["RUNTIME"]
BATCHING = SETTINGS["BATCHING"]


class ClassifierAPI(ls.LitAPI):
    def setup(self, device):
        threads = SETTINGS["MODEL_THREADS"] or usable_cpus()
        if RUNTIME != "onnxruntime":
            import torch

            torch.set_num_threads(threads)
        forward = load_runtime(RUNTIME, SETTINGS["CLASSIFIER"], threads)
        self.predictor = Predictor(forward, RUNTIME, SETTINGS["TOP_K"], SETTINGS["CONFIDENCE_THRESHOLD"])

    def decode_request(self, request):
        # multipart field "file", like the Flask service
        data = request["file"].file.read()
        image = decode_image(data, SETTINGS["MAX_IMAGE_PIXELS"], self.predictor.resize_side)
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
        max_batch_size=SETTINGS["MAX_BATCH_SIZE"] if BATCHING else 1,
        batch_timeout=SETTINGS["BATCH_LATENCY_MS"] / 1000 if BATCHING else 0.0,
    )
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1)
    server.run(
        host="127.0.0.1",
        port=process_settings(default_port=8000).port,
        generate_client_file=False,
        log_level="warning",
    )
