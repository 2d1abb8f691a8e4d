"""Run notebooks headless and check that their stored outputs come from one in-order run.

``python -m ptdeploy.notebooks run``      execute every notebook into outputs/executed/
``python -m ptdeploy.notebooks refresh``  execute in place, refreshing the stored outputs
``python -m ptdeploy.notebooks check``    report notebooks whose stored outputs are stale or partial
"""

import argparse
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ptdeploy.paths import NOTEBOOKS_DIR, output_dir
from ptdeploy.peakmem import PeakMemory

if TYPE_CHECKING:
    import nbformat  # imported where used: it takes seconds (see read_plain)

CELL_TIMEOUT_S = 1200
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def all_notebooks() -> list[Path]:
    return sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


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


@dataclass
class RunResult:
    name: str
    ok: bool
    seconds: float
    error: str = ""
    peak_mib: float = 0.0  # peak summed PSS of the kernel and every process it started (sampled)


def execute(path: Path) -> "tuple[RunResult, nbformat.NotebookNode]":
    """Execute a notebook top to bottom in a fresh kernel, with its own folder as cwd."""
    import nbformat
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    error = ""
    with tempfile.TemporaryDirectory(prefix="ptdeploy-kernel-") as sockets:
        # Talk to the kernel over private Unix sockets rather than unencrypted localhost TCP.
        kernel = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=f"{sockets}/kernel")
        client = NotebookClient(
            nb,
            km=kernel,
            timeout=CELL_TIMEOUT_S,
            record_timing=False,  # keep timestamps out of the committed notebooks
            resources={"metadata": {"path": str(path.parent)}},
        )
        with PeakMemory() as memory:
            try:
                # cleanup_kc: nbclient shuts down only kernels of managers it created itself; without it
                # the kernel outlives the run (and says "Parent appears to have exited" when Python ends).
                client.execute(cleanup_kc=True)
            except CellExecutionError as exc:
                # the traceback's last line, without the terminal colours IPython gives it
                text = ANSI_COLOUR.sub("", str(exc)).strip()
                error = text.splitlines()[-1] if text else type(exc).__name__
            except Exception as exc:  # a dead kernel or a timeout: report it, run the next notebook
                error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    return RunResult(path.name, not error, seconds, error, memory.peak_mib), nb


def print_table(results: list[RunResult]) -> None:
    width = max(len(r.name) for r in results)
    print(f"\n{'notebook':<{width}}  result  seconds  peak memory (MiB)")
    for r in results:
        print(f"{r.name:<{width}}  {'ok' if r.ok else 'FAILED':<6}  {r.seconds:7.1f}  {r.peak_mib:17.0f}")
    failed = [r for r in results if not r.ok]
    print(f"{len(results) - len(failed)} ok, {len(failed)} failed")
    for r in failed:
        print(f"  {r.name}: {r.error}")


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
                print(f"{path.name}: {problem}")
                bad += 1
        return 1 if bad else 0

    results = []
    for i, path in enumerate(paths, 1):
        print(f"[{i}/{len(paths)}] {path.name} ...", flush=True)
        r, executed = execute(path)
        results.append(r)
        # A failed refresh never overwrites the good stored outputs: it goes to outputs/ instead.
        dest = path if args.command == "refresh" and r.ok else output_dir("executed") / path.name
        nbformat.write(executed, dest)
        status = "ok" if r.ok else "FAILED"
        print(f"[{i}/{len(paths)}] {path.name} {status} in {r.seconds:.1f} s -> {dest}", flush=True)
    print_table(results)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
