"""ONNX Runtime on the CPU: a session with a chosen optimisation level and thread count, and a runner.

Kept apart from ``ptdeploy.lessons.onnx_export`` (which needs PyTorch to export) so that the service can
run an exported model without importing torch.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime

# ORT's graph optimisation levels, weakest first.
ORT_LEVELS = {
    "disabled": onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def session(
    path: Path, threads: int | None = None, level: str = "all", spinning: bool = True, arena: bool = True
) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session on the CPU provider, optionally pinned to a thread count.

    ``spinning=False``: the session's worker threads sleep as soon as a run is done instead of spinning
    for a while (ONNX Runtime's default, which saves a wake-up when runs follow each other closely). When
    several runtimes take turns on the same cores, as in a benchmark, spinning threads slow the next one.
    ``arena=False``: intermediate results are allocated for each run and freed after it, as PyTorch eager
    does, instead of being kept in the session's memory arena between runs (faster, but several sessions
    side by side each hold their largest activations).
    """
    options = onnxruntime.SessionOptions()
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_cpu_mem_arena = arena
    options.graph_optimization_level = ORT_LEVELS[level]
    options.log_severity_level = 3  # errors only: keep notebook stderr stable
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ort_runner(sess: onnxruntime.InferenceSession) -> Callable[[np.ndarray], np.ndarray]:
    """A function array -> array that runs the session's single input and first output.

    The output is copied: ONNX Runtime returns a view into the session's memory arena, and that view
    would keep the whole arena (all of the run's intermediate results) alive for as long as it lives,
    even after the session itself is gone.
    """
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x})[0].copy()
