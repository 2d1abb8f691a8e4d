"""Stored notebook outputs must come from one complete, in-order run of the current code."""

import nbformat
import pytest

from ptdeploy.notebooks import all_notebooks, execute, stale_output_problems

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
    assert names, "no notebooks found"
    assert set(names) <= set(EXPECTED)


@pytest.mark.parametrize("path", all_notebooks(), ids=lambda p: p.name)
def test_stored_outputs_are_complete_and_in_order(path):
    assert stale_output_problems(nbformat.read(path, as_version=4)) == []


NBVAL_MARKERS = {"NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP", "NBVAL_CHECK_OUTPUT", "NBVAL_RAISES_EXCEPTION"}
IGNORING_TAGS = {"nbval-ignore-output", "nbval-skip"}


@pytest.mark.parametrize("path", all_notebooks(), ids=lambda p: p.name)
def test_nbval_markers_are_exact(path):
    # nbval only honours a comment line that is exactly "# NBVAL_...": anything after it on the
    # same line silently turns the marker off. Put the reason on the next comment line.
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        for line in cell.source.splitlines():
            text = line.strip().lstrip("#").strip()
            if line.strip().startswith("#") and text.startswith("NBVAL_"):
                assert text in NBVAL_MARKERS, f"{path.name}: nbval ignores the marker {line.strip()!r}"


@pytest.mark.parametrize("path", all_notebooks(), ids=lambda p: p.name)
def test_ignored_cells_say_why(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        lines = [line.strip() for line in cell.source.splitlines()]
        ignored = any(
            line.lstrip("#").strip() in {"NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP"}
            for line in lines
            if line.startswith("#")
        )
        ignored |= bool(IGNORING_TAGS & set(cell.metadata.get("tags", [])))
        if ignored:
            reasons = [s for s in lines if s.startswith("#") and "NBVAL_" not in s and len(s.split()) >= 4]
            assert reasons, f"{path.name}: an unchecked cell needs a comment saying why:\n{cell.source[:200]}"


@pytest.fixture(scope="module")
def executed_fixture(tmp_path_factory):
    """A small notebook, executed for real by the same runner that refreshes the notebooks."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# fixture"),
        nbformat.v4.new_code_cell("x = 6 * 7"),
        nbformat.v4.new_code_cell("print(x)"),
        nbformat.v4.new_code_cell("x + 1"),
    ]
    path = tmp_path_factory.mktemp("nb") / "fixture.ipynb"
    nbformat.write(nb, path)
    result, executed = execute(path)
    assert result.ok, result.error
    return executed


@pytest.mark.integration  # a real Jupyter kernel runs the notebook
def test_a_complete_run_passes(executed_fixture):
    assert stale_output_problems(executed_fixture) == []
    assert executed_fixture.cells[2].outputs[0].text == "42\n"


@pytest.mark.integration  # a real Jupyter kernel runs the notebook
def test_a_partial_run_fails(executed_fixture):
    nb = nbformat.from_dict(executed_fixture)
    nb = nbformat.reads(nbformat.writes(nb), as_version=4)  # deep copy
    nb.cells[3].execution_count = None
    nb.cells[3].outputs = []
    assert stale_output_problems(nb) == ["1 of 3 code cells were never executed"]


@pytest.mark.integration  # a real Jupyter kernel runs the notebook
def test_an_out_of_order_run_fails(executed_fixture):
    nb = nbformat.reads(nbformat.writes(executed_fixture), as_version=4)
    nb.cells[1].execution_count, nb.cells[2].execution_count = 2, 1
    assert "not 1..3 in order" in stale_output_problems(nb)[0]


@pytest.mark.integration  # a real Jupyter kernel runs the notebook
def test_a_rerun_cell_fails(executed_fixture):
    nb = nbformat.reads(nbformat.writes(executed_fixture), as_version=4)
    nb.cells[3].execution_count = 7  # re-run by hand after the others
    assert stale_output_problems(nb)


@pytest.mark.integration  # a real Jupyter kernel runs the notebook
def test_a_stored_error_fails(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("1 / 0")]
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    result, executed = execute(path)
    assert not result.ok and "ZeroDivisionError" in result.error
    assert stale_output_problems(executed) == ["stored error output in code cell(s) [0]"]
