"""How long a notebook takes to read, and whether a chapter keeps to its budget.

A chapter is what a learner came for: the tutorial, today's way and a checked summary, read in about
half an hour. The estimate reads Markdown at 180 words a minute, code at 25 lines a minute and
outputs at 40 lines a minute (a figure counts as 10 lines). ``python -m ptdeploy.tools.reading``
prints it for every notebook; a unit test holds the chapters to the budget.
"""

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

WORDS_PER_MINUTE = 180
CODE_LINES_PER_MINUTE = 25
OUTPUT_LINES_PER_MINUTE = 40
FIGURE_LINES = 10
IMAGES = ("image/png", "image/jpeg", "image/svg+xml")
# A chapter's budget. Deep dives have none: they are where the length goes.
MAX_WORDS = 2000
MAX_CELLS = 60
MAX_MINUTES = 30


@dataclass(frozen=True)
class Reading:
    words: int  # Markdown words
    cells: int
    code_lines: int
    output_lines: int

    @property
    def minutes(self) -> float:
        return (
            self.words / WORDS_PER_MINUTE
            + self.code_lines / CODE_LINES_PER_MINUTE
            + self.output_lines / OUTPUT_LINES_PER_MINUTE
        )

    def over_budget(self) -> list[str]:
        """What of a chapter's budget this reading exceeds (empty if none)."""
        over = []
        if self.words > MAX_WORDS:
            over.append(f"{self.words} Markdown words (budget {MAX_WORDS})")
        if self.cells > MAX_CELLS:
            over.append(f"{self.cells} cells (budget {MAX_CELLS})")
        if self.minutes > MAX_MINUTES:
            over.append(f"{self.minutes:.0f} minutes to read (budget {MAX_MINUTES})")
        return over


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else value


def output_lines(output: dict) -> int:
    """The lines a reader scans in one output: text as printed, a figure as FIGURE_LINES."""
    kind = output["output_type"]
    if kind == "stream":
        return len(_text(output["text"]).splitlines())
    if kind == "error":
        return len(output.get("traceback", []))
    data = output.get("data", {})
    if any(k in data for k in IMAGES):
        return FIGURE_LINES
    for key in ("text/markdown", "text/plain"):
        if key in data:
            return len(_text(data[key]).splitlines())
    return 0


def reading(nb: dict) -> Reading:
    """``nb``: a notebook's JSON (nbformat or ``notebooks.read_plain``)."""
    words = code = out = 0
    for cell in nb["cells"]:
        source = _text(cell["source"])
        if cell["cell_type"] == "markdown":
            words += len(source.split())
        elif cell["cell_type"] == "code":
            code += len([line for line in source.splitlines() if line.strip()])
            out += sum(output_lines(o) for o in cell.get("outputs", []))
    return Reading(words, len(nb["cells"]), code, out)


def main(argv: list[str] | None = None) -> int:
    from ptdeploy.tools.notebooks import all_notebooks, chapters, notebook_name, read_plain

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook")
    paths = [p.resolve() for p in parser.parse_args(argv).notebooks] or all_notebooks()
    chapter_paths = set(chapters())
    names = [notebook_name(p) for p in paths]
    width = max(len(n) for n in names)
    print(f"{'notebook':<{width}}  words  cells  code lines  output lines  minutes  budget")
    over = 0
    for path, name in zip(paths, names):
        r = reading(read_plain(path))
        problems = r.over_budget() if path in chapter_paths else []
        over += bool(problems)
        verdict = "over: " + "; ".join(problems) if problems else ("ok" if path in chapter_paths else "-")
        print(
            f"{name:<{width}}  {r.words:5}  {r.cells:5}  {r.code_lines:10}  {r.output_lines:12}"
            f"  {r.minutes:7.0f}  {verdict}"
        )
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
