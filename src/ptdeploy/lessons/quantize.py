"""Chapter 05: post-training static int8 quantization of the offline EfficientNet-Lite0, two ways.

* ``quantize_eager``: the eager-mode ``torch.ao.quantization`` API the tutorial's pre-quantized
  MobileNetV2 was made with (deprecated, still shipped in torch 2.15). Eager mode needs a model written
  for it: quant/dequant stubs at the edges, residual additions through ``FloatFunctional``, no functional
  padding. ``QuantizableLite0`` rebuilds timm's model that way with the same weights.
* ``quantize_pt2e``: the current API, PT2E, which moved from ``torch.ao`` to ``torchao``: export the
  model, let a backend quantizer (``X86InductorQuantizer`` here) annotate the graph, calibrate, convert,
  and hand the result to ``torch.compile``. It takes the unmodified model.

Both calibrate on the same batches and are compared with fp32 by ``int8_accuracy.agreement``; eager
mode's Lite0 is ``lite0_eager.QuantizableLite0``.
"""

import platform

import torch
from torch import nn


def default_engine() -> str:
    """The quantized engine for this CPU: qnnpack on ARM (as the tutorial says), else x86 (fbgemm + onednn)"""
    supported = torch.backends.quantized.supported_engines
    if platform.machine().lower() in ("aarch64", "arm64", "armv7l") and "qnnpack" in supported:
        return "qnnpack"
    return "x86" if "x86" in supported else "fbgemm"


def lite0_engine() -> str:
    """The engine for the int8 EfficientNet-Lite0: qnnpack on ARM; on x86, onednn when present.

    Profiled on this project's x86 machine, the x86 engine's int8 kernels ran Lite0's convolutions (5x5
    depthwise ones among them) several times slower than onednn's; the notebook times both.
    """
    engine = default_engine()
    if engine != "qnnpack" and "onednn" in torch.backends.quantized.supported_engines:
        return "onednn"
    return engine


def set_engine(engine: str) -> str:
    if engine not in torch.backends.quantized.supported_engines:
        raise ValueError(
            f"engine {engine!r} is not in this build: {torch.backends.quantized.supported_engines}"
        )
    torch.backends.quantized.engine = engine
    return engine


@torch.no_grad()
def _calibrate(model, batches) -> None:
    for batch in batches:
        model(batch)


def quantize_eager(model: nn.Module, batches: list[torch.Tensor], engine: str | None = None) -> nn.Module:
    """Eager-mode post-training static quantization (torch.ao.quantization, deprecated) for ``engine``.

    ``model`` must be written for eager mode (stubs, FloatFunctional): ``QuantizableLite0`` or one of
    torchvision's ``models.quantization`` networks. The weights are packed for the engine set here,
    so the model must run with the same ``torch.backends.quantized.engine``.
    """
    import copy

    from torch.ao import quantization as tq

    engine = set_engine(engine or default_engine())
    model = copy.deepcopy(model).eval()
    if hasattr(model, "fuse_model"):  # torchvision's quantizable models fuse conv+bn+relu themselves
        model.fuse_model()
    model.qconfig = tq.get_default_qconfig(engine)
    clamped = _clamp_conv_relu6(model, model.qconfig)
    tq.prepare(model, inplace=True)
    _calibrate(model, batches)
    tq.convert(model, inplace=True)
    for seq, i in clamped:  # int8 [0, 6] already clamps: the ReLU6 after those convs is a no-op now
        seq[i] = nn.Identity()
    return model


def _clamp_conv_relu6(model: nn.Module, qconfig) -> list[tuple[nn.Sequential, int]]:
    """Fuse Conv2d -> ReLU6 the int8 way: quantize the conv's output to exactly [0, 6].

    Eager mode can fuse conv+ReLU but not conv+ReLU6. Unfused, the conv's output would be quantized over
    its whole (wide) range, leaving a handful of int8 steps for the [0, 6] that ReLU6 keeps, which
    wrecks accuracy. Quantizing straight to a fixed [0, 6] range clamps exactly as ReLU6 does, so the
    ReLU6 can go once converted (calibration still needs it: observers do not clamp). Returns where they are.
    """
    from torch.ao import quantization as tq

    reference = qconfig.activation()  # the engine's activation range (x86: 0..127, qnnpack: 0..255)
    fixed = tq.FixedQParamsObserver.with_args(
        scale=6.0 / (reference.quant_max - reference.quant_min),
        zero_point=0,
        dtype=torch.quint8,
        quant_min=reference.quant_min,
        quant_max=reference.quant_max,
    )
    conv_qconfig = tq.QConfig(activation=fixed, weight=qconfig.weight)
    relu6s = []
    kept_float = _float_modules(model)
    for seq in model.modules():
        if isinstance(seq, nn.Sequential) and seq not in kept_float:
            for i in range(len(seq) - 1):
                if isinstance(seq[i], nn.Conv2d) and isinstance(seq[i + 1], nn.ReLU6):
                    seq[i].qconfig = conv_qconfig
                    relu6s.append((seq, i + 1))
    return relu6s


def _float_modules(model: nn.Module) -> set[nn.Module]:
    """Modules that stay fp32: those with ``qconfig = None`` set on them or on a parent."""
    found = set()

    def walk(module, inherited):
        is_float = inherited or ("qconfig" in vars(module) and module.qconfig is None)
        if is_float:
            found.add(module)
        for child in module.children():
            walk(child, is_float)

    walk(model, False)
    return found


def quantize_pt2e(model: nn.Module, batches: list[torch.Tensor]) -> torch.fx.GraphModule:
    """PT2E post-training static quantization (torchao) for x86 CPUs; run the result under torch.compile."""
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = xiq.X86InductorQuantizer().set_global(xiq.get_default_x86_inductor_quantization_config())
    exported = torch.export.export(model.eval(), (batches[0][:1],)).module()
    prepared = prepare_pt2e(exported, quantizer)
    _calibrate(prepared, [image for batch in batches for image in batch.split(1)])  # exported for batch 1
    return convert_pt2e(prepared)


def model_size_mb(model: nn.Module) -> float:
    """Serialized size of the model's state (weights, packed or not), in MB."""
    import io

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell() / 1e6
