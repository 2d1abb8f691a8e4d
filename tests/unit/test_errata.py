"""ERRATA.md is built from the notebooks' cells (ptdeploy.tools.errata) and stays current."""

import json

import pytest

from ptdeploy.paths import REPO_ROOT
from ptdeploy.tools import errata


def test_errata_page_is_current():
    assert (REPO_ROOT / "ERRATA.md").read_text() == errata.render(), "run make errata"


def test_every_erratum_stands_on_its_cells_output():
    found = [e for chapter in errata.collect().values() for e in chapter]
    assert len(found) >= 10
    for e in found:
        assert e.shown and all(e.evidence in line for line in e.shown)
        assert e.kind in errata.KINDS and e.says and e.today
    assert sum(e.checked for e in found) >= len(found) - 2  # nearly all are checked by nbval


def write_notebook(path, cells):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cells": cells}))


def chapter_cells(erratum, output="AttributeError: no attribute 'old'\n", cell_type="code"):
    intro = "# 09 · X\n\nThis mirrors [*A Tutorial*](https://pytorch.org/tutorials/a.html)."
    cell = {"cell_type": cell_type, "id": "c1", "metadata": {"erratum": erratum}, "source": "x.old()"}
    if cell_type == "code":
        cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": output}]
    return [{"cell_type": "markdown", "id": "m", "metadata": {}, "source": intro}, cell]


ERRATUM = {
    "kind": "removed API",
    "says": "x.old()",
    "today": "gone | use x.new()",
    "evidence": "no attribute",
}


def test_a_fake_chapter_renders_under_its_tutorial(tmp_path):
    write_notebook(tmp_path / "notebooks" / "09_x.ipynb", chapter_cells(ERRATUM))
    page = errata.render(tmp_path)
    assert "1 place where" in page
    assert "## 09 · [A Tutorial](https://pytorch.org/tutorials/a.html)" in page
    assert "| x.old() | gone \\| use x.new() | removed API |" in page  # a | in the text stays in its column
    assert "cell `c1`: `AttributeError: no attribute 'old'`" in page


@pytest.mark.parametrize(
    "change, message",
    [
        ({"evidence": "not in the output"}, "does not hold the evidence"),
        ({"kind": "oops"}, "is not one of"),
    ],
)
def test_an_erratum_without_its_evidence_or_kind_is_refused(tmp_path, change, message):
    write_notebook(tmp_path / "notebooks" / "09_x.ipynb", chapter_cells({**ERRATUM, **change}))
    with pytest.raises(ValueError, match=message):
        errata.render(tmp_path)


def test_an_erratum_on_a_markdown_cell_is_refused(tmp_path):
    write_notebook(tmp_path / "notebooks" / "09_x.ipynb", chapter_cells(ERRATUM, cell_type="markdown"))
    with pytest.raises(ValueError, match="code cell"):
        errata.render(tmp_path)
