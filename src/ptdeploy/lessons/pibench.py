"""Chapter 05: the Raspberry Pi tutorial's benchmark table, its 11 models and Pi 4 numbers, measured here.

Speed does not depend on the values of the weights (the same convolutions run whatever the numbers
are), so the models are built untrained (``weights=None``): nothing is downloaded, and the timings are
those of the pretrained models. The two quantized MobileNets are quantized here, for this CPU's engine,
with a little calibration data, exactly as a pretrained model would be.
"""

import torch

from ptdeploy.lessons.timing import Latency, call_times

# The tutorial's table, measured on a Raspberry Pi 4 Model B:
# (fps, total ms/frame, model ms/frame, qnnpack pretrained).
PI4 = {
    "mobilenet_v2": (33.7, 29.7, 26.4, True),
    "mobilenet_v3_large": (29.3, 34.1, 30.7, True),
    "resnet18": (9.2, 109.0, 100.3, False),
    "resnet50": (4.3, 233.9, 225.2, False),
    "resnext101_32x8d": (1.1, 892.5, 885.3, False),
    "inception_v3": (4.9, 204.1, 195.5, False),
    "googlenet": (7.4, 135.3, 132.0, False),
    "shufflenet_v2_x0_5": (46.7, 21.4, 18.2, False),
    "shufflenet_v2_x1_0": (24.4, 41.0, 37.7, False),
    "shufflenet_v2_x1_5": (16.8, 59.6, 56.3, False),
    "shufflenet_v2_x2_0": (11.6, 86.3, 82.7, False),
}
# The tutorial's thread experiment (shufflenet_v2_x1_5 on the Pi): best-case latency with 4 vs 2 threads,
# and the latency spike that 2 threads removes.
PI4_THREADS = {"4 threads best ms": 60, "2 threads best ms": 72, "4 threads spike ms": 128}


def build(
    name: str, engine: str | None = None, calibration: list[torch.Tensor] | None = None
) -> torch.nn.Module:
    """One of the table's models, untrained, in eval mode; qnnpack-pretrained ones quantized for ``engine``"""
    from torchvision import models

    if PI4[name][3]:
        from ptdeploy.lessons.quantize import quantize_eager

        float_model = getattr(models.quantization, name)(weights=None, quantize=False).eval()
        calibration = calibration or [torch.randn(4, 3, 224, 224)]
        return quantize_eager(float_model, calibration, engine)
    return build_float(name)


def build_float(name: str) -> torch.nn.Module:
    """The fp32 version of one of the table's models, untrained, in eval mode."""
    from torchvision import models

    kwargs = {"aux_logits": False, "init_weights": False} if name in ("inception_v3", "googlenet") else {}
    return getattr(models, name)(weights=None, **kwargs).eval()


@torch.no_grad()
def latency(net, iterations: int, warmup: int = 3, batch: torch.Tensor | None = None) -> Latency:
    """Model-only latency per call, batch of one, after ``warmup`` calls."""
    batch = torch.randn(1, 3, 224, 224) if batch is None else batch
    return call_times(lambda: net(batch), iterations, warmup)
