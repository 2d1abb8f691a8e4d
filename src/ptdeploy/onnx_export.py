"""Export a PyTorch model to ONNX (either exporter), check it, run it in ONNX Runtime, time it.

Two exporters ship with torch.onnx.export: the legacy TorchScript-based one (``dynamo=False``, the
tutorial's) and the torch.export-based one (``dynamo=True``, the default since PyTorch 2.9).
"""

import contextlib
import io
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

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
    """The same, for PyTorch eager (no autograd)."""

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    return run


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def median_ms(fn: Callable[[], object], runs: int = 5) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``runs`` calls."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def interleaved_ms(
    fns: dict[str, Callable[[], object]], rounds: int = 5, runs: int = 5, warmup: int = 3
) -> dict[str, list[float]]:
    """Per-round median latency (ms) of each function, the rounds interleaved: A, B, A, B, ...

    On a shared machine load comes and goes; interleaving exposes every function to the same load,
    so a comparison that holds in every round is not an accident of when each one ran.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    per_round = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            per_round[name].append(median_ms(fn, runs))
    return per_round


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
