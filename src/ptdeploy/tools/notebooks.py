"""Run notebooks headless and check that their stored outputs come from one in-order run.

``python -m ptdeploy.tools.notebooks run``      execute every notebook (chapters, then deep dives) into
                                                outputs/executed/
``python -m ptdeploy.tools.notebooks refresh``  execute in place, refreshing the stored outputs
``python -m ptdeploy.tools.notebooks check``    report notebooks whose stored outputs are stale or partial
"""

import argparse
import json
import re
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ptdeploy.paths import DEEP_DIVES_DIR, NOTEBOOKS_DIR, REPO_ROOT, output_dir
from ptdeploy.resources import small_machine
from ptdeploy.text import strip_colours
from ptdeploy.tools.peakmem import PeakMemory

if TYPE_CHECKING:
    import nbformat  # imported where used: it takes seconds (see read_plain)

CELL_TIMEOUT_S = 1200
SKIP_LIST = NOTEBOOKS_DIR / "skipped.toml"
# The conditions a skip list entry may name, and how to tell whether this machine meets them.
CONDITIONS = {"small machine": small_machine}
# nbclient skips cells with this tag; the runner gives it to this machine's skipped cells for one run.
SKIPPED_HERE = "ptdeploy-skipped-on-this-machine"
HEADING = re.compile(r"^#{1,6}\s+(.+)$", re.M)


def chapters() -> list[Path]:
    """The seven chapters, one per tutorial: notebooks/NN_*.ipynb."""
    return sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def deep_dives() -> list[Path]:
    """One topic of a chapter in depth: notebooks/deep_dives/NN_*.ipynb, NN being the chapter's number."""
    return sorted(DEEP_DIVES_DIR.glob("[0-9][0-9]_*.ipynb"))


def all_notebooks() -> list[Path]:
    return chapters() + deep_dives()


def notebook_name(path: Path) -> str:
    """A notebook's name as the skip list and the run summary give it: its path under notebooks/."""
    try:
        return path.resolve().relative_to(NOTEBOOKS_DIR).as_posix()
    except ValueError:
        return path.name


@dataclass(frozen=True)
class Skip:
    notebook: str
    tag: str
    when: str
    reason: str


def skip_list(path: Path = SKIP_LIST) -> list[Skip]:
    """The sections some machines cannot run (notebooks/skipped.toml)."""
    entries = [Skip(**entry) for entry in tomllib.loads(path.read_text())["skip"]]
    for entry in entries:
        if entry.when not in CONDITIONS:
            known = ", ".join(CONDITIONS)
            raise ValueError(f"{path.name}: unknown condition {entry.when!r} (known: {known})")
    return entries


def skipped_here(notebook: str, entries: list[Skip] | None = None) -> dict[str, Skip]:
    """tag -> entry, for this notebook's sections that this machine skips."""
    entries = skip_list() if entries is None else entries
    return {e.tag: e for e in entries if e.notebook == notebook and CONDITIONS[e.when]()}


