"""Show, in a notebook, the exact source of code that lives in this package or on disk.

A chapter teaches code the reader can see. When that code also has to be imported by tests, scripts
or the server, it lives here in ``src/`` once, and the notebook displays it with these helpers: what
the reader sees is what runs.
"""

import inspect
from pathlib import Path

from IPython.display import Code

# File suffixes that IPython's Code (Pygments) should highlight in a language other than Python.
_LANGUAGES = {
    ".cpp": "cpp",
    ".h": "cpp",
    ".txt": "cmake",
    ".cmake": "cmake",
    ".conf": "nginx",
    ".yaml": "yaml",
}


def show_source(obj) -> Code:
    """The source of a function, class or module, syntax-highlighted, with where it is defined."""
    source = inspect.getsource(obj)
    where = inspect.getsourcefile(obj)
    name = getattr(obj, "__qualname__", getattr(obj, "__name__", ""))
    rel = _relative(Path(where)) if where else "?"
    return Code(f"# {name}, defined in {rel}\n{source}", language="python")


def show_file(path, start: int | None = None, stop: int | None = None, language: str | None = None) -> Code:
    """A text file (or its lines ``start``..``stop``, 1-based, inclusive), syntax-highlighted."""
    path = Path(path)
    lines = path.read_text().splitlines()
    if start or stop:
        lines = lines[(start or 1) - 1 : stop]
    if language is None:
        language = "cmake" if path.name == "CMakeLists.txt" else _LANGUAGES.get(path.suffix, "text")
    return Code("\n".join(lines), language=language)


def _relative(path: Path) -> str:
    from ptdeploy.paths import REPO_ROOT

    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return path.name
