"""Chapter 05, today's way: the Lite0 classifier as an ExecuTorch program (``.pte``) run by XNNPACK.

ExecuTorch is PyTorch's on-device runtime: ``torch.export`` captures the model,
``to_edge_transform_and_lower`` hands every operator XNNPACK (a CPU kernel library for ARM and x86) can run
to it, and ``to_executorch`` writes a self-contained program.
The runtime loads that file; no Python model code is needed.

* ``export_fp32`` and ``export_int8`` write the programs. int8 is PT2E static quantization with
  ``XNNPACKQuantizer`` (per-channel weights), with two changes that keep it close to fp32:
  - conv -> ReLU6 is quantized as one unit, its output to exactly [0, 6]. The quantizer fuses conv + ReLU
    but not conv + ReLU6 (``hardtanh``): left alone, the conv's output is quantized over its whole range,
    leaving few int8 steps for the [0, 6] that ReLU6 keeps (eager mode's fix is the same, see
    ``quantize._clamp_conv_relu6``); XNNPACK folds the clamp into the convolution.
  - the stem convolution stays fp32, inside the same XNNPACK partition (``KEEP_FLOAT``).
* ``cached_program`` exports once per versions that shape the file and writes it atomically.
* ``load`` returns a function tensor -> logits, with errors that name the file. ``executorch.runtime`` is
  marked experimental in this release, and it imports torch: a Python runner needs torch on the device.
* ``delegation_summary`` says what went to XNNPACK and what stayed on ExecuTorch's portable kernels.
"""

import contextlib
import ctypes
import gc
import hashlib
import io
import json
import logging
import os
import sys
import tempfile
import warnings
from collections import Counter
from importlib.metadata import version
from pathlib import Path

import torch

from ptdeploy.imagenet import DEFAULT_CLASSIFIER, WEIGHTS_PACKAGE
from ptdeploy.paths import output_dir

KINDS = ("fp32", "int8")
# timm's module names left in fp32 by export_int8. Only the stem: its padding reads the program's input.
# The four stride-2 depthwise convolutions (also TF-"same" padded) would need their zero padding kept out
# of XNNPACK too: XNNPACK re-quantizes a pad that reads an int8 tensor, and an fp32 convolution behind it
# then gets an int8 input ("Weight and Input should both be quantized" when lowering).
KEEP_FLOAT = ("conv_stem",)
CALIBRATION_FRAMES = 32  # the photos and synthetic-camera frames int8_accuracy.calibration_batches returns
_RECIPE = 1  # bump when export_int8's recipe changes: the cached programs are then exported again

_CONVS = {torch.ops.aten.conv2d.default, torch.ops.aten.convolution.default}
_RELU6 = {torch.ops.aten.hardtanh.default, torch.ops.aten.hardtanh_.default}


# torchao registers an Enum with torch's pytree when imported, which torch 2.14 logs as deprecated, with
# a time stamp and a process id, on every import.
logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)


class ProgramError(RuntimeError):
    """A .pte that ExecuTorch cannot load or run (the runtime's own errors carry only a code)."""


