"""Chapter 04: export a PyTorch model to ONNX (either exporter), check it, run it in ONNX Runtime, time it.

Two exporters ship with torch.onnx.export: the legacy TorchScript-based one (``dynamo=False``, the
tutorial's) and the torch.export-based one (``dynamo=True``, the default since PyTorch 2.9).
"""

import contextlib
import io
import os
import statistics
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from ptdeploy.imagenet import WEIGHTS_PACKAGE
from ptdeploy.lessons.timing import interleaved_ms

# Sessions and runners live in ptdeploy.ort, which the service imports without torch.
from ptdeploy.ort import ORT_LEVELS, ort_runner, session


def export_torchscript(model: torch.nn.Module, example: torch.Tensor, path: Path, opset: int = 10) -> Path:
    """The tutorial's export: TorchScript-based exporter, a dynamic batch axis via ``dynamic_axes``.

    The exporter warns that it is deprecated (notebook 04 shows that once); the warning is silenced here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            example,
            str(path),
            dynamo=False,
            export_params=True,
            opset_version=opset,
            do_constant_folding=True,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch_size"}, "output": {0: "batch_size"}},
        )
    return path


def export_dynamo(model: torch.nn.Module, example: torch.Tensor, path: Path) -> Path:
    """The modern export: torch.export-based exporter, a dynamic batch axis via ``dynamic_shapes``.

    Its progress lines and warnings go to a buffer: they are chatty and differ between runs.
    """
    name = next(iter(_forward_args(model)))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            verbose=False,
            input_names=["input"],
            output_names=["output"],
            dynamic_shapes={name: {0: torch.export.Dim("batch_size")}},
        )
        program.save(str(path), external_data=False)  # one self-contained file
    return path


def _forward_args(model: torch.nn.Module) -> list[str]:
    import inspect

    return list(inspect.signature(model.forward).parameters)


def check(path: Path) -> onnx.ModelProto:
    """Load an ONNX file and validate it with the ONNX checker (raises if invalid)."""
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    return proto


def opset(proto: onnx.ModelProto) -> int:
    """The default-domain ONNX opset a model was exported with."""
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))


def batch_dim(proto: onnx.ModelProto) -> str | int:
    """The first input's batch dimension: a name if dynamic, a number if fixed."""
    dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    return dim.dim_param or dim.dim_value


def torch_runner(model: torch.nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    """A NumPy array in, the model's output as a NumPy array out: PyTorch eager, no autograd. The one
    array -> torch -> array runner (ONNX Runtime's is ``ptdeploy.ort.ort_runner``)."""

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    return run


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


@dataclass
class Timing:
    model: str
    runtime: str  # "torch eager" or "ORT <level>"
    rounds_ms: list[float]  # the median latency of each round

    @property
    def median_ms(self) -> float:
        return statistics.median(self.rounds_ms)


def benchmark(
    name: str,
    model: torch.nn.Module,
    onnx_path: Path,
    example: np.ndarray,
    threads: int,
    rounds: int = 5,
    runs: int = 5,
) -> list[Timing]:
    """Batch latency of PyTorch eager and of ONNX Runtime at each graph optimisation level, in
    interleaved rounds, with the same number of intra-op threads for both."""
    eager = torch_runner(model)
    fns = {"torch eager": lambda: eager(example)}
    for level in ORT_LEVELS:
        # The runtimes take turns: a session's idle threads must not spin on the cores of the next one,
        # and four sessions must not each keep their largest activations between turns (no arena).
        run = ort_runner(session(onnx_path, threads=threads, level=level, spinning=False, arena=False))
        fns[f"ORT {level}"] = lambda run=run: run(example)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        per_round = interleaved_ms(fns, rounds, runs)
    finally:
        torch.set_num_threads(previous)
    return [Timing(name, runtime, ms) for runtime, ms in per_round.items()]


def export_classifier(classifier: str, path: Path, opset: int) -> Path:
    """Export a pretrained classifier (``load_classifier(classifier)``) with the tutorial's exporter and a
    dynamic batch, to ``path``. Written next to the final name, then renamed: a reader never sees half a
    file, and two processes exporting at once each write their own."""
    from ptdeploy.lessons.classifier import load_classifier

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".partial.onnx")
    os.close(fd)
    try:
        example = torch.zeros(1, 3, 224, 224)
        export_torchscript(load_classifier(classifier).model, example, Path(tmp), opset=opset)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m ptdeploy.lessons.onnx_export CLASSIFIER PATH OPSET``: what the service runs, in a child
    process, when its ONNX file is not cached yet (the service itself never imports torch)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("classifier", choices=sorted(WEIGHTS_PACKAGE))
    parser.add_argument("path", type=Path)
    parser.add_argument("opset", type=int)
    args = parser.parse_args(argv)
    print(export_classifier(args.classifier, args.path, args.opset))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
