"""The notebook runner's summary: a row per notebook with its time and peak memory."""

import pytest

from ptdeploy.tools import notebooks


def test_summary_table_has_a_peak_memory_column(capsys):
    notebooks.print_table([notebooks.RunResult("01_x.ipynb", True, 12.34, "", 1234.5)])
    out = capsys.readouterr().out
    assert "peak memory (MiB)" in out and "1234" in out and "12.3" in out


CELLS = [
    {"cell_type": "markdown", "source": "# Title\nintro"},
    {"cell_type": "code", "source": "a = 1"},
    {"cell_type": "markdown", "source": "Some text, no heading"},
    {"cell_type": "code", "source": "b = 2"},
    {"cell_type": "markdown", "source": "## Second part"},
    {"cell_type": "code", "source": "c = 3"},
    {"cell_type": "markdown", "source": "## Closing words"},
]


def test_each_cell_knows_the_heading_of_its_section():
    headings = notebooks.section_headings(CELLS)
    assert headings == ["Title"] * 4 + ["Second part"] * 2 + ["Closing words"]


def test_progress_in_a_log_is_one_line_per_section(tmp_path):
    log = tmp_path / "log.txt"
    with open(log, "w") as stream:
        progress = notebooks.Progress("01_x.ipynb", CELLS, stream=stream)
        for i, cell in enumerate(CELLS):  # nbclient calls the start hook for every cell
            progress.on_cell_start(cell, i)
            if cell["cell_type"] == "code":
                progress.on_cell_executed(cell, i)
        progress.close()
    assert log.read_text().splitlines() == ["    cell 1/3: Title", "    cell 3/3: Second part"]


def test_the_skip_list_names_known_conditions_and_tags_that_cells_carry():
    entries = notebooks.skip_list()
    assert entries, "notebooks/skipped.toml lists no section"
    for entry in entries:
        nb = notebooks.read_plain(notebooks.NOTEBOOKS_DIR / entry.notebook)
        tagged = [c for c in nb["cells"] if entry.tag in c.get("metadata", {}).get("tags", [])]
        assert any(c["cell_type"] == "code" for c in tagged), (
            f"no code cell of {entry.notebook} has {entry.tag}"
        )
        assert len(entry.reason.split()) >= 5, f"{entry.tag}: say why"


def test_an_unknown_condition_is_refused(tmp_path):
    path = tmp_path / "skipped.toml"
    path.write_text('[[skip]]\nnotebook = "x.ipynb"\ntag = "t"\nwhen = "on Tuesdays"\nreason = "r"\n')
    with pytest.raises(ValueError, match="unknown condition 'on Tuesdays'"):
        notebooks.skip_list(path)


def test_a_section_is_skipped_only_where_its_condition_holds(monkeypatch):
    entry = notebooks.Skip("01_x.ipynb", "needs-big", "small machine", "too big for a small machine")
    monkeypatch.setitem(notebooks.CONDITIONS, "small machine", lambda: False)
    assert notebooks.skipped_here("01_x.ipynb", [entry]) == {}
    monkeypatch.setitem(notebooks.CONDITIONS, "small machine", lambda: True)
    assert notebooks.skipped_here("01_x.ipynb", [entry]) == {"needs-big": entry}
    assert notebooks.skipped_here("02_y.ipynb", [entry]) == {}


def test_the_summary_says_what_was_skipped_and_where_kernel_messages_went(capsys, tmp_path):
    log = notebooks.REPO_ROOT / "outputs" / "executed" / "01_x.kernel-stderr.log"
    result = notebooks.RunResult("01_x.ipynb", True, 1.0, "", 10.0, log, ["2 cells tagged needs-big: why"])
    notebooks.print_table([result])
    out = capsys.readouterr().out
    assert "skipped in 01_x.ipynb: 2 cells tagged needs-big: why" in out
    assert "outputs/executed/" in out and "01_x.kernel-stderr.log" in out


def test_notebooks_are_named_by_their_path_under_notebooks():
    # the skip list and the run summary tell a deep dive from a chapter of the same number
    assert notebooks.notebook_name(notebooks.NOTEBOOKS_DIR / "01_x.ipynb") == "01_x.ipynb"
    assert notebooks.notebook_name(notebooks.DEEP_DIVES_DIR / "01_y.ipynb") == "deep_dives/01_y.ipynb"


def test_chapters_come_first_then_deep_dives():
    found = notebooks.all_notebooks()
    assert found[: len(notebooks.chapters())] == notebooks.chapters()
    assert all(p.parent == notebooks.DEEP_DIVES_DIR for p in found[len(notebooks.chapters()) :])