def read_plain(path: Path) -> dict:
    """A notebook as plain JSON, each cell's source one string. Quicker than ``nbformat.read``, which
    imports and runs a JSON-schema validator (seconds): for checks that only look at cells."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if isinstance(cell["source"], list):
            cell["source"] = "".join(cell["source"])
    return nb


def stale_output_problems(nb: dict) -> list[str]:
    """Why a notebook's stored outputs cannot come from one complete, in-order run (empty if fine).
    ``nb`` is an nbformat notebook or the plain JSON of ``read_plain``."""
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and c["source"].strip()]
    counts = [c.get("execution_count") for c in code]
    problems = []
    unexecuted = sum(n is None for n in counts)
    if unexecuted:
        problems.append(f"{unexecuted} of {len(code)} code cells were never executed")
    elif counts != list(range(1, len(code) + 1)):
        problems.append(f"execution counts are {counts}, not 1..{len(code)} in order")
    errors = [i for i, c in enumerate(code) for o in c.get("outputs", []) if o["output_type"] == "error"]
    if errors:
        problems.append(f"stored error output in code cell(s) {errors}")
    return problems


def section_headings(cells: list) -> list[str]:
    """For each cell, the heading of the section it is in (the last Markdown heading above it)."""
    heading, headings = "", []
    for cell in cells:
        if cell["cell_type"] == "markdown":
            found = HEADING.findall(cell["source"])
            heading = found[-1].strip() if found else heading
        headings.append(heading)
    return headings


class Progress:
    """Where a notebook's run is: code cells done of all, and the section's heading.

    On a terminal, one line redrawn in place (tqdm); in a log (CI, a pipe), one line per section.
    """

    def __init__(self, name: str, cells: list, stream=None):
        self.name = name
        self.stream = stream or sys.stdout
        self.headings = section_headings(cells)
        # the cells nbclient runs: code with something in it (its hooks see Markdown cells too)
        self.code = {i for i, c in enumerate(cells) if c["cell_type"] == "code" and c["source"].strip()}
        self.done = 0
        self.section = None
        self.bar = None
        if self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=len(self.code), desc=name, unit="cell", leave=False, file=self.stream)

    def on_cell_start(self, cell, cell_index: int) -> None:
        if cell_index not in self.code:
            return
        heading = self.headings[cell_index]
        if self.bar is not None:
            self.bar.set_postfix_str(heading[:50], refresh=True)
        elif heading != self.section:
            print(f"    cell {self.done + 1}/{len(self.code)}: {heading}", file=self.stream, flush=True)
        self.section = heading

    def on_cell_executed(self, cell, cell_index: int, execute_reply=None) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass
class RunResult:
    name: str
    ok: bool
    seconds: float
    error: str = ""
    peak_mib: float = 0.0  # peak summed PSS of the kernel and every process it started (sampled)
    kernel_log: Path | None = None  # what the kernel's libraries printed to its stderr, when anything
    skipped: list[str] = field(default_factory=list)  # why cells were skipped on this machine


def execute(path: Path, progress: bool = True) -> "tuple[RunResult, nbformat.NotebookNode]":
    """Execute a notebook top to bottom in a fresh kernel, with its own folder as cwd.

    Libraries inside the kernel (torch's C++ warnings, Kineto) write to the kernel's own stderr as well
    as to the notebook: that copy goes to a log file under outputs/executed/, not onto the terminal.
    """
    import nbformat
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    name = notebook_name(path)
    skips = skipped_here(name)
    skipped = []
    for tag, entry in skips.items():
        cells = [c for c in nb.cells if tag in c.metadata.get("tags", [])]
        for cell in cells:
            cell.metadata["tags"].append(SKIPPED_HERE)
        skipped.append(f"{len(cells)} cells tagged {tag} on a {entry.when}: {entry.reason}")
    start = time.perf_counter()
    error = ""
    kernel_log = output_dir("executed") / f"{path.stem}.kernel-stderr.log"
    tracker = Progress(name, nb.cells) if progress else None
    with (
        tempfile.TemporaryDirectory(prefix="ptdeploy-kernel-") as sockets,
        open(kernel_log, "w") as kernel_stderr,
    ):
        # Talk to the kernel over private Unix sockets rather than unencrypted localhost TCP.
        kernel = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=f"{sockets}/kernel")
        client = NotebookClient(
            nb,
            km=kernel,
            timeout=CELL_TIMEOUT_S,
            record_timing=False,  # keep timestamps out of the committed notebooks
            resources={"metadata": {"path": str(path.parent)}},
        )
        client.skip_cells_with_tag = SKIPPED_HERE
        if tracker is not None:
            client.on_cell_start = tracker.on_cell_start
            client.on_cell_executed = tracker.on_cell_executed
        with PeakMemory() as memory:
            try:
                # cleanup_kc: nbclient shuts down only kernels of managers it created itself; without it
                # the kernel outlives the run (and says "Parent appears to have exited" when Python ends).
                client.execute(cleanup_kc=True, stderr=kernel_stderr)
            except CellExecutionError as exc:
                # the traceback's last line, without the terminal colours IPython gives it
                text = strip_colours(str(exc)).strip()
                error = text.splitlines()[-1] if text else type(exc).__name__
            except Exception as exc:  # a dead kernel or a timeout: report it, run the next notebook
                error = f"{type(exc).__name__}: {exc}"
            finally:
                if tracker is not None:
                    tracker.close()
    seconds = time.perf_counter() - start
    for cell in nb.cells:
        if SKIPPED_HERE in cell.metadata.get("tags", []):
            cell.metadata["tags"].remove(SKIPPED_HERE)
    if kernel_log.stat().st_size == 0:
        kernel_log.unlink()
        kernel_log = None
    return RunResult(name, not error, seconds, error, memory.peak_mib, kernel_log, skipped), nb


def print_table(results: list[RunResult]) -> None:
    width = max(len(r.name) for r in results)
    print(f"\n{'notebook':<{width}}  result  seconds  peak memory (MiB)")
    for r in results:
        print(f"{r.name:<{width}}  {'ok' if r.ok else 'FAILED':<6}  {r.seconds:7.1f}  {r.peak_mib:17.0f}")
    failed = [r for r in results if not r.ok]
    print(f"{len(results) - len(failed)} ok, {len(failed)} failed")
    logs = [r.kernel_log for r in results if r.kernel_log]
    if logs:
        where = logs[0].parent.relative_to(REPO_ROOT)
        print(f"What libraries printed to the kernels' stderr (also in the notebooks' outputs): {where}/")
        print("  " + ", ".join(log.name for log in logs))
    for r in failed:
        print(f"  {r.name}: {r.error}")
    for r in results:
        for why in r.skipped:
            print(f"  skipped in {r.name}: {why}")


def main(argv: list[str] | None = None) -> int:
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("command", choices=["run", "refresh", "check"])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook in notebooks/")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or all_notebooks()
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")

    if args.command == "check":
        bad = 0
        for path in paths:
            for problem in stale_output_problems(nbformat.read(path, as_version=4)):
                print(f"{notebook_name(path)}: {problem}")
                bad += 1
        return 1 if bad else 0

    results = []
    for i, path in enumerate(paths, 1):
        name = notebook_name(path)
        print(f"[{i}/{len(paths)}] {name} ...", flush=True)
        r, executed = execute(path)
        results.append(r)
        # A failed refresh never overwrites the good stored outputs: it goes to outputs/ instead. Nor does
        # a run that skipped cells here: stored outputs come from a machine that runs every section.
        in_place = args.command == "refresh" and r.ok and not r.skipped
        if args.command == "refresh" and r.skipped:
            print(f"{name}: not refreshed in place, cells were skipped on this machine", flush=True)
        dest = path if in_place else output_dir("executed", *Path(name).parent.parts) / path.name
        nbformat.write(executed, dest)
        status = "ok" if r.ok else "FAILED"
        print(f"[{i}/{len(paths)}] {name} {status} in {r.seconds:.1f} s -> {dest}", flush=True)
    print_table(results)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
