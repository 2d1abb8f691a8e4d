"""Stored notebook outputs must come from one complete, in-order run of the current code, and be the same on
any machine."""

import json
import re

import pytest

from ptdeploy.tools.notebooks import all_notebooks, chapters, notebook_name, read_plain, stale_output_problems

EXPECTED = [
    "01_flask_api.ipynb",
    "02_torchscript_intro.ipynb",
    "03_cpp_export.ipynb",
    "04_onnx_superres.ipynb",
    "05_rpi_realtime.ipynb",
    "06_profiler.ipynb",
    "07_hta.ipynb",
]


def test_chapters_have_the_design_card_names():
    names = [p.name for p in chapters()]
    assert names == sorted(EXPECTED), "the chapters are the design card's seven notebooks, no more, no less"


@pytest.mark.parametrize("path", all_notebooks(), ids=notebook_name)
def test_stored_outputs_are_complete_and_in_order(path):
    assert stale_output_problems(read_plain(path)) == []


# Folders that only exist on the machine that ran the notebook: a checkout, a venv, a home, a temporary file.
MACHINE_PATH = re.compile(
    r"(?<![\w.~:/-])/(?:home|root|work|tmp|usr|opt|var|mnt|srv|Users|private|nix)/[^\s\"'<>)]*"
)


def output_texts(output: dict) -> list[str]:
    """The text a reader sees in one output (images and widgets left out)."""
    if output["output_type"] == "stream":
        return [output["text"] if isinstance(output["text"], str) else "".join(output["text"])]
    if output["output_type"] == "error":
        return output["traceback"]
    texts = []
    for kind, value in output.get("data", {}).items():
        if kind.startswith("text/") or kind.endswith("json"):
            texts.append(value if isinstance(value, str) else json.dumps(value))
    return texts


@pytest.mark.parametrize("path", all_notebooks(), ids=notebook_name)
def test_outputs_name_no_machine_path(path):
    found = {
        match
        for cell in read_plain(path)["cells"]
        for output in cell.get("outputs", [])
        for text in output_texts(output)
        for match in MACHINE_PATH.findall(text)
    }
    assert not found, f"{notebook_name(path)}: stored outputs name this machine's paths: {sorted(found)[:5]}"


IGNORING_TAGS = {"nbval-ignore-output", "nbval-skip"}


@pytest.mark.parametrize("path", all_notebooks(), ids=notebook_name)
def test_unchecked_cells_use_tags(path):
    # One convention: nbval's cell tags (nbval-ignore-output, nbval-skip), not "# NBVAL_..." comments.
    for cell in read_plain(path)["cells"]:
        for line in cell["source"].splitlines():
            assert not line.strip().lstrip("#").strip().startswith("NBVAL_"), (
                f"{notebook_name(path)}: use the cell tag instead of {line.strip()!r}"
            )


@pytest.mark.parametrize("path", all_notebooks(), ids=notebook_name)
def test_ignored_cells_say_why(path):
    for cell in read_plain(path)["cells"]:
        if cell["cell_type"] != "code":
            continue
        lines = [line.strip() for line in cell["source"].splitlines()]
        ignored = any(
            line.lstrip("#").strip() in {"NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP"}
            for line in lines
            if line.startswith("#")
        )
        ignored |= bool(IGNORING_TAGS & set(cell["metadata"].get("tags", [])))
        if ignored:
            reasons = [s for s in lines if s.startswith("#") and "NBVAL_" not in s and len(s.split()) >= 4]
            excerpt = cell["source"][:200]
            assert reasons, f"{path.name}: an unchecked cell needs a comment saying why:\n{excerpt}"