@contextlib.contextmanager
def _legacy_resources_allowed():
    """ExecuTorch 1.5 reads its operator specs with importlib.resources' legacy functions (read_text,
    open_text, ...), deprecated since Python 3.11: not ours to change, and said here once."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"\w+ is deprecated\. Use files\(\) instead", DeprecationWarning)
        yield


def _lower(exported: torch.export.ExportedProgram, path: Path):
    """Delegate what XNNPACK supports, write the program to ``path``, return the lowered program."""
    with _legacy_resources_allowed():
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower

    with _legacy_resources_allowed():
        lowered = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
        Path(path).write_bytes(lowered.to_executorch().buffer)
    return lowered


def export_fp32(model: torch.nn.Module, example: torch.Tensor, path: Path):
    """An fp32 program for inputs shaped like ``example``. Returns the lowered program."""
    return _lower(torch.export.export(model.eval(), (example,)), path)


def _annotate_conv_relu6(graph_module: torch.fx.GraphModule, config, accept) -> int:
    """Annotate each conv -> ReLU6 pair as one quantized op whose output is int8 over exactly [0, 6]."""
    from torchao.quantization.pt2e.quantizer import (
        FixedQParamsQuantizationSpec,
        QuantizationAnnotation,
        get_bias_qspec,
        get_input_act_qspec,
        get_weight_qspec,
    )
    from torchao.quantization.pt2e.quantizer.quantizer import Q_ANNOTATION_KEY

    zero_to_six = FixedQParamsQuantizationSpec(
        dtype=torch.int8,
        scale=6.0 / 255,
        zero_point=-128,
        quant_min=-128,
        quant_max=127,
        qscheme=torch.per_tensor_affine,
    )
    pairs = 0
    for relu6 in graph_module.graph.nodes:
        if relu6.op != "call_function" or relu6.target not in _RELU6 or tuple(relu6.args[1:3]) != (0.0, 6.0):
            continue
        conv = relu6.args[0]
        if conv.op != "call_function" or conv.target not in _CONVS or len(conv.users) != 1:
            continue
        if not (accept(conv) and accept(relu6)):
            continue
        weight_and_bias = [p for p in conv.args[1:3] if isinstance(p, torch.fx.Node)]
        qspecs = {conv.args[0]: get_input_act_qspec(config), conv.args[1]: get_weight_qspec(config)}
        if len(weight_and_bias) == 2:
            qspecs[weight_and_bias[1]] = get_bias_qspec(config)
        conv.meta[Q_ANNOTATION_KEY] = QuantizationAnnotation(input_qspec_map=qspecs, _annotated=True)
        relu6.meta[Q_ANNOTATION_KEY] = QuantizationAnnotation(output_qspec=zero_to_six, _annotated=True)
        for param in weight_and_bias:  # so that the quantizer's own conv patterns leave the pair alone
            param.meta[Q_ANNOTATION_KEY] = QuantizationAnnotation(_annotated=True)
        pairs += 1
    return pairs


def _quantizer(keep_float=KEEP_FLOAT):
    with _legacy_resources_allowed():
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer,
            get_symmetric_quantization_config,
        )
    from torchao.quantization.pt2e.quantizer import get_module_name_filter

    class ReLU6AwareQuantizer(XNNPACKQuantizer):
        def annotate(self, model):
            _annotate_conv_relu6(model, self.global_config, self.filter_fn or (lambda node: True))
            return super().annotate(model)

    in_float = [get_module_name_filter(name) for name in keep_float]
    quantizer = ReLU6AwareQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    # set_module_name(name, None) fails an assertion in this release; a filter leaves the modules in fp32
    return quantizer.set_filter_function(lambda node: not any(f(node) for f in in_float))


def export_int8(model: torch.nn.Module, calibration: list[torch.Tensor], path: Path, keep_float=KEEP_FLOAT):
    """A static int8 program for batch-1 inputs, calibrated on ``calibration`` (batches of real images,
    normalised as the model expects). Returns the lowered program."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    images = [image for batch in calibration for image in batch.split(1)]
    example = (images[0],)
    prepared = prepare_pt2e(torch.export.export(model.eval(), example).module(), _quantizer(keep_float))
    with torch.no_grad():
        for image in images:  # one at a time: the graph was exported for batch 1
            prepared(image)
    return _lower(torch.export.export(convert_pt2e(prepared), example), path)


