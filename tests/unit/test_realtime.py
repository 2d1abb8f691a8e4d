"""The loops and the command: frames flow, stale frames are dropped, the script runs on synthetic frames."""

import subprocess
import sys
import time

import pytest
import torch

from ptdeploy.lessons import realtime
from ptdeploy.lessons.classifier import imagenet_labels
from ptdeploy.lessons.frames import SyntheticCamera, camera_transform
from ptdeploy.paths import REPO_ROOT


class SlowNet(torch.nn.Module):
    """Stands in for a model: takes a fixed time, returns logits that depend on the input."""

    def __init__(self, seconds=0.0):
        super().__init__()
        self.seconds = seconds

    def forward(self, x):
        time.sleep(self.seconds)
        logits = torch.zeros(1, 1000)
        logits[0, int(x.mean().abs() * 1000) % 1000] = 10
        return logits


def test_tutorial_loop_runs_the_frames_and_fails_like_the_tutorial_when_frames_run_out():
    stats = realtime.tutorial_loop(SlowNet(), SyntheticCamera(), 5, log=None)
    assert stats.frames == 5 and len(stats.model_ms) == 5 and stats.output.shape == (1, 1000)
    with pytest.raises(RuntimeError, match="failed to read frame"):
        realtime.tutorial_loop(SlowNet(), SyntheticCamera(frames=2), 3, log=None)


def test_sequential_loop_sees_every_frame_in_order():
    seen = []
    net = lambda x: seen.append(x) or torch.zeros(1, 1000)  # noqa: E731
    realtime.tutorial_loop(net, SyntheticCamera(), 3, log=None)
    expected = camera_transform()(SyntheticCamera().frame(2).copy())
    assert torch.equal(seen[2][0], expected)


def test_pipelined_loop_drops_stale_frames_when_the_model_is_slower_than_the_camera():
    stats = realtime.pipelined_loop(SlowNet(0.05), SyntheticCamera(fps=200), 6, log=None)
    assert stats.frames == 6
    assert stats.dropped > 0  # the camera made ~10 frames per model call; only the newest were used


def test_a_recorded_source_is_read_frame_by_frame_without_drops():
    seen = []
    net = SlowNet(0.01)
    stats = realtime.pipelined_loop(
        lambda batch: seen.append(batch) or net(batch), SyntheticCamera(frames=8), 100, log=None, live=False
    )
    assert stats.frames == 8 and stats.dropped == 0
    expected = [camera_transform()(SyntheticCamera().frame(i).copy()) for i in range(8)]
    assert all(torch.equal(batch[0], frame) for batch, frame in zip(seen, expected, strict=True))


def test_a_recorded_source_drops_nothing_when_the_loop_stops_first():
    stats = realtime.pipelined_loop(SlowNet(0.01), SyntheticCamera(), 5, log=None, live=False)
    assert stats.frames == 5 and stats.dropped == 0


def test_pipelined_loop_stops_at_the_end_of_the_stream():
    stats = realtime.pipelined_loop(SlowNet(), SyntheticCamera(frames=4), 100, log=None)
    assert 1 <= stats.frames <= 4


def test_fps_logger_logs_about_once_a_second():
    logged = []
    logger = realtime.FpsLogger(logged.append)
    logger.last_logged -= 1.5  # pretend a second and a half went by
    logger.tick()
    assert len(logged) == 1 and logged[0].endswith(" fps")


def test_top_predictions_prints_the_tutorials_format():
    logits = torch.full((1, 1000), -10.0)
    logits[0, 285] = 10
    lines = realtime.top_predictions(logits, imagenet_labels(), k=3)
    assert lines[0] == "100.00% Egyptian_cat" and len(lines) == 3


@pytest.mark.slow
def test_script_smoke_run_with_the_synthetic_source():
    result = subprocess.run(
        [
            sys.executable,
            "scripts/rpi_infer.py",
            "--source",
            "synthetic",
            "--frames",
            "5",
            "--threads",
            "1",
            "--top",
            "2",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "engine" in result.stdout and "5 frames in" in result.stdout
    predictions = [s for s in result.stdout.splitlines() if s.startswith("  ") and "%" in s]
    assert len(predictions) == 2


def test_script_rejects_video_without_a_path():
    with pytest.raises(SystemExit):
        realtime.parse_args(["--source", "video"])


def test_pipelined_loop_leaves_a_core_to_the_reader_and_restores_threads():
    assert [realtime.pipelined_threads(cpus) for cpus in (1, 2, 4)] == [1, 1, 3]
    before = torch.get_num_threads()
    seen = []
    net = lambda x: seen.append(torch.get_num_threads()) or torch.zeros(1, 1000)  # noqa: E731
    realtime.pipelined_loop(net, SyntheticCamera(), 3, log=None, threads=1)
    assert seen == [1, 1, 1]
    assert torch.get_num_threads() == before
