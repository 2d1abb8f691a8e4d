"""The shape of the book: seven chapters a learner can finish, and deep dives that are found and linked."""

import re

import pytest

from ptdeploy.paths import NOTEBOOKS_DIR, REPO_ROOT
from ptdeploy.tools.notebooks import all_notebooks, chapters, deep_dives, notebook_name, read_plain
from ptdeploy.tools.reading import reading

CHAPTERS = chapters()
DEEP_DIVES = deep_dives()
# A relative Markdown link to a file: [text](path) or [text](path#part), not a URL.
RELATIVE_LINK = re.compile(r"\]\((?![a-z]+:|#)([^)\s#]+)(?:#[^)\s]*)?\)")


def markdown(path) -> str:
    return "\n".join(c["source"] for c in read_plain(path)["cells"] if c["cell_type"] == "markdown")


def chapter_of(deep_dive):
    number = deep_dive.name[:2]
    found = [c for c in CHAPTERS if c.name.startswith(number + "_")]
    assert found, f"{deep_dive.name}: no chapter {number}"
    return found[0]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_keeps_to_its_budget(path):
    assert reading(read_plain(path)).over_budget() == [], f"{path.name} is over its budget"


def test_every_notebook_is_found():
    # a notebook under notebooks/ that the runner does not know would be neither run nor checked
    # (the Chinese edition in notebooks/zh/ is built from these: tests/unit/test_translations.py)
    on_disk = {p for p in NOTEBOOKS_DIR.rglob("*.ipynb") if not {".ipynb_checkpoints", "zh"} & set(p.parts)}
    assert on_disk == set(all_notebooks())


@pytest.mark.parametrize("path", DEEP_DIVES, ids=lambda p: p.name)
def test_deep_dive_is_linked_from_its_chapter_and_the_readme(path):
    chapter = chapter_of(path)
    assert f"(deep_dives/{path.name})" in markdown(chapter), f"{chapter.name} does not link {path.name}"
    assert f"(notebooks/deep_dives/{path.name})" in (REPO_ROOT / "README.md").read_text()
    first = read_plain(path)["cells"][0]["source"]
    assert f"(../{chapter.name})" in first, f"{path.name} does not say which chapter it belongs to"


@pytest.mark.parametrize("path", all_notebooks(), ids=notebook_name)
def test_relative_links_lead_somewhere(path):
    broken = [link for link in RELATIVE_LINK.findall(markdown(path)) if not (path.parent / link).exists()]
    assert broken == [], f"{notebook_name(path)}: links to missing files"
