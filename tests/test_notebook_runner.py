"""The notebook runner's summary: a row per notebook with its time and peak memory."""

from ptdeploy import notebooks


def test_summary_table_has_a_peak_memory_column(capsys):
    notebooks.print_table([notebooks.RunResult("01_x.ipynb", True, 12.34, "", 1234.5)])
    out = capsys.readouterr().out
    assert "peak memory (MiB)" in out and "1234" in out and "12.3" in out
