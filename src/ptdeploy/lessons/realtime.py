"""Chapter 05: the Raspberry Pi tutorial's real-time loop, measured, and a pipelined version of it.

``tutorial_loop`` is the tutorial's loop (read, BGR -> RGB, preprocess, model, fps once a second) with
an end: it stops after ``frames`` frames and returns what it measured. ``pipelined_loop`` moves capture
and preprocessing to a reader thread that hands the newest frame over through a one-slot queue and drops
stale ones, so a slow model never works on an old picture. ``main`` is the command:

    python -m ptdeploy.lessons.realtime --source synthetic --frames 100
    python scripts/rpi_infer.py --source camera --engine qnnpack --threads 4     # on the Pi
    python scripts/rpi_infer.py --runtime executorch --pte lite0-int8.pte         # today's way
"""

import argparse
import functools
import queue
import statistics
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ptdeploy.lessons.frames import SOURCES, bgr_to_rgb, camera_transform, open_capture, resize_frame
from ptdeploy.resources import usable_cpus


class FpsLogger:
    """Counts frames and reports the rate once a second, as the tutorial's loop prints it."""

    def __init__(self, log: Callable[[str], None] | None = print):
        self.log = log
        self.samples: list[float] = []
        self.last_logged = time.perf_counter()
        self.frame_count = 0

    def tick(self) -> None:
        self.frame_count += 1
        now = time.perf_counter()
        if now - self.last_logged > 1:
            fps = self.frame_count / (now - self.last_logged)
            self.samples.append(fps)
            if self.log:
                self.log(f"{fps:.1f} fps")
            self.last_logged = now
            self.frame_count = 0


@dataclass
class LoopStats:
    frames: int = 0  # frames that went through the model
    seconds: float = 0.0  # wall time of the whole loop
    model_ms: list[float] = field(default_factory=list)  # per frame, the model call alone
    dropped: int = 0  # frames captured but replaced by a newer one before the model got to them
    fps_log: list[float] = field(default_factory=list)  # what was logged once a second
    output: torch.Tensor | None = None  # the last frame's logits

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    @property
    def total_ms(self) -> float:
        """Wall time per frame: the tutorial's "total time (ms/frame)"."""
        return 1000 * self.seconds / self.frames if self.frames else 0.0

    @property
    def model_ms_median(self) -> float:
        return statistics.median(self.model_ms) if self.model_ms else 0.0


def _model_call(net, batch: torch.Tensor, stats: LoopStats) -> torch.Tensor:
    start = time.perf_counter()
    output = net(batch)
    stats.model_ms.append(1000 * (time.perf_counter() - start))
    return output


@torch.no_grad()
def tutorial_loop(net, cap, frames: int, log: Callable[[str], None] | None = print) -> LoopStats:
    """The tutorial's loop, one frame at a time: capture, convert, preprocess, infer, log fps."""
    preprocess = camera_transform()
    fps_logger = FpsLogger(log)
    stats = LoopStats()
    started = time.perf_counter()
    for _ in range(frames):
        ret, image = cap.read()
        if not ret:
            raise RuntimeError("failed to read frame")
        image = resize_frame(bgr_to_rgb(image))  # convert opencv output from BGR to RGB
        input_batch = preprocess(image).unsqueeze(0)  # [3, 224, 224] -> [1, 3, 224, 224]
        stats.output = _model_call(net, input_batch, stats)
        stats.frames += 1
        fps_logger.tick()
    stats.seconds = time.perf_counter() - started
    stats.fps_log = fps_logger.samples
    return stats


