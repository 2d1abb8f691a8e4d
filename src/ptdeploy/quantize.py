"""Post-training static int8 quantization of the offline EfficientNet-Lite0, two ways.

* ``quantize_eager``: the eager-mode ``torch.ao.quantization`` API the tutorial's pre-quantized
  MobileNetV2 was made with (deprecated, still shipped in torch 2.14). Eager mode needs a model written
  for it: quant/dequant stubs at the edges, residual additions through ``FloatFunctional``, no functional
  padding. ``QuantizableLite0`` rebuilds timm's model that way with the same weights.
* ``quantize_pt2e``: the current API, PT2E, which moved from ``torch.ao`` to ``torchao``: export the
  model, let a backend quantizer (``X86InductorQuantizer`` here) annotate the graph, calibrate, convert,
  and hand the result to ``torch.compile``. It takes the unmodified model.

Both calibrate on the same batches (frames of the repo's photos) and are compared with fp32 by
``agreement``: same top-1, and how much of the top-5 they share.
"""

import platform
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from ptdeploy.classifier import tutorial_transform


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


# ---------------------------------------------------------------- EfficientNet-Lite0 for eager mode


def _static_same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's "SAME" padding for a known input size, split as TF does (the extra pixel at the end)."""
    total = max((-(-size // stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """Conv then BatchNorm, as one Conv2d with the BatchNorm folded into its weights (exact in eval)."""
    plain = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding if isinstance(conv.padding, tuple) else 0,
        conv.dilation,
        conv.groups,
        bias=True,
    )
    plain.weight, plain.bias = conv.weight, conv.bias
    return torch.nn.utils.fusion.fuse_conv_bn_eval(plain.eval(), bn.eval())


class _Block(nn.Module):
    """A timm block as a plain sequence of layers, with the residual addition made quantizable."""

    def __init__(self, layers: list[nn.Module], residual: bool):
        super().__init__()
        self.layers = nn.Sequential(*layers)
        self.residual = residual
        # only blocks with a residual get one: an unused FloatFunctional would be quantized without data
        self.skip_add = torch.ao.nn.quantized.FloatFunctional() if residual else None

    def forward(self, x):
        y = self.layers(x)
        return self.skip_add.add(y, x) if self.skip_add is not None else y


class _FloatIsland(nn.Module):
    """Layers that stay fp32 inside an int8 model: dequantize, run them, quantize again."""

    def __init__(self, layers: nn.Module):
        super().__init__()
        self.dequant = torch.ao.quantization.DeQuantStub()
        self.layers = layers
        self.layers.qconfig = None  # prepare() and convert() leave them (and what is inside) in fp32
        self.quant = torch.ao.quantization.QuantStub()

    def forward(self, x):
        return self.quant(self.layers(self.dequant(x)))


class QuantizableLite0(nn.Module):
    """timm's tf_efficientnet_lite0, rebuilt from the same weights for eager-mode quantization.

    BatchNorm is folded into the convolutions, TF "same" padding becomes a fixed ``ZeroPad2d`` (valid for
    the 224x224 input it is built for), ReLU6 stays a module, and stubs mark where int8 starts and ends.
    In fp32 it computes what the original computes (up to float rounding).

    ``float_padded_convs`` keeps the five convolutions that need that padding (the stem and four stride-2
    depthwise ones) in fp32, as PT2E's X86 quantizer does with the same model: quantizing them costs
    much of the int8 model's agreement with fp32, and they hold a small share of the work.
    """

    def __init__(self, model: nn.Module, input_size: int = 224, float_padded_convs: bool = True):
        super().__init__()
        sizes = _conv_input_sizes(model, input_size)

        def convert(conv, bn, island=True):
            layers = _conv_bn_act(conv, bn, sizes[conv])
            if float_padded_convs and island and isinstance(layers[0], nn.ZeroPad2d):
                return [_FloatIsland(nn.Sequential(*layers))]
            return layers

        self.quant = torch.ao.quantization.QuantStub()
        # A float stem runs before the QuantStub: the input is fp32 anyway.
        self.stem = nn.Sequential(*convert(model.conv_stem, model.bn1, island=False))
        self.float_stem = float_padded_convs
        if float_padded_convs:
            self.stem.qconfig = None
        blocks = []
        for stage in model.blocks:
            for b in stage:
                if hasattr(b, "conv_pwl"):  # InvertedResidual: expand 1x1, depthwise, project 1x1
                    layers = [
                        *convert(b.conv_pw, b.bn1),
                        *convert(b.conv_dw, b.bn2),
                        *convert(b.conv_pwl, b.bn3),
                    ]
                else:  # DepthwiseSeparableConv: depthwise, project 1x1
                    layers = [*convert(b.conv_dw, b.bn1), *convert(b.conv_pw, b.bn2)]
                blocks.append(_Block(layers, residual=b.has_skip))
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(*convert(model.conv_head, model.bn2))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.classifier = model.classifier
        self.dequant = torch.ao.quantization.DeQuantStub()
        self.eval()

    def forward(self, x):
        x = self.quant(self.stem(x)) if self.float_stem else self.stem(self.quant(x))
        x = self.head(self.blocks(x))
        return self.dequant(self.classifier(self.flatten(self.pool(x))))


def _conv_input_sizes(model: nn.Module, input_size: int) -> dict[nn.Module, int]:
    """The spatial input size of every convolution, from one forward pass (needed for static padding)."""
    sizes, hooks = {}, []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(
                m.register_forward_pre_hook(lambda mod, args: sizes.__setitem__(mod, args[0].shape[-1]))
            )
    with torch.no_grad():
        model(torch.zeros(1, 3, input_size, input_size))
    for h in hooks:
        h.remove()
    return sizes


def _conv_bn_act(conv: nn.Conv2d, bn: nn.BatchNorm2d, size: int) -> list[nn.Module]:
    from timm.layers import Conv2dSame

    layers = []
    if isinstance(conv, Conv2dSame):  # timm pads these in forward(), from the input's size
        pads = [
            _static_same_padding(size, k, s, d)
            for k, s, d in zip(conv.kernel_size, conv.stride, conv.dilation)
        ]
        (top, bottom), (left, right) = pads
        layers.append(nn.ZeroPad2d((left, right, top, bottom)))
    layers.append(_fold(conv, bn))
    act = getattr(bn, "act", None)  # timm's BatchNormAct2d carries the activation
    if act is not None and not isinstance(act, nn.Identity):
        if not isinstance(act, nn.ReLU6):
            raise TypeError(f"unexpected activation {act}")
        layers.append(nn.ReLU6())
    return layers


# ---------------------------------------------------------------- calibration and the two APIs


def calibration_batches(n_frames: int = 64, batch_size: int = 8) -> list[torch.Tensor]:
    """Calibration data: the photos the notebook labels, plus frames of the synthetic camera over them.

    Post-training static quantization only needs activations that look like the deployment's (to set
    each layer's int8 range), not labels; a few dozen images is the usual order of magnitude.
    """
    from ptdeploy.frames import SyntheticCamera, bundled_photos, camera_transform

    transform = tutorial_transform()
    images = [transform(p) for p in bundled_photos().values()]
    cam = SyntheticCamera(frames_per_photo=max(n_frames // len(bundled_photos()), 1))
    frame_transform = camera_transform()
    images += [frame_transform(cam.frame(i).copy()) for i in range(n_frames)]
    stacked = torch.stack(images)
    return list(stacked.split(batch_size))


# Natural photographs that come with installed packages and that calibration never sees (it uses the
# synthetic camera's four photos and its frames): agreement is measured on pictures new to the model.
EVALUATION_PHOTOS = ("motorcycle_left", "motorcycle_right", "clock", "grace_hopper", "present")


def evaluation_photos() -> dict[str, Image.Image]:
    """The evaluation photos as RGB images: scikit-image's stereo pair and clock, matplotlib's samples."""
    from matplotlib import cbook
    from skimage import data

    left, right, _disparity = data.stereo_motorcycle()
    arrays = {"motorcycle_left": left, "motorcycle_right": right, "clock": data.clock()}
    for name, file in (("grace_hopper", "grace_hopper.jpg"), ("present", "Minduka_Present_Blue_Pack.png")):
        with Image.open(cbook.get_sample_data(file)) as image:
            arrays[name] = np.asarray(image)
    return {name: Image.fromarray(arrays[name]).convert("RGB") for name in EVALUATION_PHOTOS}


# What evaluation_views() makes of each photo, in its order.
EVALUATION_VIEWS = (
    "whole",
    "mirrored",
    "top-left crop",
    "top-right crop",
    "bottom-left crop",
    "bottom-right crop",
    "small centre crop",
    "centre crop, mirrored",
)


def evaluation_views(photo: Image.Image) -> list[Image.Image]:
    """The EVALUATION_VIEWS of a photo: whole, mirrored, four corner crops, a small centre crop and a
    larger one mirrored."""
    from torchvision.transforms import functional

    w, h = photo.size
    side, small = int(0.7 * min(w, h)), int(0.5 * min(w, h))
    cx, cy = w // 2, h // 2
    return [
        photo,
        functional.hflip(photo),
        photo.crop((0, 0, side, side)),
        photo.crop((w - side, 0, w, side)),
        photo.crop((0, h - side, side, h)),
        photo.crop((w - side, h - side, w, h)),
        photo.crop((cx - small // 2, cy - small // 2, cx + small // 2, cy + small // 2)),
        functional.hflip(photo.crop((cx - side // 2, cy - side // 2, cx + side // 2, cy + side // 2))),
    ]


def evaluation_images() -> torch.Tensor:
    """Every view of every evaluation photo, normalised 224x224, in EVALUATION_PHOTOS order."""
    transform = tutorial_transform()
    views = [view for photo in evaluation_photos().values() for view in evaluation_views(photo)]
    return torch.stack([transform(view) for view in views])


@torch.no_grad()
def logits(model, images: torch.Tensor, batch_size: int = 8) -> torch.Tensor:
    """``model(images)`` a few images at a time: the same logits, a fraction of the activation memory."""
    return torch.cat([model(batch) for batch in images.split(batch_size)])


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


# ---------------------------------------------------------------- how close int8 is to fp32


@dataclass
class Agreement:
    images: int
    same_top1: int
    top5_overlap: float  # mean |top5(fp32) ∩ top5(int8)| / 5
    max_prob_diff: float  # largest difference of a softmax probability

    def __str__(self) -> str:
        return f"same top-1 on {self.same_top1}/{self.images} images, top-5 overlap {self.top5_overlap:.0%}"


@torch.no_grad()
def agreement(reference: torch.Tensor, candidate: torch.Tensor) -> Agreement:
    """Compare two models' logits for the same images (rows)."""
    ref_top5 = reference.topk(5, dim=1).indices
    cand_top5 = candidate.topk(5, dim=1).indices
    overlaps = [len(set(a.tolist()) & set(b.tolist())) / 5 for a, b in zip(ref_top5, cand_top5)]
    diff = (reference.softmax(1) - candidate.softmax(1)).abs().max().item()
    return Agreement(
        images=len(reference),
        same_top1=int((ref_top5[:, 0] == cand_top5[:, 0]).sum()),
        top5_overlap=float(np.mean(overlaps)),
        max_prob_diff=diff,
    )


def model_size_mb(model: nn.Module) -> float:
    """Serialized size of the model's state (weights, packed or not), in MB."""
    import io

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell() / 1e6
