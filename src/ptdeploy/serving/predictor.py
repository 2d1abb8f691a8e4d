"""The model side of the service: a batched forward pass, top-k with a confidence flag.

Preprocessing is the classifier's own (``Classifier.to_tensor``), so the service and the notebooks
prepare images the same way. The forward pass runs on the runtime chosen in the settings
(``ptdeploy.serving.runtimes``); by default the classifier's own PyTorch module.
"""

import torch

from ptdeploy.classifier import Classifier
from ptdeploy.serving.runtimes import Forward


class Predictor:
    def __init__(
        self,
        classifier: Classifier,
        top_k: int = 5,
        threshold: float = 0.2,
        forward: Forward | None = None,
        runtime: str = "eager",
    ):
        self.classifier = classifier
        self.forward = forward or classifier.model
        self.runtime = runtime
        self.top_k = top_k
        self.threshold = threshold

    @torch.inference_mode()
    def predict_batch(self, tensors: list[torch.Tensor]) -> list[dict]:
        """One forward pass over a list of preprocessed images; one answer per image, in order."""
        ranked = self.classifier.rank(self.forward(torch.stack(tensors)), self.top_k)
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
