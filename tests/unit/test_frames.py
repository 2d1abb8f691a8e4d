"""Frame sources: the synthetic camera behaves like OpenCV's VideoCapture and is deterministic."""

import time

import cv2
import numpy as np
import pytest

from ptdeploy.lessons import frames


@pytest.fixture(scope="module")
def cam():
    return frames.SyntheticCamera()


def test_synthetic_frames_are_224_rgb_and_deterministic(cam):
    first = cam.frame(5)
    assert first.shape == (224, 224, 3) and first.dtype == np.uint8
    assert np.array_equal(first, frames.SyntheticCamera().frame(5))
    assert not np.array_equal(first, cam.frame(6))  # it pans and zooms


def test_synthetic_camera_cycles_through_the_bundled_photos():
    cam = frames.SyntheticCamera(frames_per_photo=2)
    n = len(frames.bundled_photos())
    assert n >= 4
    assert np.array_equal(cam.frame(0), cam.frame(2 * n))  # loops
    assert not np.array_equal(cam.frame(0), cam.frame(2))  # next photo


def test_read_returns_bgr_like_opencv_and_bgr_to_rgb_undoes_it():
    cap = frames.SyntheticCamera()
    ok, bgr = cap.read()
    assert ok
    assert np.array_equal(bgr[:, :, ::-1], cap.frame(0))
    assert np.array_equal(frames.bgr_to_rgb(bgr), cap.frame(0))
    ok, bgr = cap.read()
    assert ok and np.array_equal(frames.bgr_to_rgb(bgr), cap.frame(1))


def test_frames_limit_ends_the_stream_like_a_video():
    cap = frames.SyntheticCamera(frames=3)
    assert [cap.read()[0] for _ in range(4)] == [True, True, True, False]
    cap.release()
    assert not cap.isOpened()


def test_set_and_get_follow_the_tutorials_calls():
    cap = frames.SyntheticCamera()
    assert cap.set(cv2.CAP_PROP_FRAME_WIDTH, 160) and cap.set(cv2.CAP_PROP_FRAME_HEIGHT, 120)
    assert cap.set(cv2.CAP_PROP_FPS, 36)
    assert cap.get(cv2.CAP_PROP_FPS) == 36
    assert cap.read()[1].shape == (120, 160, 3)
    assert not cap.set(cv2.CAP_PROP_BRIGHTNESS, 1)


def test_fps_paces_reads_like_a_camera():
    cap = frames.SyntheticCamera(fps=50)
    start = time.perf_counter()
    for _ in range(6):
        cap.read()
    assert time.perf_counter() - start >= 5 / 50 * 0.9  # 6 frames span 5 frame intervals


def test_open_capture_synthetic_is_paced_at_the_tutorials_36_fps():
    cap = frames.open_capture("synthetic")
    assert isinstance(cap, frames.SyntheticCamera) and cap.fps == frames.CAMERA_FPS == 36


def test_video_file_source_round_trip(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (224, 224))
    cam = frames.SyntheticCamera()
    for i in range(5):
        writer.write(np.ascontiguousarray(cam.frame(i)[:, :, ::-1]))
    writer.release()
    cap = frames.open_capture("video", path)
    reads = [cap.read() for _ in range(6)]
    assert [ok for ok, _ in reads] == [True] * 5 + [False]
    rgb = [frames.bgr_to_rgb(bgr) for _, bgr in reads[:5]]
    assert all(f.shape == (224, 224, 3) for f in rgb)
    # JPEG is lossy, but the colours must come back in RGB order, close to the original
    assert np.abs(rgb[0].astype(int) - cam.frame(0).astype(int)).mean() < 10


def test_open_capture_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="needs a path"):
        frames.open_capture("video")
    with pytest.raises(RuntimeError, match="cannot read"):
        frames.open_capture("video", tmp_path / "missing.mp4")
    with pytest.raises(ValueError, match="unknown source"):
        frames.open_capture("webcam")


def test_auto_falls_back_to_synthetic_without_a_camera(monkeypatch):
    monkeypatch.setattr(frames, "camera_present", lambda index=0: False)
    monkeypatch.setattr(frames, "picamera2_available", lambda: False)
    assert isinstance(frames.open_capture("auto"), frames.SyntheticCamera)


def test_resize_frame_only_when_needed(cam):
    frame = cam.frame(0)
    assert frames.resize_frame(frame) is frame
    assert frames.resize_frame(np.zeros((480, 640, 3), np.uint8)).shape == (224, 224, 3)


def test_camera_transform_normalises_a_frame_without_resizing(cam):
    tensor = frames.camera_transform()(cam.frame(0).copy())
    assert tensor.shape == (3, 224, 224) and tensor.dtype.is_floating_point
    assert -3 < float(tensor.mean()) < 3
