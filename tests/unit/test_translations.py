"""The Chinese edition (ptdeploy.tools.translations): catalogs follow the English notebooks as msgmerge
would, the Chinese notebooks are the English ones with translated markdown, and every translation keeps
what must not change."""

import json
from pathlib import Path

import polib
import pytest

from ptdeploy.paths import NOTEBOOKS_DIR
from ptdeploy.tools import translations as tr
from ptdeploy.tools.notebooks import all_notebooks, notebook_name

NAME = Path("deep_dives/09_example.ipynb")


def notebook(*cells) -> dict:
    """A notebook of ("md" | "code", id, source) cells; code cells carry an output."""
    made = []
    for kind, cell_id, source in cells:
        if kind == "md":
            made.append({"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": source})
        else:
            output = {"name": "stdout", "output_type": "stream", "text": [f"ran {cell_id}\n"]}
            made.append(
                {
                    "cell_type": "code",
                    "execution_count": 1,
                    "id": cell_id,
                    "metadata": {"tags": ["nbval-ignore-output"]},
                    "outputs": [output],
                    "source": source,
                }
            )
    return {
        "cells": made,
        "metadata": {"kernelspec": {"name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def translated(po: polib.POFile, **by_cell: str) -> polib.POFile:
    for entry in po:
        for cell in tr._cell_ids(entry):
            if cell in by_cell:
                entry.msgstr = by_cell[cell]
    return po


def round_trip(po: polib.POFile, tmp_path: Path) -> polib.POFile:
    path = tmp_path / "x.po"
    po.save(str(path))
    return tr.load_catalog(path)


ENGLISH = notebook(
    ("md", "title", "# Example\n\nRun `make run` on 40 images."),
    ("code", "c1", "print(1)"),
    ("md", "gone", "A cell that will go."),
    ("md", "twice", "Same text."),
    ("md", "twice-2", "Same text."),
)


def test_a_new_notebook_gets_one_untranslated_entry_per_markdown_text():
    po = tr.merge(ENGLISH, NAME, None)
    assert [e.msgid for e in po] == [
        "# Example\n\nRun `make run` on 40 images.",
        "A cell that will go.",
        "Same text.",
    ]
    assert all(not e.msgstr for e in po)
    assert tr._cell_ids(po.find("Same text.")) == ["twice", "twice-2"]  # one text, two cells


def test_merge_keeps_translations_marks_changed_cells_fuzzy_and_keeps_removed_ones(tmp_path):
    old = translated(
        tr.merge(ENGLISH, NAME, None),
        title="# 示例\n\n对 40 张图像运行 `make run`。",
        gone="一个将被删除的单元格。",
    )
    old = round_trip(old, tmp_path)  # as read back from disk: references are parsed by polib
    changed = notebook(
        ("md", "title", "# Example\n\nRun `make run` on 50 images."),
        ("code", "c1", "print(1)"),
        ("md", "twice", "Same text."),
        ("md", "new", "A new cell."),
    )
    po = tr.merge(changed, NAME, old)
    title = po.find("# Example\n\nRun `make run` on 50 images.")
    assert "fuzzy" in title.flags and title.msgstr.startswith("# 示例")
    assert title.previous_msgid == "# Example\n\nRun `make run` on 40 images."
    assert po.find("A new cell.").msgstr == ""
    gone = po.find("A cell that will go.", include_obsolete_entries=True)
    assert gone.obsolete and gone.msgstr == "一个将被删除的单元格。"
    # and a cell that comes back finds its translation
    again = tr.merge(ENGLISH, NAME, round_trip(po, tmp_path))
    assert tr.usable(again.find("A cell that will go."))


def test_the_chinese_notebook_is_the_english_one_with_translated_markdown():
    english = notebook(
        (
            "md",
            "title",
            "# Example\n\nSee [the chapter](../05_rpi_realtime.ipynb) and [the README](../../README.md).",
        ),
        ("code", "c1", "print(1)"),
        ("md", "later", "Not translated yet."),
    )
    po = translated(
        tr.merge(english, NAME, None),
        title="# 示例\n\n见[该章](../05_rpi_realtime.ipynb)与 [README](../../README.md)。",
    )
    nb = tr.build(english, NAME, po)
    markdown = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    # a notebook link leads to its Chinese edition (same relative path), any other file one folder up
    assert markdown[0] == "# 示例\n\n见[该章](../05_rpi_realtime.ipynb)与 [README](../../../README.md)。"
    assert "deep_dives/09_example.ipynb" in markdown[1] and "../../deep_dives/09_example.ipynb" in markdown[1]
    assert markdown[2] == "Not translated yet."  # no translation yet: the English, not an empty cell
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code == [c for c in english["cells"] if c["cell_type"] == "code"]
    assert nb["metadata"]["language"] == "zh-CN" and "language" not in english["metadata"]


def test_a_fuzzy_translation_is_not_used():
    po = translated(tr.merge(ENGLISH, NAME, None), gone="旧的译文")
    po.find("A cell that will go.").flags.append("fuzzy")
    nb = tr.build(ENGLISH, NAME, po)
    assert "A cell that will go." in ["".join(c["source"]) for c in nb["cells"]]


@pytest.mark.parametrize(
    "chinese, problem",
    [
        ("# 示例\n\n对 40 张图像运行 `make run`，见 <https://a.example/x.html>。", None),
        ("# 示例\n\n对 40 张图像运行 `make test`，见 https://a.example/x.html", "inline code"),
        ("# 示例\n\n对 40 张图像运行 `make run`。", "links"),
        ("# 示例\n\n对 4 张图像运行 `make run`，见 https://a.example/x.html", "numbers"),
        ("## 示例\n\n对 40 张图像运行 `make run`，见 https://a.example/x.html", "headings"),
    ],
)
def test_integrity_check(chinese, problem):
    english = "# Example\n\nRun `make run` on 40 images, see https://a.example/x.html."
    problems = tr.integrity_problems(english, chinese)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problems[0].startswith(problem)


def test_glossary_terms_are_translated_one_way(tmp_path):
    glossary = tmp_path / "glossary.md"
    glossary.write_text(
        "| English | 中文 | 不用 (avoid) | 说明 |\n|---|---|---|---|\n| inference | 推理 | 推断 | |\n"
    )
    terms = tr.glossary(glossary)
    english = "Fast inference on a Pi."
    assert tr.glossary_problems(english, "在 Pi 上快速推理。", terms) == []
    assert tr.glossary_problems(english, "在 Pi 上快速推断。", terms) == [
        "'inference' should read 推理",
        "推断 is not the glossary's word (use 推理)",
    ]
    assert tr.glossary_problems("See `inference()`.", "见 `inference()`。", terms) == []  # code is not prose


def test_the_english_again_is_not_a_translation():
    assert not tr.is_translation("## Summary", "## Summary")
    assert not tr.is_translation("## Summary", "## Summary ")  # nor any text without Chinese
    assert tr.is_translation("## Summary", "## 小结")


def test_the_real_glossary_parses():
    terms = tr.glossary()
    assert len(terms) >= 20 and any(t.chinese == "推理" and "推断" in t.avoid for t in terms)


# --- the edition in the repository -------------------------------------------------------------------

ENGLISH_NOTEBOOKS = all_notebooks()


@pytest.mark.parametrize("english", ENGLISH_NOTEBOOKS, ids=notebook_name)
def test_catalog_is_complete_and_sound(english):
    state = tr.check(english)
    assert state.untranslated == [], f"untranslated (make i18n, then translate): {state.untranslated}"
    assert state.fuzzy == [], f"fuzzy (the English changed; review the translation): {state.fuzzy}"
    assert state.broken == []


@pytest.mark.parametrize("english", ENGLISH_NOTEBOOKS, ids=notebook_name)
def test_chinese_notebook_is_current(english):
    chinese = tr.chinese_path(english)
    assert chinese.exists(), f"{chinese} is missing: make zh"
    stored = json.loads(chinese.read_text(encoding="utf-8"))
    assert stored == tr.current(english), f"{chinese.name} is out of date: make zh"
    # what the edition promises, said directly: the English code cells and their outputs, byte for byte
    code = [c for c in tr.read_notebook(english)["cells"] if c["cell_type"] == "code"]
    assert [c for c in stored["cells"] if c["cell_type"] == "code"] == code


def test_no_chinese_notebook_without_an_english_one():
    on_disk = {p for p in tr.ZH_DIR.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts}
    assert on_disk == {tr.chinese_path(p) for p in ENGLISH_NOTEBOOKS}
    catalogs = {tr.catalog_path(p) for p in ENGLISH_NOTEBOOKS}
    assert set(tr.CATALOG_DIR.rglob("*.po")) == catalogs


def test_the_chinese_folder_mirrors_the_english_one():
    assert tr.chinese_path(NOTEBOOKS_DIR / "deep_dives" / "05_executorch.ipynb") == (
        NOTEBOOKS_DIR / "zh" / "deep_dives" / "05_executorch.ipynb"
    )