class FrameReader(threading.Thread):
    """Reads and preprocesses frames in the background, one frame ahead of the model.

    A live source (``live=True``, a camera) keeps only the newest frame: a stale one is replaced, never
    queued. A recorded or unpaced source (a video file) waits instead until the model has taken the frame
    ready, so it reads no frame it would throw away and leaves the CPU to the model.
    """

    def __init__(self, cap, preprocess, live: bool = True):
        super().__init__(daemon=True)
        self.cap, self.preprocess, self.live = cap, preprocess, live
        self.latest: queue.Queue = queue.Queue(maxsize=1)
        self.dropped = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                ret, image = self.cap.read()
                if not ret:
                    break
                batch = self.preprocess(resize_frame(bgr_to_rgb(image))).unsqueeze(0)
                self._offer(batch)
        finally:
            self._offer(None)  # end of stream

    def _offer(self, item) -> None:
        if not self.live:  # wait for the model to take the frame ready
            while not self.stopping.is_set():
                try:
                    self.latest.put(item, timeout=0.1)
                    return
                except queue.Full:
                    pass
            return  # the loop has ended: nobody will take this frame
        # A real-time loop wants the newest frame: replace the waiting one instead of queueing behind it.
        while True:
            try:
                self.latest.put_nowait(item)
                return
            except queue.Full:
                try:
                    self.latest.get_nowait()
                    if item is not None:
                        self.dropped += 1
                except queue.Empty:
                    pass

    def stop(self) -> None:
        self.stopping.set()


def pipelined_threads(cpus: int | None = None) -> int:
    """Model threads for the pipelined loop: CPUs - 1, leaving one to the reader thread (at least 1).

    ``cpus`` defaults to what this process may really use (``usable_cpus``: a container's limit, not the
    host's cores, which is what the affinity mask shows on Binder)."""
    return max((usable_cpus() if cpus is None else cpus) - 1, 1)


@torch.no_grad()
def pipelined_loop(
    net,
    cap,
    frames: int,
    log: Callable[[str], None] | None = print,
    threads: int | None = None,
    live: bool = True,
) -> LoopStats:
    """Capture + preprocessing on a reader thread, inference here, the reader one frame ahead.

    ``live`` (a camera): stale frames are dropped, not queued; otherwise (a video file) the reader waits
    for the model. The model runs with ``threads`` intra-op threads (default ``pipelined_threads()``:
    cores - 1), so that reader and model together do not ask for more cores than there are.
    """
    reader = FrameReader(cap, camera_transform(), live=live)
    fps_logger = FpsLogger(log)
    stats = LoopStats()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads or pipelined_threads())
    reader.start()
    started = time.perf_counter()
    try:
        while stats.frames < frames:
            batch = reader.latest.get()
            if batch is None:
                break
            stats.output = _model_call(net, batch, stats)
            stats.frames += 1
            fps_logger.tick()
    finally:
        stats.seconds = time.perf_counter() - started
        reader.stop()
        reader.join(timeout=5)
        torch.set_num_threads(previous_threads)
    stats.dropped = reader.dropped
    stats.fps_log = fps_logger.samples
    return stats


@torch.no_grad()
def model_only(net, frames: int, batch: torch.Tensor | None = None) -> LoopStats:
    """The model alone on one fixed input: the upper bound for any loop around it."""
    batch = torch.zeros(1, 3, 224, 224) if batch is None else batch
    stats = LoopStats()
    started = time.perf_counter()
    for _ in range(frames):
        stats.output = _model_call(net, batch, stats)
        stats.frames += 1
    stats.seconds = time.perf_counter() - started
    return stats


def top_predictions(output: torch.Tensor, labels: dict[int, tuple[str, str]], k: int = 10) -> list[str]:
    """The tutorial's printout: softmax over the first image's logits, best k as "12.34% name"."""
    top = list(enumerate(output[0].softmax(dim=0)))
    top.sort(key=lambda x: x[1], reverse=True)
    return [f"{val.item() * 100:.2f}% {labels[idx][1]}" for idx, val in top[:k]]


# ---------------------------------------------------------------- the command


MODELS = ("lite0-int8", "lite0-fp32")
RUNTIMES = ("torch", "executorch")


