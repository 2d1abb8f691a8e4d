"""Stored notebook outputs must come from one complete, in-order run of the current code."""

import pytest

from ptdeploy.tools.notebooks import all_notebooks, read_plain, stale_output_problems

EXPECTED = [
    "01_flask_api.ipynb",
    "02_torchscript_intro.ipynb",
    "03_cpp_export.ipynb",
    "04_onnx_superres.ipynb",
    "05_rpi_realtime.ipynb",
    "06_profiler.ipynb",
    "07_hta.ipynb",
]


def test_notebooks_have_the_design_card_names():
    names = [p.name for p in all_notebooks()]
    assert names == sorted(EXPECTED), "the chapters are the design card's seven notebooks, no more, no less"


@pytest.mark.parametrize("path", all_notebooks(), ids=lambda p: p.name)
def test_stored_outputs_are_complete_and_in_order(path):
    assert stale_output_problems(read_plain(path)) == []


NBVAL_MARKERS = {"NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP", "NBVAL_CHECK_OUTPUT", "NBVAL_RAISES_EXCEPTION"}
IGNORING_TAGS = {"nbval-ignore-output", "nbval-skip"}


@pytest.mark.parametrize("path", all_notebooks(), ids=lambda p: p.name)
def test_nbval_markers_are_exact(path):
    # nbval only honours a comment line that is exactly "# NBVAL_...": anything after it on the
    # same line silently turns the marker off. Put the reason on the next comment line.
    for cell in read_plain(path)["cells"]:
        for line in cell["source"].splitlines():
            text = line.strip().lstrip("#").strip()
            if line.strip().startswith("#") and text.startswith("NBVAL_"):
                assert text in NBVAL_MARKERS, f"{path.name}: nbval ignores the marker {line.strip()!r}"


@pytest.mark.parametrize("path", all_notebooks(), ids=lambda p: p.name)
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
