"""Show, in a notebook, the exact source of code that lives in this package or on disk.

A chapter teaches code the reader can see. When that code also has to be imported by tests, scripts
or the server, it lives here in ``src/`` once, and the notebook displays it with these helpers: what
the reader sees is what runs.
"""

import inspect
from pathlib import Path

from IPython.display import Code, Markdown

# File suffixes that IPython's Code (Pygments) should highlight in a language other than Python.
_LANGUAGES = {
    ".cpp": "cpp",
    ".h": "cpp",
    ".txt": "cmake",
    ".cmake": "cmake",
    ".conf": "nginx",
    ".yaml": "yaml",
}


def show_source(obj, markdown: bool = False) -> Code | Markdown:
    """The source of a function, class or module, syntax-highlighted, with where it is defined.

    ``markdown=True`` stores it as a Markdown code block: a few hundred bytes of overhead instead of
    IPython's HTML (with its style sheet) and LaTeX copies, for notebooks with many listings.
    """
    obj = inspect.unwrap(obj)  # a decorated function: its own file, not the decorator's
    source = inspect.getsource(obj)
    where = inspect.getsourcefile(obj)
    name = getattr(obj, "__qualname__", getattr(obj, "__name__", ""))
    rel = _relative(Path(where)) if where else "?"
    text = f"# {name}, defined in {rel}\n{source}"
    return _fenced(text, "python") if markdown else Code(text, language="python")


def show_file(
    path,
    start: int | None = None,
    stop: int | None = None,
    language: str | None = None,
    markdown: bool = False,
) -> Code | Markdown:
    """A text file (or its lines ``start``..``stop``, 1-based, inclusive), syntax-highlighted."""
    path = Path(path)
    lines = path.read_text().splitlines()
    if start or stop:
        lines = lines[(start or 1) - 1 : stop]
    if language is None:
        language = "cmake" if path.name == "CMakeLists.txt" else _LANGUAGES.get(path.suffix, "text")
    text = "\n".join(lines)
    return _fenced(text, language) if markdown else Code(text, language=language)


def _fenced(text: str, language: str) -> Markdown:
    fence = "````" if "```" in text else "```"
    return Markdown(f"{fence}{language}\n{text.rstrip()}\n{fence}")


def _relative(path: Path) -> str:
    """Where a file is, the same on every machine: inside an installed package, or inside this repo."""
    import site

    from ptdeploy.paths import REPO_ROOT

    path = path.resolve()
    for base in [*site.getsitepackages(), site.getusersitepackages()]:
        try:
            return str(path.relative_to(Path(base).resolve()))  # e.g. hta/common/trace_parser.py
        except ValueError:
            pass
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return path.name