def build_model(name: str, engine: str | None = None, calibration_frames: int = 32):
    """The classifier to run: the offline EfficientNet-Lite0, quantized (eager mode + jit) or in fp32."""
    from ptdeploy.lessons.classifier import load_classifier
    from ptdeploy.lessons.int8_accuracy import calibration_batches
    from ptdeploy.lessons.lite0_eager import QuantizableLite0
    from ptdeploy.lessons.quantize import quantize_eager

    classifier = load_classifier()
    if name == "lite0-fp32":
        net = classifier.model
    elif name == "lite0-int8":
        # Two images at a time: with batches of 8 calibration's memory peaks markedly higher, which a Pi or
        # a Binder-sized machine feels. The activation scales differ very little, but a few borderline
        # evaluation views can change their top-1 (what it cost is in a session note, not here).
        batches = calibration_batches(calibration_frames, batch_size=2)
        net = quantize_eager(QuantizableLite0(classifier.model), batches, engine)
    else:
        raise ValueError(f"unknown model {name!r}; choose one of {MODELS}")
    # The tutorial reports jit taking its model from about 20 to 30 fps on the Pi (less Python per frame).
    return torch.jit.script(net), classifier.labels


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Real-time image classification from a camera, a video or a built-in source."
    )
    parser.add_argument(
        "--source", choices=SOURCES, default="auto", help="auto: camera if present, else synthetic"
    )
    parser.add_argument("--video", metavar="PATH", help="the file for --source video")
    parser.add_argument("--model", choices=MODELS, default="lite0-int8")
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="torch",
        help="torch: the tutorial's way (eager int8 + torch.jit); executorch: a .pte program run by XNNPACK",
    )
    parser.add_argument(
        "--pte",
        metavar="PATH",
        type=Path,
        help="the ExecuTorch program for --runtime executorch (default: --model's, exported here and cached)",
    )
    parser.add_argument(
        "--engine",
        choices=torch.backends.quantized.supported_engines,
        default=None,
        help="quantized engine (default: qnnpack on ARM, onednn on x86)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="model threads (default: all cores; cores - 1 when pipelined)",
    )
    parser.add_argument(
        "--frames", type=int, default=None, help="stop after this many frames (default: run until Ctrl-C)"
    )
    parser.add_argument("--top", type=int, default=5, help="print this many predictions for the last frame")
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="the tutorial's one-thread loop instead of the pipelined one",
    )
    args = parser.parse_args(argv)
    if args.source == "video" and not args.video:
        parser.error("--source video needs --video PATH")
    if args.pte and args.runtime != "executorch":
        parser.error("--pte needs --runtime executorch")
    return args


def build_program(args: argparse.Namespace):
    """The ExecuTorch program to run: --pte, or --model's, exported here once and cached."""
    from ptdeploy.imagenet import imagenet_labels
    from ptdeploy.lessons import executorch_export

    path = args.pte or executorch_export.cached_program(args.model.removeprefix("lite0-"))
    return executorch_export.load(path), imagenet_labels(), path


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    frames = args.frames if args.frames is not None else 10**12
    if args.sequential:
        loop, threads = tutorial_loop, torch.get_num_threads()
    else:
        threads = args.threads or pipelined_threads()
        # a video file has no deadline: read it frame by frame instead of dropping frames
        loop = functools.partial(pipelined_loop, threads=threads, live=args.source != "video")
    if args.runtime == "executorch":
        from ptdeploy.lessons.executorch_export import ProgramError, set_threads

        try:
            set_threads(threads)  # XNNPACK has a thread pool of its own: the same size, set before loading
            net, labels, path = build_program(args)
        except (FileNotFoundError, ProgramError, RuntimeError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        what = f"program {path.name}, XNNPACK"
    else:
        # torch.ao.quantization and torch.jit warn that they are deprecated on every use; say it once, here.
        warnings.filterwarnings("ignore", module=r"torch\.(ao|jit)")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        print(
            "note: torch.ao.quantization (eager mode) and torch.jit are deprecated in this torch;",
            "they still run",
        )
        from ptdeploy.lessons.quantize import default_engine, lite0_engine, set_engine

        engine = set_engine(
            args.engine or (lite0_engine() if args.model == "lite0-int8" else default_engine())
        )
        net, labels = build_model(args.model, engine)
        what = f"model {args.model}, engine {engine}"
    cap = open_capture(args.source, args.video)
    print(f"{what}, {threads} model threads, source {type(cap).__name__}")
    try:
        stats = loop(net, cap, frames)
    except KeyboardInterrupt:
        return 130
    finally:
        cap.release()
    print(
        f"{stats.frames} frames in {stats.seconds:.2f} s: {stats.fps:.1f} fps, "
        f"model {stats.model_ms_median:.1f} ms/frame (median), {stats.dropped} stale frames dropped"
    )
    if stats.output is not None:
        print("last frame:")
        for line in top_predictions(stats.output, labels, args.top):
            print("  " + line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
