"""Chapter 05: what an int8 model is calibrated on and judged by.

Calibration batches (the photos the chapter labels, and frames of the synthetic camera over them);
evaluation images that calibration never sees (natural photos from installed packages, eight views of
each); and ``agreement``, how close int8 logits come to fp32's: same top-1, and how much of the top-5
they share.
"""

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ptdeploy.lessons.classifier import tutorial_transform


def calibration_batches(n_frames: int = 64, batch_size: int = 8) -> list[torch.Tensor]:
    """Calibration data: the photos the notebook labels, plus frames of the synthetic camera over them.

    Post-training static quantization only needs activations that look like the deployment's (to set
    each layer's int8 range), not labels; a few dozen images is the usual order of magnitude.
    """
    from ptdeploy.lessons.frames import SyntheticCamera, bundled_photos, camera_transform

    transform = tutorial_transform()
    images = [transform(p) for p in bundled_photos().values()]
    cam = SyntheticCamera(frames_per_photo=max(n_frames // len(bundled_photos()), 1))
    frame_transform = camera_transform()
    images += [frame_transform(cam.frame(i).copy()) for i in range(n_frames)]
    stacked = torch.stack(images)
    return list(stacked.split(batch_size))


# Natural photographs that come with installed packages and that calibration never sees (it uses the
# synthetic camera's four photos and its frames): agreement is measured on pictures new to the model.
EVALUATION_PHOTOS = ("motorcycle_left", "motorcycle_right", "clock", "grace_hopper", "present")


def evaluation_photos() -> dict[str, Image.Image]:
    """The evaluation photos as RGB images: scikit-image's stereo pair and clock, matplotlib's samples."""
    from matplotlib import cbook
    from skimage import data

    left, right, _disparity = data.stereo_motorcycle()
    arrays = {"motorcycle_left": left, "motorcycle_right": right, "clock": data.clock()}
    for name, file in (("grace_hopper", "grace_hopper.jpg"), ("present", "Minduka_Present_Blue_Pack.png")):
        with Image.open(cbook.get_sample_data(file)) as image:
            arrays[name] = np.asarray(image)
    return {name: Image.fromarray(arrays[name]).convert("RGB") for name in EVALUATION_PHOTOS}


# What evaluation_views() makes of each photo, in its order.
EVALUATION_VIEWS = (
    "whole",
    "mirrored",
    "top-left crop",
    "top-right crop",
    "bottom-left crop",
    "bottom-right crop",
    "small centre crop",
    "centre crop, mirrored",
)


def evaluation_views(photo: Image.Image) -> list[Image.Image]:
    """The EVALUATION_VIEWS of a photo: whole, mirrored, four corner crops, a small centre crop and a
    larger one mirrored."""
    from torchvision.transforms import functional

    w, h = photo.size
    side, small = int(0.7 * min(w, h)), int(0.5 * min(w, h))
    cx, cy = w // 2, h // 2
    return [
        photo,
        functional.hflip(photo),
        photo.crop((0, 0, side, side)),
        photo.crop((w - side, 0, w, side)),
        photo.crop((0, h - side, side, h)),
        photo.crop((w - side, h - side, w, h)),
        photo.crop((cx - small // 2, cy - small // 2, cx + small // 2, cy + small // 2)),
        functional.hflip(photo.crop((cx - side // 2, cy - side // 2, cx + side // 2, cy + side // 2))),
    ]


def evaluation_images() -> torch.Tensor:
    """Every view of every evaluation photo, normalised 224x224, in EVALUATION_PHOTOS order."""
    transform = tutorial_transform()
    views = [view for photo in evaluation_photos().values() for view in evaluation_views(photo)]
    return torch.stack([transform(view) for view in views])


@torch.no_grad()
def logits(model, images: torch.Tensor, batch_size: int = 8) -> torch.Tensor:
    """``model(images)`` a few images at a time: the same logits, a fraction of the activation memory."""
    return torch.cat([model(batch) for batch in images.split(batch_size)])


@dataclass
class Agreement:
    images: int
    same_top1: int
    top5_overlap: float  # mean |top5(fp32) ∩ top5(int8)| / 5
    max_prob_diff: float  # largest difference of a softmax probability

    def __str__(self) -> str:
        return f"same top-1 on {self.same_top1}/{self.images} images, top-5 overlap {self.top5_overlap:.0%}"


@torch.no_grad()
def agreement(reference: torch.Tensor, candidate: torch.Tensor) -> Agreement:
    """Compare two models' logits for the same images (rows)."""
    ref_top5 = reference.topk(5, dim=1).indices
    cand_top5 = candidate.topk(5, dim=1).indices
    overlaps = [len(set(a.tolist()) & set(b.tolist())) / 5 for a, b in zip(ref_top5, cand_top5)]
    diff = (reference.softmax(1) - candidate.softmax(1)).abs().max().item()
    return Agreement(
        images=len(reference),
        same_top1=int((ref_top5[:, 0] == cand_top5[:, 0]).sum()),
        top5_overlap=float(np.mean(overlaps)),
        max_prob_diff=diff,
    )