def program_path(kind: str, classifier: str = DEFAULT_CLASSIFIER, folder: Path | None = None) -> Path:
    """Where the classifier's ``kind`` program is cached: same versions and recipe -> same file name."""
    if kind not in KINDS:
        raise ValueError(f"unknown program {kind!r}; choose one of {', '.join(KINDS)}")
    package = WEIGHTS_PACKAGE[classifier]
    key = " ".join(f"{name} {version(name)}" for name in ("torch", "torchao", "executorch", "timm", package))
    digest = hashlib.sha256(f"{classifier} {kind} {key} recipe {_RECIPE}".encode()).hexdigest()[:16]
    return (folder or output_dir("executorch")) / f"{classifier}-{kind}-{digest}.pte"


def cached_program(kind: str, folder: Path | None = None) -> Path:
    """The Lite0 classifier's ``kind`` program, exported on first use (a minute or so) and cached, with
    what was delegated beside it (``delegation_of``). Written next to the final names, then renamed: a
    reader never sees half a file."""
    path = program_path(kind, folder=folder)
    if path.exists() and _summary_path(path).exists():
        return path
    from ptdeploy.lessons.classifier import load_classifier
    from ptdeploy.lessons.int8_accuracy import calibration_batches

    model = load_classifier().model
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".partial.pte")
    os.close(fd)
    try:
        if kind == "fp32":
            lowered = export_fp32(model, torch.zeros(1, 3, 224, 224), Path(tmp))
        else:
            lowered = export_int8(model, calibration_batches(CALIBRATION_FRAMES), Path(tmp))
        partitions, inside, outside = delegation(lowered)
        summary = {"partitions": partitions, "xnnpack": dict(inside), "portable": dict(outside)}
        Path(tmp + ".json").write_text(json.dumps(summary, indent=1, sort_keys=True))
        os.replace(tmp + ".json", _summary_path(path))
        os.chmod(tmp, 0o644)  # mkstemp makes it private; it is a file to copy to a device
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
        Path(tmp + ".json").unlink(missing_ok=True)
    del model, lowered
    _forget_export()
    return path


def _forget_export() -> None:
    """Give back what an export leaves behind; the chapter runs it in a kernel that must stay small.
    Two process-wide caches keep every lowered program (graphs, weights) alive after it is written:
    ExecuTorch's memoized ``is_same_node`` over graph nodes, and FakeTensorMode's dispatch cache, whose
    keys hold the lowered modules. Then glibc is asked to return the freed heap to the system."""
    from executorch.exir.backend.utils import is_same_node
    from torch._subclasses.fake_tensor import FakeTensorMode

    is_same_node.cache_clear()
    FakeTensorMode.cache_clear()
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _summary_path(program: Path) -> Path:
    return program.with_suffix(".delegation.json")


def delegation_of(program: Path) -> tuple[int, Counter, Counter]:
    """``delegation()`` of a program ``cached_program`` wrote."""
    summary = json.loads(_summary_path(program).read_text())
    return summary["partitions"], Counter(summary["xnnpack"]), Counter(summary["portable"])


def _flush_c_stdio() -> None:
    ctypes.CDLL(None).fflush(None)


@contextlib.contextmanager
def _runtime_log():
    """Collect what ExecuTorch's runtime logs: how it probed the CPU, its thread pool's size, the detail
    of an error. Its Python module writes to ``sys.stderr``, its C++ code to file descriptor 2; both are
    caught. Yields a function returning what was logged so far."""
    sys.stderr.flush()
    saved = os.dup(2)
    python_log = io.StringIO()
    with tempfile.TemporaryFile() as c_log, contextlib.redirect_stderr(python_log):
        os.dup2(c_log.fileno(), 2)

        def logged() -> str:
            _flush_c_stdio()
            c_log.seek(0)
            return python_log.getvalue() + c_log.read().decode(errors="replace")

        try:
            yield logged
        finally:
            _flush_c_stdio()  # what C's stdio still buffers belongs to the log, not to the restored stderr
            os.dup2(saved, 2)
            os.close(saved)


_programs_loaded = 0  # set_threads after a load would pull the thread pool from under its programs


def threads() -> int:
    """The size of XNNPACK's thread pool in this process."""
    with _runtime_log():
        from executorch.extension.pybindings import portable_lib

        return portable_lib._threadpool_get_thread_count()


