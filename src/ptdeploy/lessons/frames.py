"""Chapter 05: where frames come from: a camera when there is one, a video file, or a deterministic
built-in source.

Every source here is a *capture*: an object with OpenCV's ``cv2.VideoCapture`` interface
(``read() -> (ok, BGR uint8 image)``, ``set``, ``get``, ``isOpened``, ``release``). So the Raspberry Pi
tutorial's loop runs unchanged on any of them, including its BGR -> RGB step:

* ``open_camera()``: the tutorial's camera, ``cv2.VideoCapture(0, cv2.CAP_V4L2)`` asking for 224x224 @ 36 fps;
* ``cv2.VideoCapture(path)``: a video file (``open_capture("video", path)``);
* ``Picamera2Capture``: the camera stack of newer Raspberry Pi OS, when ``picamera2`` is importable;
* ``SyntheticCamera``: pans and zooms over photos that ship with this repo and its dependencies. Frame
  ``i`` is always the same image, so predictions made from it are reproducible; this is what runs in CI.
"""

import time
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from ptdeploy.paths import CAT_JPG

# The tutorial's camera settings: MobileNetV2 takes 224x224, and 36 fps leaves headroom over a 30 fps target.
WIDTH = HEIGHT = 224
CAMERA_FPS = 36
# skimage.data's colour photos that ship inside the scikit-image wheel (CC0 / public domain).
SKIMAGE_PHOTOS = ("coffee", "astronaut", "rocket")


@cache
def bundled_photos() -> dict[str, Image.Image]:
    """Offline RGB photos: data/cat.jpg (Chelsea) first, then a few of scikit-image's bundled photos."""
    from skimage import data

    photos = {"cat": Image.open(CAT_JPG).convert("RGB")}
    for name in SKIMAGE_PHOTOS:
        photos[name] = Image.fromarray(getattr(data, name)()).convert("RGB")
    return photos


def bgr_to_rgb(image: np.ndarray) -> np.ndarray:
    """OpenCV returns BGR; the tutorial reorders the channels with fancy indexing (which copies)."""
    return image[:, :, [2, 1, 0]]


