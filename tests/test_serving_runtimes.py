"""The service's runtimes give the same answers: same classes, probabilities within 1e-4."""

import pytest
import torch
from PIL import Image

from ptdeploy.classifier import load_classifier
from ptdeploy.paths import CAT_JPG
from ptdeploy.serving import runtimes
from ptdeploy.serving.predictor import Predictor


@pytest.fixture(scope="module")
def classifier():
    return load_classifier()


@pytest.fixture(scope="module")
def batch(classifier):
    """The cat, flipped and cropped, and two photos from scikit-image: 5 different images."""
    import skimage.data

    cat = Image.open(CAT_JPG)
    images = [
        cat,
        cat.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        cat.crop((50, 0, 350, 300)),
        Image.fromarray(skimage.data.coffee()),
        Image.fromarray(skimage.data.astronaut()),
    ]
    return torch.stack([classifier.to_tensor(image) for image in images])


@pytest.mark.parametrize("name", ["torchscript", "onnxruntime"])
def test_runtime_agrees_with_eager(classifier, batch, name):
    with torch.inference_mode():
        eager = classifier.model(batch).softmax(dim=1)
        other = runtimes.load_runtime(name, classifier, threads=2)(batch).softmax(dim=1)
    assert torch.equal(eager.topk(5).indices, other.topk(5).indices)
    assert (eager - other).abs().max().item() < 1e-4


def test_predictor_answers_the_tutorial_request_on_onnxruntime(classifier, batch):
    forward = runtimes.load_runtime("onnxruntime", classifier, threads=2)
    answer = Predictor(classifier, forward=forward, runtime="onnxruntime").predict_batch([batch[0]])[0]
    assert (answer["class_id"], answer["class_name"]) == ("n02124075", "Egyptian_cat")


def test_onnx_export_is_cached_and_keyed_by_weights(classifier, tmp_path):
    first = runtimes.onnx_file(classifier, tmp_path)
    stamp = first.stat().st_mtime_ns
    assert runtimes.onnx_file(classifier, tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no partial file left behind
    assert runtimes.weights_key(classifier.model) in first.name


def test_unknown_runtime_is_a_clear_error(classifier):
    with pytest.raises(ValueError, match="unknown runtime 'tensorrt'"):
        runtimes.load_runtime("tensorrt", classifier)