def set_threads(count: int) -> None:
    """XNNPACK's threads for every program in this process; call it before loading the first program.

    The runtime's default counts all the host's cores, not the ones this process may use (its affinity or
    a container's limit). Resizing the pool once a program is loaded is unsafe (the runtime's own word:
    the programs keep the old pool), so that raises instead, unless the size stays the same."""
    if count == threads():
        return
    if _programs_loaded:
        raise RuntimeError("set XNNPACK's threads before loading the first ExecuTorch program")
    with _runtime_log():
        from executorch.extension.pybindings import portable_lib

        portable_lib._unsafe_reset_threadpool(count)  # experimental API, process-wide


def load(path: Path):
    """A program's ``forward`` as a function: a float32 tensor shaped as exported in, logits out.

    A missing file raises FileNotFoundError, one ExecuTorch cannot load ProgramError, both naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no ExecuTorch program at {path}")
    with _legacy_resources_allowed(), _runtime_log() as runtime_log:
        # "This API is experimental": said once, in this module's docstring
        warnings.filterwarnings("ignore", message="This API is experimental")
        from executorch.runtime import Runtime

        try:
            method = Runtime.get().load_program(path).load_method("forward")
            global _programs_loaded
            _programs_loaded += 1
        except RuntimeError as exc:
            detail = runtime_log().strip().splitlines()
            reason = detail[-1] if detail else str(exc)
            raise ProgramError(f"{path} is not a program this ExecuTorch can load: {reason}") from None

    first_call = True

    def forward(batch: torch.Tensor) -> torch.Tensor:
        nonlocal first_call
        try:
            # channels_last or a sliced tensor would be read as if contiguous, silently giving wrong logits
            if not first_call:
                return method.execute([batch.contiguous()])[0]
            with _runtime_log():  # XNNPACK probes the CPU on its first call, and logs how
                output = method.execute([batch.contiguous()])[0]
            first_call = False
            return output
        except RuntimeError as exc:
            raise ProgramError(
                f"{path.name} cannot run a {tuple(batch.shape)} {batch.dtype} input ({exc})"
            ) from None

    return forward


def _op_name(target) -> str:
    name = str(target)  # an edge op prints as "<EdgeOpOverload: aten.convolution.default>: schema = ..."
    return name.split(">")[0].removeprefix("<EdgeOpOverload: ") if name.startswith("<") else name


def delegation(lowered) -> tuple[int, Counter, Counter]:
    """XNNPACK partitions, and the operators inside them and outside (on the portable kernels), by name.
    Read from the lowered program, so it is the same on any CPU."""
    graph_module = lowered.exported_program().graph_module
    partitions, inside, outside = 0, Counter(), Counter()
    for node in graph_module.graph.nodes:
        if node.op == "get_attr" and node.name.startswith("lowered_module_"):
            partitions += 1
            delegated = getattr(graph_module, node.target).original_module.graph_module
            inside.update(
                _op_name(n.target)
                for n in delegated.graph.nodes
                if n.op == "call_function" and "getitem" not in str(n.target)
            )
        elif node.op == "call_function":
            name = str(node.target)
            if "executorch_call_delegate" not in name and "getitem" not in name:
                outside[_op_name(node.target)] += 1
    return partitions, inside, outside


def delegation_summary(partitions: int, inside: Counter, outside: Counter) -> str:
    """``delegation()``'s answer as lines: partitions, then operator counts inside and outside."""
    lines = [
        f"{partitions} XNNPACK partition(s): {sum(inside.values())} operators inside, "
        f"{sum(outside.values())} outside"
    ]
    lines += [f"  XNNPACK  {n:4d} {op}" for op, n in sorted(inside.items())]
    lines += [f"  portable {n:4d} {op}" for op, n in sorted(outside.items())]
    return "\n".join(lines)
