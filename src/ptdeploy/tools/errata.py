"""ERRATA.md: where the tutorials, as written, no longer work or are wrong, built from the notebooks.

A code cell that shows one carries it in its metadata::

    "erratum": {"kind": "removed API", "says": "what the tutorial says or does",
                "today": "what happens today", "evidence": "text of the cell's stored output"}

The page quotes each cell's output lines that hold ``evidence``, so an erratum stands on what the
notebook's run printed (and nbval checks, unless the cell is tagged ``nbval-ignore-output``). The tests
check that every evidence is in its cell's output and that ERRATA.md is what this module builds;
``make errata`` (and ``make refresh``) rewrites it.
"""

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ptdeploy.paths import REPO_ROOT

PAGE = REPO_ROOT / "ERRATA.md"
KINDS = (
    "removed API",
    "renamed",
    "deprecated",
    "changed default",
    "changed output",
    "build tools",
    "wrong in the tutorial",
)
TUTORIAL_LINK = re.compile(r"\[\*?([^\]]+?)\*?\]\((https://pytorch\.org/tutorials/[^)]+)\)")
UNCHECKED = "nbval-ignore-output"


@dataclass
class Erratum:
    notebook: str  # relative to the repository
    cell_id: str
    kind: str
    says: str
    today: str
    evidence: str
    shown: list[str]  # the output lines that hold the evidence
    checked: bool  # nbval compares the cell's output


def cell_output(cell: dict) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append("".join(output.get("text", "")))
        parts.append("".join(output.get("data", {}).get("text/plain", "")))
    return "".join(parts)


def errata_in(path: Path, root: Path = REPO_ROOT) -> list[Erratum]:
    """The errata a notebook's cells carry; a missing evidence or an unknown kind is an error."""
    found = []
    for cell in json.loads(path.read_text())["cells"]:
        meta = cell.get("metadata", {}).get("erratum")
        if not meta:
            continue
        where = f"{path.relative_to(root)}, cell {cell.get('id')}"
        if cell["cell_type"] != "code":
            raise ValueError(f"{where}: an erratum belongs on the code cell that shows it")
        if meta.get("kind") not in KINDS:
            raise ValueError(f"{where}: kind {meta.get('kind')!r} is not one of {KINDS}")
        output = cell_output(cell)
        shown = [line.strip() for line in output.splitlines() if meta["evidence"] in line]
        if not shown:
            raise ValueError(f"{where}: its output does not hold the evidence {meta['evidence']!r}")
        checked = UNCHECKED not in cell.get("metadata", {}).get("tags", [])
        found.append(
            Erratum(
                str(path.relative_to(root)), cell["id"], meta["kind"], meta["says"], meta["today"],
                meta["evidence"], shown, checked,
            )
        )  # fmt: skip
    return found


def tutorial_of(chapter: Path) -> tuple[str, str]:
    """(title, address) of the tutorial a chapter mirrors: the first pytorch.org/tutorials link in its
    first cell."""
    first = "".join(json.loads(chapter.read_text())["cells"][0]["source"])
    match = TUTORIAL_LINK.search(first)
    if not match:
        raise ValueError(f"{chapter.name}: no tutorial link in its first cell")
    return match.group(1).strip("*"), match.group(2)


def chapters(root: Path = REPO_ROOT) -> list[Path]:
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def collect(root: Path = REPO_ROOT) -> dict[Path, list[Erratum]]:
    """Chapter -> the errata of the chapter and of its deep dives (same two-digit prefix)."""
    by_chapter = {}
    for chapter in chapters(root):
        prefix = chapter.name[:3]
        notebooks = [chapter, *sorted((root / "notebooks" / "deep_dives").glob(prefix + "*.ipynb"))]
        by_chapter[chapter] = [e for nb in notebooks for e in errata_in(nb, root)]
    return by_chapter


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(root: Path = REPO_ROOT) -> str:
    by_chapter = collect(root)
    total = sum(len(errata) for errata in by_chapter.values())
    lines = [
        "# Errata: the tutorials as written, on today's libraries",
        "",
        f"{total} {'place' if total == 1 else 'places'} where a tutorial of PyTorch's deployment chapter",
        "no longer works as written, or is wrong, each shown by a notebook cell. Its output, quoted here,",
        "comes from the notebook's last run and is checked by `pytest --nbval` unless marked *not compared*",
        "(an output that depends on the machine). Built by `make errata` (`python -m ptdeploy.tools.errata`)",
        "from the cells' `erratum` metadata; do not edit by hand.",
    ]
    for chapter, errata in by_chapter.items():
        if not errata:
            continue
        title, address = tutorial_of(chapter)
        lines += ["", f"## {chapter.name[:2]} · [{title}]({address})", ""]
        lines += ["| the tutorial | today | kind | shown in |", "|---|---|---|---|"]
        for e in errata:
            quote = "<br>".join(f"`{line}`" if "`" not in line else line for line in e.shown[:2])
            note = "" if e.checked else " (not compared)"
            place = f"[`{Path(e.notebook).name}`]({e.notebook}), cell `{e.cell_id}`{note}: {quote}"
            lines.append(f"| {cell(e.says)} | {cell(e.today)} | {e.kind} | {cell(place)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    text = render()
    if argv is None:
        argv = sys.argv[1:]
    if argv == ["--check"]:
        if PAGE.read_text() != text:
            sys.exit("ERRATA.md is out of date: run make errata")
        return
    PAGE.write_text(text)
    print(f"wrote {PAGE.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
