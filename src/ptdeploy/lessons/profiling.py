"""Chapters 06 and 07: the profiler tutorial's module in its three versions, the numbers we read off a
profile, and a CPU trace.

The tutorial ("Profiling your PyTorch module") profiles ``MyModule``, finds that finding the mask's indices
with NumPy costs a device-to-host copy of the whole mask, and fixes it twice:

* ``original``: float64 mask, indices via ``np.argwhere`` (the mask goes to the host, the indices come back);
* ``float32``:  the same module with a float32 mask (the host copy is half the size);
* ``nonzero``:  ``torch.nonzero`` on the mask's own device (no copies at all).

Notebook 06 walks through them; :func:`write_cpu_trace` keeps a Chrome/Perfetto trace of the fixed version
for notebook 07 (Holistic Trace Analysis). :func:`load_gpu_recording` reads what the three versions measured
on a real GPU (``data/gpu/profiler_cuda.json``, written by ``make gpu-record``), so the notebook can show it
on a machine without one.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.autograd import profiler  # the tutorial's import; its record_function is torch.profiler's

from ptdeploy.paths import DATA_DIR

LABELS = ("LINEAR PASS", "MASK INDICES")
IN_FEATURES, OUT_FEATURES, BATCH = 500, 10, 128  # the tutorial's sizes
# The tutorial's mask is 500 x 500 x 500 (1 GB in float64). 256**3 is 128 MiB in float64: big enough that the
# mask dominates the profile, small enough for a 2-core laptop, CI or Binder (2 GB) in well under a second.
MASK_SIDE = 256
TUTORIAL_MASK_SIDE = 500
# The tutorial does not seed, so its threshold (a mean of the random layer's outputs) is random and can fall
# outside the mask's [0, 1) range (then no index, or every index, is selected). With this seed it is 0.742.
SEED = 20


class MyModule(nn.Module):
    """The tutorial's module: the mask's indices are found with NumPy, so the mask makes a round trip."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias)

    def forward(self, input, mask):
        with profiler.record_function("LINEAR PASS"):
            out = self.linear(input)

        with profiler.record_function("MASK INDICES"):
            threshold = out.sum(axis=1).mean().item()
            # The tutorial writes mask.cpu() and .cuda(). copy=True makes the same round trip on every device:
            # for a CUDA mask it is exactly .cpu() / .cuda(); for a CPU mask .cpu() would hand back the very
            # same tensor, and the copy the tutorial teaches you to find would not exist.
            hi_idx = np.argwhere(mask.to("cpu", copy=True).numpy() > threshold)
            hi_idx = torch.from_numpy(hi_idx).to(input.device, copy=True)

        return out, hi_idx


class MyModuleNonzero(MyModule):
    """The tutorial's fix: ``torch.nonzero`` finds the indices where the mask lives; nothing is copied."""

    def forward(self, input, mask):
        with profiler.record_function("LINEAR PASS"):
            out = self.linear(input)

        with profiler.record_function("MASK INDICES"):
            threshold = out.sum(axis=1).mean()
            hi_idx = (mask > threshold).nonzero(as_tuple=True)

        return out, hi_idx


@dataclass(frozen=True)
class Version:
    name: str
    module: type[MyModule]
    mask_dtype: torch.dtype


VERSIONS = (
    Version("original", MyModule, torch.float64),
    Version("float32", MyModule, torch.float32),
    Version("nonzero", MyModuleNonzero, torch.float32),
)
VERSION_BY_NAME = {v.name: v for v in VERSIONS}


def make_inputs(version: Version, device="cpu", side: int = MASK_SIDE, seed: int = SEED):
    """The module, input and mask of one version, on `device`.

    Everything is drawn on the CPU from `seed` and then moved, so every version and every device sees the
    same weights and input (and the float32 masks of two versions are identical).
    """
    torch.manual_seed(seed)
    model = version.module(IN_FEATURES, OUT_FEATURES)
    input = torch.rand(BATCH, IN_FEATURES)
    mask = torch.rand((side, side, side), dtype=version.mask_dtype)
    return model.to(device), input.to(device), mask.to(device)


def label_event(prof, label: str = "MASK INDICES"):
    """The key_averages row of a record_function label (of the legacy or the current profiler).

    With CUDA activity a label has a second row, its annotation on the GPU's timeline: the CPU row is taken.
    """
    cpu = torch.autograd.DeviceType.CPU
    rows = [e for e in prof.key_averages() if e.key == label and e.device_type == cpu]
    if len(rows) != 1:
        raise KeyError(f"{label!r} is not in the profile")
    return rows[0]


def function_events(prof):
    """Every recorded event, from the legacy profiler (``function_events``) or the current (``events()``)."""
    return prof.function_events if hasattr(prof, "function_events") else prof.events()


def copy_bytes(event) -> int:
    """Memory an event allocated on the host and on the device together."""
    return event.cpu_memory_usage + event.device_memory_usage


