import json

from PIL import Image

from ptdeploy.paths import CAT_JPG, CLASS_INDEX_JSON
from ptdeploy.tools import assets


def test_class_index_has_the_tutorial_format():
    index = json.loads(CLASS_INDEX_JSON.read_text())
    assert len(index) == 1000
    assert index["285"] == ["n02124075", "Egyptian_cat"]
    assert index["0"] == ["n01440764", "tench"]
    assert all(" " not in name for _, name in index.values())


def test_committed_class_index_is_what_the_generator_writes():
    assert json.loads(CLASS_INDEX_JSON.read_text()) == assets.imagenet_class_index()


def test_cat_photo_is_a_real_rgb_jpeg():
    with Image.open(CAT_JPG) as image:
        assert image.format == "JPEG"
        assert image.mode == "RGB"
        assert image.size == (451, 300)  # skimage.data.chelsea()


def test_generators_write_where_asked(tmp_path):
    assert assets.write_cat_jpg(tmp_path / "c.jpg").stat().st_size > 10_000
    written = json.loads(assets.write_class_index(tmp_path / "i.json").read_text())
    assert written["285"][1] == "Egyptian_cat"
