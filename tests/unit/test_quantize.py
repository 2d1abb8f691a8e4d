"""The quantization helper: the eager-mode rebuild of Lite0, both APIs, and the agreement measure."""

import platform

import pytest
import torch
from torch import nn

from ptdeploy.lessons import int8_accuracy, lite0_eager, quantize
from ptdeploy.lessons.classifier import load_classifier
from ptdeploy.lessons.frames import bundled_photos


@pytest.fixture(scope="module")
def lite0():
    classifier = load_classifier()
    batch = torch.cat([classifier.preprocess(p) for p in bundled_photos().values()])
    return classifier.model, lite0_eager.QuantizableLite0(classifier.model, float_padded_convs=False), batch


def test_engine_follows_the_cpu():
    engine = quantize.default_engine()
    assert engine in torch.backends.quantized.supported_engines
    if platform.machine() == "x86_64":
        assert engine in ("x86", "fbgemm")
        assert quantize.lite0_engine() == "onednn"
    with pytest.raises(ValueError):
        quantize.set_engine("no-such-engine")


@pytest.mark.parametrize(
    "size,kernel,stride,expected", [(224, 3, 2, (0, 1)), (56, 5, 2, (1, 2)), (28, 3, 1, (1, 1))]
)
def test_static_same_padding_matches_timms_dynamic_padding(size, kernel, stride, expected):
    from timm.layers.padding import get_same_padding

    pads = lite0_eager._static_same_padding(size, kernel, stride, 1)
    assert pads == expected and sum(pads) == get_same_padding(size, kernel, stride, 1)


@pytest.mark.slow
def test_rebuilt_lite0_computes_what_timms_model_computes(lite0):
    fp32, rebuilt, batch = lite0
    with torch.no_grad():
        assert torch.allclose(fp32(batch), rebuilt(batch), atol=1e-3)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in rebuilt.modules())  # folded


@pytest.mark.slow
def test_eager_int8_is_int8_keeps_the_cats_class_and_drops_relu6(lite0):
    fp32, rebuilt, batch = lite0
    engine = quantize.default_engine()
    int8 = quantize.quantize_eager(rebuilt, int8_accuracy.calibration_batches(n_frames=8), engine)
    convs = [m for m in int8.modules() if isinstance(m, torch.ao.nn.quantized.Conv2d)]
    assert len(convs) == 49
    assert not any(isinstance(m, (nn.ReLU6, torch.ao.nn.quantized.ReLU6)) for m in int8.modules())
    assert convs[0].zero_point == 0 and convs[0].scale == pytest.approx(
        6 / 127, rel=0.01 if engine != "qnnpack" else 1
    )
    with torch.no_grad():
        out = int8(batch)
        ref = fp32(batch)
    assert out.shape == (4, 1000)
    assert out[0].argmax() == ref[0].argmax()  # the cat stays an Egyptian cat
    assert quantize.model_size_mb(int8) < 0.35 * quantize.model_size_mb(fp32)


@pytest.mark.slow
@pytest.mark.filterwarnings(r"ignore:`torch\.jit\.script` is deprecated:FutureWarning")  # the tutorial's jit
def test_padded_convolutions_can_stay_fp32(lite0):
    fp32, _, batch = lite0
    mixed = lite0_eager.QuantizableLite0(fp32)  # float_padded_convs=True by default
    with torch.no_grad():
        assert torch.allclose(fp32(batch), mixed(batch), atol=1e-3)
    int8 = quantize.quantize_eager(
        mixed, int8_accuracy.calibration_batches(n_frames=8), quantize.lite0_engine()
    )
    quantized = [m for m in int8.modules() if isinstance(m, torch.ao.nn.quantized.Conv2d)]
    islands = [m for m in int8.modules() if isinstance(m, lite0_eager._FloatIsland)]
    assert len(quantized) == 49 - 5 and len(islands) == 4  # the stem runs before the QuantStub
    assert type(int8.stem[1]) is nn.Conv2d and isinstance(int8.stem[2], nn.ReLU6)  # fp32, ReLU6 kept
    assert all(type(i.layers[1]) is nn.Conv2d and i.layers[1].stride == (2, 2) for i in islands)
    with torch.no_grad():
        out = int8(batch)
    assert out[0].argmax() == fp32(batch)[0].argmax()
    torch.jit.script(int8)  # the loop scripts it


@pytest.mark.slow
def test_pt2e_quantizes_a_small_convnet():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    ).eval()
    batches = [torch.randn(2, 3, 32, 32) for _ in range(2)]
    q = quantize.quantize_pt2e(net, batches)
    assert any("quantize_per_tensor" in str(n.target) for n in q.graph.nodes)
    x = batches[0][:1]
    with torch.no_grad():
        assert torch.allclose(q(x), net(x), atol=0.05)


def test_agreement_counts_top1_and_top5_overlap():
    ref = torch.zeros(2, 10)
    ref[0, :5] = torch.tensor([5.0, 4, 3, 2, 1])
    ref[1, :5] = torch.tensor([5.0, 4, 3, 2, 1])
    cand = ref.clone()
    cand[1, 0], cand[1, 9] = 0.5, 4.5  # row 1: top-1 changes, one of the top-5 is replaced
    a = int8_accuracy.agreement(ref, cand)
    assert (a.images, a.same_top1, a.top5_overlap) == (2, 1, pytest.approx(0.9))
    assert str(a) == "same top-1 on 1/2 images, top-5 overlap 90%"


def test_calibration_batches_are_normalised_224_images():
    batches = int8_accuracy.calibration_batches(n_frames=8, batch_size=5)
    total = torch.cat(batches)
    assert total.shape == (len(bundled_photos()) + 8, 3, 224, 224)
    assert -3 < total.mean() < 3


def test_evaluation_images_are_many_and_kept_out_of_calibration():
    images = int8_accuracy.evaluation_images()
    views = len(int8_accuracy.EVALUATION_VIEWS)
    assert images.shape == (views * len(int8_accuracy.EVALUATION_PHOTOS), 3, 224, 224) and len(images) >= 40
    assert not set(int8_accuracy.EVALUATION_PHOTOS) & set(bundled_photos())
