"""The model side of the service: images in, one forward pass per batch, top-k with a confidence flag.

Everything here is NumPy: the preprocessing is the tutorial's, in ``ptdeploy.imagenet`` (checked to
give the same numbers as its torchvision transform), and the forward pass is a function on arrays
from ``ptdeploy.serving.runtimes``. On ONNX Runtime, the default, a worker never imports torch.
"""

import numpy as np
from PIL import Image

from ptdeploy.imagenet import RESIZE_SIDE, to_array, top_k
from ptdeploy.serving.runtimes import Forward


class Predictor:
    resize_side = RESIZE_SIDE  # decoding need not keep more detail than the preprocessing uses

    def __init__(self, forward: Forward, runtime: str, top_k: int = 5, threshold: float = 0.2):
        self.forward = forward
        self.runtime = runtime
        self.top_k = top_k
        self.threshold = threshold

    def prepare(self, image: Image.Image) -> np.ndarray:
        """A decoded image -> the model's input for it, 3x224x224 (stack several to make a batch)."""
        return to_array(image)

    def predict_batch(self, arrays: list[np.ndarray]) -> list[dict]:
        """One forward pass over a list of prepared images; one answer per image, in order."""
        ranked = top_k(self.forward(np.stack(arrays)), self.top_k)
        return [self._answer(top) for top in ranked]

    def _answer(self, top: list[tuple[str, str, float]]) -> dict:
        wnid, name, p = top[0]
        answer = {
            # the tutorial's two keys, so its client keeps working
            "class_id": wnid,
            "class_name": name,
            "probability": round(p, 4),
            "confident": p >= self.threshold,
            "top5": [{"class_id": w, "class_name": n, "probability": round(q, 4)} for w, n, q in top],
        }
        if not answer["confident"]:
            answer["message"] = (
                f"Not sure what this is: the best guess, {name}, has probability {p:.2f}, "
                f"below the confidence threshold {self.threshold:.2f}."
            )
        return answer
