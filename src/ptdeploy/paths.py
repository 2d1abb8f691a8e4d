"""Where things live, so notebooks and scripts work from any working directory."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = REPO_ROOT / "data"
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
# One topic of a chapter, in depth: beside the chapters, named after the chapter they belong to.
DEEP_DIVES_DIR = NOTEBOOKS_DIR / "deep_dives"
# Everything generated at run time goes here; it is git-ignored.
OUTPUT_DIR = REPO_ROOT / "outputs"

CAT_JPG = DATA_DIR / "cat.jpg"
CLASS_INDEX_JSON = DATA_DIR / "imagenet_class_index.json"


def output_dir(*parts: str) -> Path:
    """Return (and create) a folder under the git-ignored outputs/ folder."""
    path = OUTPUT_DIR.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
