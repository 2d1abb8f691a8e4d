"""Build the small offline assets in data/ from files that installed packages ship.

Run ``python -m ptdeploy.tools.assets`` to regenerate them; the output is deterministic.
"""

import json
from importlib import resources
from pathlib import Path

from PIL import Image

from ptdeploy.paths import CAT_JPG, CLASS_INDEX_JSON


def imagenet_class_index() -> dict[str, list[str]]:
    """ImageNet-1k labels in the tutorial's format: {"285": ["n02124075", "Egyptian_cat"], ...}.

    timm ships the 1000 WordNet ids in class-index order and a wnid -> lemmas table;
    the tutorial's file uses the first lemma with spaces replaced by underscores.
    """
    info = resources.files("timm.data") / "_info"
    wnids = (info / "imagenet_synsets.txt").read_text().split()
    lemmas = {}
    for line in (info / "imagenet_synset_to_lemma.txt").read_text().splitlines():
        wnid, _, names = line.partition("\t")
        lemmas[wnid] = names.split(",")[0].strip().replace(" ", "_")
    if len(wnids) != 1000:
        raise ValueError(f"expected 1000 ImageNet synsets, timm ships {len(wnids)}")
    return {str(i): [wnid, lemmas[wnid]] for i, wnid in enumerate(wnids)}


def write_class_index(path: Path = CLASS_INDEX_JSON) -> Path:
    path.write_text(json.dumps(imagenet_class_index()) + "\n")
    return path


def write_cat_jpg(path: Path = CAT_JPG) -> Path:
    """scikit-image's bundled 'chelsea' photo (CC0), saved as JPEG."""
    from skimage import data

    Image.fromarray(data.chelsea()).save(path, format="JPEG", quality=95)
    return path


def main() -> None:
    for written in (write_cat_jpg(), write_class_index()):
        print(f"wrote {written}")


if __name__ == "__main__":
    main()