class SyntheticCamera:
    """A camera-shaped source with no camera: a slow pan and zoom over each photo in turn.

    Frames are 224x224 BGR uint8 like the tutorial's camera delivers. ``fps`` paces ``read()`` like a
    real camera (``None``: as fast as the CPU allows). ``frames`` ends the stream (``read()`` then
    returns ``(False, None)``, as OpenCV does at the end of a video); ``None`` loops forever.
    """

    def __init__(
        self,
        photos: dict[str, Image.Image] | None = None,
        frames_per_photo: int = 48,
        fps: float | None = None,
        frames: int | None = None,
        size: tuple[int, int] = (WIDTH, HEIGHT),
    ):
        self.photos = list((photos or bundled_photos()).items())
        self.frames_per_photo = frames_per_photo
        self.fps = fps
        self.frames = frames
        self.size = size
        self.index = 0
        self._next_due = None
        self._open = True

    # --- the part of cv2.VideoCapture's interface the tutorial uses ---
    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return self._open

    def set(self, prop: int, value: float) -> bool:
        import cv2

        if prop == cv2.CAP_PROP_FRAME_WIDTH:
            self.size = (int(value), self.size[1])
        elif prop == cv2.CAP_PROP_FRAME_HEIGHT:
            self.size = (self.size[0], int(value))
        elif prop == cv2.CAP_PROP_FPS:
            self.fps = float(value)
        else:
            return False
        return True

    def get(self, prop: int) -> float:
        import cv2

        return {
            cv2.CAP_PROP_FRAME_WIDTH: self.size[0],
            cv2.CAP_PROP_FRAME_HEIGHT: self.size[1],
            cv2.CAP_PROP_FPS: self.fps or 0.0,
            cv2.CAP_PROP_POS_FRAMES: self.index,
        }.get(prop, 0.0)

    def read(self) -> tuple[bool, np.ndarray | None]:
        if not self._open or (self.frames is not None and self.index >= self.frames):
            return False, None
        self._wait_for_frame_time()
        rgb = self.frame(self.index)
        self.index += 1
        return True, np.ascontiguousarray(rgb[:, :, ::-1])  # cameras hand OpenCV BGR

    def release(self) -> None:
        self._open = False

    # --- the synthetic part ---
    def frame(self, i: int) -> np.ndarray:
        """Frame i as RGB uint8 (height, width, 3); a pure function of i."""
        name, photo = self.photos[(i // self.frames_per_photo) % len(self.photos)]
        t = (i % self.frames_per_photo) / max(self.frames_per_photo - 1, 1)  # 0 -> 1 within a photo
        w, h = photo.size
        # Zoom from the whole short side to 80 % of it while panning left to right, top to bottom a little.
        side = min(w, h) * (1.0 - 0.2 * t)
        left = (w - side) * t
        top = (h - side) * 0.5 * t
        box = (left, top, left + side, top + side)
        image = photo.resize(self.size, Image.Resampling.BILINEAR, box=box)
        return np.asarray(image)

    def _wait_for_frame_time(self) -> None:
        if not self.fps:
            return
        now = time.perf_counter()
        if self._next_due is None or now - self._next_due > 1.0:  # first frame, or we fell far behind
            self._next_due = now
        elif now < self._next_due:
            time.sleep(self._next_due - now)
        self._next_due += 1.0 / self.fps


class Picamera2Capture:
    """The Pi camera through Picamera2 (libcamera), for Raspberry Pi OS Bullseye and later.

    The tutorial's OpenCV/V4L2 path needs the legacy camera stack; newer Pi OS images ship Picamera2
    instead. Its "RGB888" format is BGR in memory, the same order OpenCV returns.
    """

    def __init__(self, size: tuple[int, int] = (WIDTH, HEIGHT), fps: float = CAMERA_FPS):
        from picamera2 import Picamera2  # only on a Pi: `sudo apt install python3-picamera2`

        self.camera = Picamera2()
        config = self.camera.create_video_configuration(
            main={"size": size, "format": "RGB888"}, controls={"FrameRate": fps}
        )
        self.camera.configure(config)
        self.camera.start()
        self._open = True

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return self._open

    def read(self) -> tuple[bool, np.ndarray | None]:
        return True, self.camera.capture_array()

    def set(self, prop: int, value: float) -> bool:
        return False  # size and frame rate are fixed at construction

    def release(self) -> None:
        self.camera.stop()
        self._open = False


def camera_present(index: int = 0) -> bool:
    """Is there a V4L2 device the tutorial's capture could open? (None in CI, Binder or containers.)"""
    return Path(f"/dev/video{index}").exists()


def picamera2_available() -> bool:
    try:
        import picamera2  # noqa: F401
    except ImportError:
        return False
    return True


def open_camera(index: int = 0, size: tuple[int, int] = (WIDTH, HEIGHT), fps: float = CAMERA_FPS):
    """The tutorial's capture: V4L2 camera ``index`` asking for 224x224 at 36 fps."""
    import cv2

    cap = cv2.VideoCapture(index, cv2.CAP_V4L2)
    if not cap.isOpened():
        raise RuntimeError(f"cannot open /dev/video{index} with OpenCV's V4L2 backend")
    cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
    cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
    cap.set(cv2.CAP_PROP_FPS, fps)
    return cap


def open_video(path: str | Path):
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise RuntimeError(f"OpenCV cannot read the video {path}")
    return cap


SOURCES = ("camera", "picamera2", "video", "synthetic", "auto")


def open_capture(source: str = "auto", path: str | Path | None = None, **synthetic_options):
    """Open a capture by name. "auto": the V4L2 camera if present, else Picamera2, else synthetic."""
    if source == "auto":
        source = "camera" if camera_present() else "picamera2" if picamera2_available() else "synthetic"
    if source == "camera":
        return open_camera()
    if source == "picamera2":
        return Picamera2Capture()
    if source == "video":
        if path is None:
            raise ValueError("the video source needs a path")
        return open_video(path)
    if source == "synthetic":
        synthetic_options.setdefault(
            "fps", CAMERA_FPS
        )  # paced like the tutorial's camera unless told otherwise
        return SyntheticCamera(**synthetic_options)
    raise ValueError(f"unknown source {source!r}; choose one of {SOURCES}")


def camera_transform():
    """The Pi tutorial's preprocessing of a 224x224 RGB camera frame: ToTensor + ImageNet normalisation.

    No resize or crop: the camera already delivers the model's size. (Photos of any size go through
    ``classifier.tutorial_transform`` instead: Resize(255), CenterCrop(224), then the same two steps.)
    """
    from torchvision import transforms

    from ptdeploy.imagenet import IMAGENET_MEAN, IMAGENET_STD

    return transforms.Compose([transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def resize_frame(rgb: np.ndarray, size: tuple[int, int] = (WIDTH, HEIGHT)) -> np.ndarray:
    """Cameras and videos may ignore the requested size; the models want 224x224."""
    if rgb.shape[1::-1] == size:
        return rgb
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
