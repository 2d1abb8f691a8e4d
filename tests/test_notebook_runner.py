"""The notebook runner's summary: a row per notebook with its time and peak memory."""

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from ptdeploy import notebooks


@pytest.mark.integration  # a real Jupyter kernel runs the notebook
def test_run_reports_the_peak_memory_of_the_kernel(tmp_path):
    nb = new_notebook(
        cells=[
            new_code_cell(
                # held for a second: the sampler looks every 0.2 s, and a busy machine can delay it
                "import time\nblock = bytearray(300 * 2**20)\nblock[::4096] = b'x' * 76800\ntime.sleep(1)"
            )
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    path = tmp_path / "00_memory.ipynb"
    nbformat.write(nb, path)
    result, executed = notebooks.execute(path)
    assert result.ok, result.error
    assert result.peak_mib > 300  # the kernel held 300 MiB of touched memory
    assert executed.cells[0].execution_count == 1


def test_summary_table_has_a_peak_memory_column(capsys):
    notebooks.print_table([notebooks.RunResult("01_x.ipynb", True, 12.34, "", 1234.5)])
    out = capsys.readouterr().out
    assert "peak memory (MiB)" in out and "1234" in out and "12.3" in out
