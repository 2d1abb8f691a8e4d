"""Text fit to store in a notebook: no colour codes, no machine paths."""

import sysconfig

from ptdeploy.paths import REPO_ROOT
from ptdeploy.text import format_warning, short_path, strip_colours


def test_colours_are_stripped():
    assert strip_colours("\x1b[31mred\x1b[0m") == "red"


def test_files_are_named_without_this_machines_folders():
    packages = sysconfig.get_path("purelib")
    assert short_path(f"{packages}/torch/jit/_trace.py") == "torch/jit/_trace.py"
    assert short_path(str(REPO_ROOT / "src/ptdeploy/lessons/quantize.py")) == "ptdeploy/lessons/quantize.py"
    assert short_path(str(REPO_ROOT / "scripts/rpi_infer.py")) == "scripts/rpi_infer.py"
    assert short_path("/tmp/ipykernel_4242/123456.py") == "this cell"
    assert short_path("/somewhere/else/file.py") == "file.py"


def test_a_warning_is_one_line_with_a_stable_place():
    packages = sysconfig.get_path("purelib")
    line = format_warning("old", FutureWarning, f"{packages}/torch/jit/_trace.py", 1006)
    # no line number: a library's line numbers move between releases
    assert line == "FutureWarning: old (torch/jit/_trace.py)\n"
    cell = format_warning("careful", UserWarning, "/tmp/ipykernel_7/99.py", 3)
    assert cell == "UserWarning: careful (this cell, line 3)\n"
