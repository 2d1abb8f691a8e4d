"""The runtimes the service can run its classifier on: a batch of images in, logits out (NumPy arrays).

* ``eager``: the PyTorch module as it is;
* ``torchscript``: traced and frozen (the tutorial chapter's TorchScript path);
* ``onnxruntime``: exported once to ONNX with notebook 04's exporter and run by ONNX Runtime. The file
  is cached under outputs/onnx/, keyed by the torch version and the version of the package the weights
  come from, and written atomically, so the second start (or the second worker) loads it instead of
  exporting again. Exporting needs PyTorch, so it runs in a child process: the serving process itself
  never imports torch, and a worker needs a fraction of the memory.

ONNX Runtime runs this model several times faster than eager PyTorch on the CPUs measured (notebook 04
times both), so it is the service's default (``RUNTIME`` in ptdeploy.serving.settings).

``onnx_file()`` makes (or finds) the ONNX file; the export runs as
``python -m ptdeploy.lessons.onnx_export CLASSIFIER PATH OPSET``.
"""

import hashlib
import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np

from ptdeploy.imagenet import DEFAULT_CLASSIFIER, WEIGHTS_PACKAGE
from ptdeploy.paths import output_dir

RUNTIMES = ("eager", "torchscript", "onnxruntime")
ONNX_OPSET = 17

Forward = Callable[[np.ndarray], np.ndarray]


def onnx_path(classifier: str = DEFAULT_CLASSIFIER, folder: Path | None = None) -> Path:
    """Where the classifier's ONNX export is cached: same torch, same weights -> same file name."""
    if classifier not in WEIGHTS_PACKAGE:
        raise ValueError(f"unknown classifier {classifier!r}; choose one of {sorted(WEIGHTS_PACKAGE)}")
    package = WEIGHTS_PACKAGE[classifier]
    key = f"{classifier} torch {version('torch')} {package} {version(package)} opset {ONNX_OPSET}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return (folder or output_dir("onnx")) / f"{classifier}-{digest}.onnx"


def onnx_file(classifier: str = DEFAULT_CLASSIFIER, folder: Path | None = None) -> Path:
    """The classifier as ONNX (dynamic batch): exported on first use, in a child process, and cached."""
    path = onnx_path(classifier, folder)
    if not path.exists():
        # Exporting needs torch: a child process does it (the lesson code of notebook 04), not this one.
        command = [
            sys.executable,
            "-m",
            "ptdeploy.lessons.onnx_export",
            classifier,
            str(path),
            str(ONNX_OPSET),
        ]
        child = subprocess.run(command, capture_output=True, text=True)
        if child.returncode != 0 or not path.exists():
            raise RuntimeError(f"exporting {classifier} to ONNX failed:\n{child.stderr[-2000:]}")
    return path


def load_runtime(name: str, classifier: str = DEFAULT_CLASSIFIER, threads: int | None = None) -> Forward:
    """A function batch (Nx3x224x224 float32) -> logits (Nx1000) running the classifier on ``name``.
    ``threads``: ONNX Runtime's intra-op threads (PyTorch's are set with torch.set_num_threads)."""
    if name not in RUNTIMES:
        raise ValueError(f"unknown runtime {name!r}; choose one of {', '.join(RUNTIMES)}")
    if name == "onnxruntime":
        from ptdeploy.ort import ort_runner, session

        return ort_runner(session(onnx_file(classifier), threads=threads))

    # The PyTorch runtimes load the lessons' classifier and runner (and torch) only when asked for.
    import warnings

    import torch

    from ptdeploy.lessons.classifier import load_classifier
    from ptdeploy.lessons.onnx_export import torch_runner

    model = load_classifier(classifier).model.eval()
    if name == "torchscript":
        with warnings.catch_warnings(), torch.no_grad():
            warnings.filterwarnings("ignore", r"`torch\.jit\.\w+` is deprecated", FutureWarning)
            model = torch.jit.freeze(torch.jit.trace(model, torch.zeros(1, 3, 224, 224)))
    return torch_runner(model)
