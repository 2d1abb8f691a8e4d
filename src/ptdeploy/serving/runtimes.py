"""The runtimes the service can run its classifier on: a batch of images in, logits out.

* ``eager``: the PyTorch module as it is;
* ``torchscript``: traced and frozen (the tutorial chapter's TorchScript path);
* ``onnxruntime``: exported once to ONNX with notebook 04's exporter and run by ONNX Runtime; the
  file is cached under outputs/onnx/, keyed by torch version and weights, and written atomically, so
  the second start (or the second worker) loads it instead of exporting again.

Measured on this project's 2-core machine (one image, 2 threads): eager Lite0 ~20 ms, ONNX Runtime
~6 ms, so ONNX Runtime is the service's default (``DEFAULTS["RUNTIME"]`` in app.py).
"""

import hashlib
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from ptdeploy.classifier import Classifier
from ptdeploy.paths import output_dir

RUNTIMES = ("eager", "torchscript", "onnxruntime")
ONNX_OPSET = 17

Forward = Callable[[torch.Tensor], torch.Tensor]


def weights_key(model: torch.nn.Module) -> str:
    """Same torch and same weights -> same key (names the cached export)."""
    digest = hashlib.sha256(torch.__version__.encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def onnx_file(classifier: Classifier, folder: Path | None = None) -> Path:
    """The classifier as ONNX (dynamic batch), exported on first use and cached."""
    from ptdeploy.onnx_export import export_torchscript

    folder = folder or output_dir("onnx")
    path = folder / f"{classifier.name}-{weights_key(classifier.model)}.onnx"
    if not path.exists():
        # Export next to the final name, then rename: a reader never sees half a file, and two
        # workers exporting at once each write their own temporary file.
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=path.stem, suffix=".partial.onnx")
        os.close(fd)
        try:
            example = torch.zeros(1, 3, 224, 224)
            export_torchscript(classifier.model, example, Path(tmp), opset=ONNX_OPSET)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    return path


def load_runtime(name: str, classifier: Classifier, threads: int | None = None) -> Forward:
    """A function batch (Nx3x224x224) -> logits (Nx1000) running the classifier on runtime ``name``."""
    if name not in RUNTIMES:
        raise ValueError(f"unknown runtime {name!r}; choose one of {', '.join(RUNTIMES)}")
    model = classifier.model.eval()
    if name == "eager":
        return model
    if name == "torchscript":
        with warnings.catch_warnings(), torch.no_grad():
            warnings.filterwarnings("ignore", r"`torch\.jit\.\w+` is deprecated", FutureWarning)
            return torch.jit.freeze(torch.jit.trace(model, torch.zeros(1, 3, 224, 224)))
    from ptdeploy.onnx_export import ort_runner, session

    run = ort_runner(session(onnx_file(classifier), threads=threads or torch.get_num_threads()))
    return lambda batch: torch.from_numpy(run(batch.numpy()))
