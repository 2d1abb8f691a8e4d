"""The service's runtimes give the same answers: same classes, probabilities within 1e-4; on ONNX
Runtime the service never imports torch."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ptdeploy.paths import CAT_JPG
from ptdeploy.serving import runtimes
from ptdeploy.serving.predictor import Predictor


@pytest.fixture(scope="module")
def images():
    """The cat, flipped and cropped, and two photos from scikit-image: 5 different images."""
    import skimage.data

    cat = Image.open(CAT_JPG)
    return [
        cat,
        cat.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        cat.crop((50, 0, 350, 300)),
        Image.fromarray(skimage.data.coffee()),
        Image.fromarray(skimage.data.astronaut()),
    ]


def softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("name", ["torchscript", "onnxruntime"])
def test_runtime_agrees_with_eager(images, name):
    predictor = Predictor(runtimes.load_runtime("eager"), "eager")
    batch = np.stack([predictor.prepare(image) for image in images])
    eager = softmax(predictor.forward(batch))
    other = softmax(runtimes.load_runtime(name, threads=2)(batch))
    assert np.array_equal(np.argsort(-eager)[:, :5], np.argsort(-other)[:, :5])
    assert np.abs(eager - other).max() < 1e-4


def test_the_service_prepares_images_as_the_tutorial_transform_does(images):
    from ptdeploy.imagenet import to_array
    from ptdeploy.lessons.classifier import tutorial_transform

    transform = tutorial_transform()
    for image in images + [Image.open(CAT_JPG).resize((1000, 255)), Image.open(CAT_JPG).convert("L")]:
        expected = transform(image.convert("RGB")).numpy()
        assert np.array_equal(to_array(image), expected)  # what Predictor.prepare does


def test_predictor_answers_the_tutorial_request_on_onnxruntime():
    predictor = Predictor(runtimes.load_runtime("onnxruntime", threads=2), "onnxruntime")
    answer = predictor.predict_batch([predictor.prepare(Image.open(CAT_JPG))])[0]
    assert (answer["class_id"], answer["class_name"]) == ("n02124075", "Egyptian_cat")


def test_the_service_on_onnxruntime_never_imports_torch(tmp_path):
    runtimes.onnx_file()  # exported (with torch) by a child process if it is not cached yet
    code = (
        "import sys; from ptdeploy.serving import create_app; from ptdeploy.paths import CAT_JPG\n"
        "app = create_app({'LOAD_IN_BACKGROUND': False, 'RUNTIME': 'onnxruntime'})\n"
        "answer = app.test_client().post('/predict', data={'file': open(CAT_JPG, 'rb')}).get_json()\n"
        "print(answer['class_name'], 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-2:] == ["Egyptian_cat", "False"]


def test_onnx_export_is_cached_and_keyed_by_versions(tmp_path):
    first = runtimes.onnx_file(folder=tmp_path)
    stamp = first.stat().st_mtime_ns
    assert runtimes.onnx_file(folder=tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no partial file left behind
    assert first == runtimes.onnx_path(folder=tmp_path)
    assert first.name.startswith("efficientnet_lite0-")


def test_unknown_runtime_and_classifier_are_clear_errors():
    with pytest.raises(ValueError, match="unknown runtime 'tensorrt'"):
        runtimes.load_runtime("tensorrt")
    with pytest.raises(ValueError, match="unknown classifier 'alexnet'"):
        runtimes.onnx_path("alexnet")
