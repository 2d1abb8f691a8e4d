import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from ptdeploy.lessons import superres
from ptdeploy.lessons.onnx_export import torch_runner
from ptdeploy.lessons.superres import (
    HELD_OUT_PHOTOS,
    SuperResolutionNet,
    TrainConfig,
    array_to_y,
    merge_ycbcr,
    psnr,
    split_ycbcr,
    y_to_tensor,
)
from ptdeploy.paths import REPO_ROOT


def test_model_upscales_y_by_three():
    model = SuperResolutionNet(upscale_factor=3).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 1, 10, 12)).shape == (2, 1, 30, 36)


def test_y_round_trip_is_exact():
    y = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16), mode="L")
    tensor = y_to_tensor(y)
    assert tensor.shape == (1, 1, 16, 16) and 0 <= tensor.min() and tensor.max() <= 1
    assert np.array_equal(np.asarray(array_to_y(tensor.numpy())), np.asarray(y))


def test_output_is_clipped_to_8_bits():
    out = np.array([[[[-0.5, 0.5, 1.5]]]], dtype=np.float32)
    assert np.asarray(array_to_y(out)).tolist() == [[0, 127, 255]]


def test_psnr():
    a = Image.fromarray(np.full((4, 4), 100, np.uint8))
    b = Image.fromarray(np.full((4, 4), 110, np.uint8))
    assert psnr(a, a) == float("inf")
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / 100))
    with pytest.raises(ValueError):
        psnr(a, a.resize((2, 2)))


def test_the_y_channel_upscaled_and_colour_merged_back_is_rgb_three_times_larger():
    image = Image.new("RGB", (20, 10), (200, 30, 30))
    y, cb, cr = split_ycbcr(image)
    bigger_y = array_to_y(torch_runner(SuperResolutionNet(3).eval())(y_to_tensor(y).numpy()))
    out = merge_ycbcr(bigger_y, cb, cr)
    assert out.mode == "RGB" and out.size == (60, 30)


def test_bilinear_start_upscales_like_bilinear_away_from_the_border():
    model = superres.bilinear_start(SuperResolutionNet(3), keep=0.0).eval()
    y = Image.fromarray((np.random.default_rng(0).random((20, 20)) * 255).astype(np.uint8))
    ours = np.asarray(array_to_y(torch_runner(model)(y_to_tensor(y).numpy())), dtype=float)
    bilinear = np.asarray(y.resize((60, 60), Image.BILINEAR), dtype=float)
    assert np.abs(ours - bilinear)[3:-3, 3:-3].max() <= 2  # 8-bit rounding (PIL's is fixed-point)


def test_held_out_photos_cannot_be_trained_on():
    assert "chelsea" in HELD_OUT_PHOTOS  # data/cat.jpg
    assert not set(HELD_OUT_PHOTOS) & set(TrainConfig().photos)
    with pytest.raises(ValueError, match="held out"):
        superres.training_pairs(["camera", "chelsea"])


def test_epoch_tiles_pair_low_and_high_resolution():
    pairs = superres.training_pairs(["coins"])
    tiles = list(superres.epoch_tiles(pairs, 24, np.random.default_rng(0)))
    lr = pairs[0][0]
    assert len(tiles) == (lr.shape[0] // 24) * (lr.shape[1] // 24)
    assert all(a.shape == (24, 24) and b.shape == (72, 72) for a, b in tiles)
    # Each target tile, downscaled, is close to its input tile: they show the same place.
    a, b = tiles[0]
    small = np.asarray(Image.fromarray(b).resize((24, 24), Image.BICUBIC))
    assert np.abs(small - a).mean() < 0.05


@pytest.mark.slow
def test_training_is_reproducible():
    config = TrainConfig(photos=("coins",), epochs=1)
    first = superres.train(config, max_steps=2, progress=False).state_dict()
    second = superres.train(config, max_steps=2, progress=False).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_committed_weights_beat_bicubic_on_held_out_photos():
    model = SuperResolutionNet(upscale_factor=superres.UPSCALE)
    model.load_state_dict(torch.load(superres.WEIGHTS, map_location="cpu", weights_only=True))
    rows = superres.evaluate(model.eval())
    assert [r.photo for r in rows] == list(HELD_OUT_PHOTOS)
    assert np.mean([r.gain for r in rows]) >= 0.5
    assert all(r.gain > 0 for r in rows)


@pytest.mark.slow
def test_training_script_smoke_run(tmp_path):
    out = tmp_path / "sr.pth"
    result = subprocess.run(
        [sys.executable, "scripts/train_superres.py", "--max-steps", "3", "--epochs", "1", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "stopped after 3 steps" in result.stdout
    assert "| `chelsea` |" in result.stdout and "**mean**" in result.stdout
    assert "3/" in result.stderr  # the progress bar
    state = torch.load(out, weights_only=True)
    SuperResolutionNet(3).load_state_dict(state)