def big_copies(prof, min_bytes: int = 1 << 20) -> list:
    """The ``.to()`` copies (``aten::_to_copy`` events) of at least `min_bytes`: the tutorial's round trips.

    Smaller copies are left out (``mean()`` copies a scalar, for one). A copy's size is the memory it
    allocated, on the host for ``.cpu()`` and on the device for ``.cuda()``.
    """
    return [e for e in function_events(prof) if e.name == "aten::_to_copy" and copy_bytes(e) >= min_bytes]


def write_cpu_trace(folder: Path, *, side: int = MASK_SIDE) -> Path:
    """Profile the fixed module (``nonzero``) on the CPU and write one Chrome/Perfetto trace into `folder`.

    torch.profiler with CPU activity, record_shapes, profile_memory and with_stack; a schedule of one warm-up
    step and two recorded steps (``ProfilerStep#N`` in the trace). The file is what torch writes, unchanged.
    Returns the trace's path (``<folder>/fixed_module_cpu.pt.trace.json``); a new call overwrites it.
    """
    from torch.profiler import ProfilerActivity, profile, schedule

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fixed_module_cpu.pt.trace.json"
    model, input, mask = make_inputs(VERSION_BY_NAME["nonzero"], "cpu", side)
    with profile(
        activities=[ProfilerActivity.CPU],
        schedule=schedule(wait=0, warmup=1, active=2, repeat=1),
        on_trace_ready=lambda p: p.export_chrome_trace(str(path)),
        record_shapes=True,
        profile_memory=True,
        with_stack=True,
    ) as prof:
        for _ in range(3):
            model(input, mask)
            prof.step()
    return path


# A GPU recording: {"provenance": {PROVENANCE_KEYS...}, "runs": [{"mask_side": int, "rounds": int,
# "versions": {version name: {RECORDED_NUMBERS...}}}, ...], "notebook": {"ran": bool, ...}}. One run per mask
# side (the notebook's and the tutorial's); each number is a median over `rounds` interleaved rounds.
GPU_RECORDING = DATA_DIR / "gpu" / "profiler_cuda.json"
RECORDED_NUMBERS = {
    "self_cpu_total_ms": float,  # key_averages().self_cpu_time_total, in ms
    "mask_indices_self_cpu_ms": float,  # the MASK INDICES row: self CPU time
    "mask_indices_cpu_total_ms": float,  # the same row: CPU total
    "memcpy_count": int,  # cudaMemcpyAsync calls
    "memcpy_ms": float,  # and their CPU time
    "mask_indices_self_cpu_memory_mib": float,  # the MASK INDICES row: self CPU memory (negative: freed)
    "big_copies": int,  # len(big_copies(prof))
}
PROVENANCE_KEYS = ("gpu", "torch", "cuda", "python", "date", "commit", "command")


def load_gpu_recording(path: Path = GPU_RECORDING) -> dict:
    """The GPU recording of the three versions, checked against its format (ValueError if it differs)."""
    data = json.loads(Path(path).read_text())
    problems = gpu_recording_problems(data)
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    return data


def gpu_recording_problems(data) -> list[str]:
    """What is missing or mistyped in a GPU recording (empty if it has the expected format)."""

    def is_a(value, kind) -> bool:
        if kind is float:  # a whole number (0, say) counts as a float too
            return isinstance(value, int | float) and not isinstance(value, bool)
        return isinstance(value, kind) and not isinstance(value, bool)

    if not isinstance(data, dict):
        return ["not a JSON object"]
    problems = []
    provenance = data.get("provenance")
    if not isinstance(provenance, dict):
        problems.append("no provenance object")
    else:
        problems += [f"provenance lacks {k!r}" for k in PROVENANCE_KEYS if not is_a(provenance.get(k), str)]
    runs = data.get("runs")
    if not isinstance(runs, list) or not runs:
        return problems + ["no runs"]
    for i, run in enumerate(runs):
        if not (isinstance(run, dict) and is_a(run.get("mask_side"), int) and is_a(run.get("rounds"), int)):
            problems.append(f"runs[{i}] lacks an integer mask_side or rounds")
            continue
        where = f"mask_side {run['mask_side']}"
        if run["rounds"] < 1:
            problems.append(f"{where}: rounds < 1")
        versions = run.get("versions")
        if not isinstance(versions, dict) or set(versions) != set(VERSION_BY_NAME):
            problems.append(f"{where}: versions are not {sorted(VERSION_BY_NAME)}")
            continue
        for name, numbers in versions.items():
            for key, kind in RECORDED_NUMBERS.items():
                if not (isinstance(numbers, dict) and is_a(numbers.get(key), kind)):
                    problems.append(f"{where}, {name}: {key}: expected {kind.__name__}")
    sides = {run.get("mask_side") for run in runs if isinstance(run, dict)}
    problems += [f"no run with mask_side {n}" for n in (MASK_SIDE, TUTORIAL_MASK_SIDE) if n not in sides]
    if not isinstance(data.get("notebook"), dict) or not isinstance(data["notebook"].get("ran"), bool):
        problems.append("notebook: no record of whether it ran")
    return problems


def gpu_run(data: dict, mask_side: int) -> dict:
    """The run of a GPU recording with this mask side."""
    for run in data["runs"]:
        if run["mask_side"] == mask_side:
            return run
    raise KeyError(f"no run with mask_side {mask_side}")
