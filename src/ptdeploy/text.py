"""Text from other programs, made fit to print or store: no terminal colour codes, no machine paths."""

import re
import site
import sys
import sysconfig
import warnings
from pathlib import Path

from ptdeploy.paths import REPO_ROOT

ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def strip_colours(text: str) -> str:
    """``text`` without the ANSI colour codes that IPython tracebacks and CMake's output carry."""
    return ANSI_COLOUR.sub("", text)


def _roots() -> list[Path]:
    """Folders a file is best named relative to, most specific first: installed packages, the repo."""
    found = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib"), *site.getsitepackages()}
    found.add(site.getusersitepackages())
    roots = [Path(p) for p in found if p] + [REPO_ROOT / "src", REPO_ROOT, Path(sys.prefix)]
    return sorted(roots, key=lambda p: len(p.parts), reverse=True)


def short_path(filename: str) -> str:
    """A file's name without this machine's folders: relative to the package folder it is installed in
    (``torch/jit/_trace.py``) or to the repository; "this cell" for code a Jupyter kernel runs from its
    temporary folder (``/tmp/ipykernel_<pid>/<hash>.py``)."""
    path = Path(filename)
    if path.parent.name.startswith("ipykernel_"):
        return "this cell"
    for root in _roots():
        if path.is_relative_to(root):
            return path.relative_to(root).as_posix()
    return path.name


def format_warning(message, category, filename, lineno, line=None) -> str:
    """One line per warning: what it says, then where, as ``short_path`` names it. A library's line
    number is left out: it changes with every release of the library, the message does not."""
    where = short_path(filename)
    if where == "this cell":
        where = f"this cell, line {lineno}"
    return f"{category.__name__}: {message} ({where})\n"


def tidy_warnings() -> None:
    """Print warnings as ``format_warning`` does, from now on in this process (a notebook's kernel)."""
    warnings.formatwarning = format_warning
