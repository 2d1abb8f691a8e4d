"""Chapter 05: timm's EfficientNet-Lite0 rebuilt, with the same weights, for eager-mode quantization.

Eager mode (``torch.ao.quantization``) needs a model written for it: quant/dequant stubs at the edges,
residual additions through ``FloatFunctional``, no functional padding. ``QuantizableLite0`` is timm's
``tf_efficientnet_lite0`` that way; ``_FloatIsland`` keeps chosen layers in fp32 inside the int8 model.
"""

import torch
from torch import nn


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
