"""Drift watch: the notebooks' checks against the newest releases of the project's direct dependencies.

``make drift`` runs three steps (the Makefile's ``drift`` target):

1. ``python -m ptdeploy.tools.drift setup``: a separate environment, ``.venv-drift`` (never ``.venv``),
   with the newest release the resolver allows of every direct dependency, and this project installed in
   it. The packages of ``requirements.txt`` are resolved together, so a package another one caps waits
   for it; those of ``requirements-nodeps.txt`` (installed without their dependencies) take their newest
   release and constrain the others with what they declare about them (see ``resolve``). What was
   resolved, and what is newer but held back and by whom, goes to ``outputs/drift/resolution.json``.
   ``DRIFT_HOLD="torch executorch"`` keeps packages at their pins.
2. nbval over every notebook in that environment, under the portable profile (one core, no AVX-512),
   with ``-vv`` (a changed line is shown whole) and a JUnit XML file of the results. The C++ builds start
   fresh before and after, so that chapter 03 links the new libtorch and, afterwards, .venv's again.
3. ``python -m ptdeploy.tools.drift report``: ``data/drift/DATE.json`` and ``DATE.md``: every package
   whose version differs from its pin; per notebook the cells that passed, whose checked output changed
   (with the lines that differ) and that raised (with the exception's last line), each tagged where the
   kind can be told (removed API, deprecation now an error, changed numbers, lines added or gone,
   versions printed); and a summary on the terminal.

It downloads gigabytes, so it is not part of ``make test``; its code is (tests/unit/test_drift.py).
pip is run without this machine's pip configuration (``PIP_CONFIG_FILE=/dev/null``): a machine may cap
versions there (this one does, for the releases it keeps on disk), and the point is the newest releases.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from ptdeploy.paths import REPO_ROOT
from ptdeploy.tools import provenance

VENV = REPO_ROOT / ".venv-drift"
WORK = REPO_ROOT / "outputs" / "drift"
RESOLUTION = WORK / "resolution.json"
JUNIT = WORK / "junit.xml"
REPORTS = REPO_ROOT / "data" / "drift"
REQUIREMENTS = {"requirements.txt": False, "requirements-nodeps.txt": True}  # file -> installed --no-deps
DIFF_LINES = 9  # of a changed output, in the report
ANSI = re.compile(r"(?:\x1b|#x1B)\[[0-9;]*m")  # nbval colours its messages; XML keeps ESC as "#x1B"


# --- step 1: resolve and install ---------------------------------------------------------------------


@dataclass
class Pin:
    name: str  # canonical: lower case, dashes
    requirement: Requirement  # as written, e.g. ray[serve]==2.60.0
    no_deps: bool

    @property
    def version(self) -> str:
        return next(iter(self.requirement.specifier)).version

    def unpinned(self) -> str:
        extras = f"[{','.join(sorted(self.requirement.extras))}]" if self.requirement.extras else ""
        return self.requirement.name + extras


def read_pins(root: Path = REPO_ROOT) -> list[Pin]:
    """Every direct dependency and its pin, from the requirement files."""
    pins = []
    for file, no_deps in REQUIREMENTS.items():
        for line in (root / file).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line:
                requirement = Requirement(line)
                pins.append(Pin(canonicalize_name(requirement.name), requirement, no_deps))
    return pins


def pip(python: Path, *args: str, capture: bool = False) -> subprocess.CompletedProcess:
    """pip of ``python``, without this machine's pip configuration files (see the module's docstring)."""
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PIP_CONSTRAINT", None)
    return subprocess.run(
        [str(python), "-m", "pip", *args], env=env, check=True, text=True, capture_output=capture
    )


def dry_run(python: Path, requirements: list[str], no_deps: bool = False) -> list[dict]:
    """What pip would install for ``requirements`` in an empty environment: the report's items."""
    args = ["install", "--dry-run", "--ignore-installed", "--quiet", "--report", "-", *requirements]
    if no_deps:
        args.insert(1, "--no-deps")
    return json.loads(pip(python, *args, capture=True).stdout)["install"]


def held_back_by(name: str, newest: str, items: list[dict]) -> list[str]:
    """Which resolved packages rule out ``newest`` of ``name``: "executorch 1.5.1 requires torch<2.15"."""
    reasons = []
    for item in items:
        for line in item["metadata"].get("requires_dist") or []:
            requirement = Requirement(line)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue  # an optional extra, or another platform's
            if canonicalize_name(requirement.name) == name and not requirement.specifier.contains(
                newest, prereleases=True
            ):
                reasons.append(
                    f"{item['metadata']['name']} {item['metadata']['version']} requires {requirement}"
                )
    return reasons


def resolve(python: Path, pins: list[Pin], hold: set[str]) -> list[dict]:
    """For every pin: the newest release on the index, and the version to run.

    The packages installed with their dependencies are resolved together, each asking for its newest
    release. A package installed ``--no-deps`` (requirements-nodeps.txt) takes its newest release, and
    what it declares about the other direct dependencies (executorch: torchao<0.19) constrains that
    resolution: what it declares about anything else, the project does not install. ``hold``: these stay
    at their pins."""
    print("[drift] asking the index for the newest release of each direct dependency", flush=True)
    newest_items = dry_run(python, [p.unpinned() for p in pins], no_deps=True)
    newest = {canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"] for i in newest_items}
    direct = {p.name for p in pins}
    chosen = {p.name: p.version if p.name in hold else newest[p.name] for p in pins if p.no_deps}
    # what the --no-deps packages, at the versions chosen, say about the direct dependencies
    constraints, no_deps_items = [], []
    for item in newest_items:
        name = canonicalize_name(item["metadata"]["name"])
        if name in chosen and chosen[name] == item["metadata"]["version"]:
            no_deps_items.append(item)
            for line in item["metadata"].get("requires_dist") or []:
                requirement = Requirement(line)
                applies = not requirement.marker or requirement.marker.evaluate({"extra": ""})
                if applies and canonicalize_name(requirement.name) in direct and requirement.specifier:
                    constraints.append(f"{requirement.name}{requirement.specifier}")
    wanted = [str(p.requirement) if p.name in hold else p.unpinned() for p in pins if not p.no_deps]
    print(f"[drift] resolving {len(wanted)} of them together, with {len(constraints)} constraint(s) "
          f"from the packages installed without their dependencies", flush=True)  # fmt: skip
    items = dry_run(python, wanted + constraints)
    resolved = {canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"] for i in items}
    resolved.update(chosen)
    rows = []
    for p in pins:
        row = {"name": p.name, "pinned": p.version, "newest": newest[p.name], "resolved": resolved[p.name]}
        if p.name in hold:
            row["held_back_by"] = ["held at the pin (DRIFT_HOLD)"]
        elif Version(row["resolved"]) < Version(row["newest"]):
            reasons = held_back_by(p.name, row["newest"], items + no_deps_items)
            row["held_back_by"] = reasons or ["the resolver (no single cause)"]
        rows.append(row)
    return rows


def setup(hold: set[str]) -> None:
    """.venv-drift with the resolved versions, and outputs/drift/resolution.json."""
    if not (VENV / "bin" / "python").exists():
        print(f"[drift] creating {VENV.relative_to(REPO_ROOT)}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    python = VENV / "bin" / "python"
    pins = read_pins()
    rows = resolve(python, pins, hold)
    version = {row["name"]: row["resolved"] for row in rows}
    with_deps = [f"{p.unpinned()}=={version[p.name]}" for p in pins if not p.no_deps]
    without_deps = [f"{p.unpinned()}=={version[p.name]}" for p in pins if p.no_deps]
    print(
        f"[drift] installing {len(pins)} packages and their dependencies (pip shows its progress)", flush=True
    )
    pip(python, "install", "--progress-bar", "on", *with_deps)
    pip(python, "install", "--no-deps", *without_deps)
    pip(python, "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", str(REPO_ROOT))
    WORK.mkdir(parents=True, exist_ok=True)
    python_version = subprocess.run(
        [str(python), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    RESOLUTION.write_text(json.dumps({"python": python_version, "packages": rows}, indent=1) + "\n")
    changed = [r for r in rows if r["resolved"] != r["pinned"]]
    print(f"[drift] {len(changed)} of {len(rows)} direct dependencies differ from their pins", flush=True)


# --- step 3: the report ------------------------------------------------------------------------------


@dataclass
class CellResult:
    cell: int  # nbval's number: the n-th code cell
    cell_id: str
    outcome: str  # passed, changed, raised, skipped
    detail: str = ""  # changed: the lines that differ; raised: the exception's last line; skipped: why
    tag: str = ""


@dataclass
class NotebookResult:
    notebook: str
    cells: list[CellResult] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(c.outcome == outcome for c in self.cells)


def code_cell_ids(path: Path) -> list[str]:
    cells = json.loads(path.read_text())["cells"]
    return [c.get("id", "") for c in cells if c["cell_type"] == "code"]


def diff_lines(message: str) -> str:
    """The lines of an nbval "outputs differ" message that say what changed, labelled.

    nbval asserts ``reference_output == test_output``, so pytest's diff marks the stored output's lines
    with + and this run's with -; the report says "stored" and "now" instead.
    """
    labels = {"+ ": "stored: ", "- ": "now:    "}
    changed = []
    for line in (line.strip() for line in message.splitlines()):
        if line.startswith("mismatch"):
            changed.append(line)
        elif line[:2] in labels:
            changed.append(labels[line[:2]] + line[2:])
    return "\n".join(changed[:DIFF_LINES])


def lines_of(detail: str, label: str) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in detail.splitlines() if line.startswith(label)]


def last_exception_line(message: str) -> str:
    lines = [
        line.strip()
        for line in message.splitlines()
        if re.match(r"^\w*(Error|Exception|Warning)\b.*:", line.strip())
    ]
    return lines[-1] if lines else message.strip().splitlines()[-1]


def tag_exception(line: str) -> str:
    name = line.split(":")[0]
    if name.endswith("Warning"):
        return "deprecation now an error"
    if (
        name in ("AttributeError", "ImportError", "ModuleNotFoundError")
        or "unexpected keyword argument" in line
    ):
        return "removed API"
    return ""


def tag_change(detail: str) -> str:
    """ "changed numbers" when the stored and new lines differ only in their digits; "lines added" or
    "lines gone" when one side has none."""
    stored, now = lines_of(detail, "stored:"), lines_of(detail, "now:")
    if now and not stored:
        return "lines added"
    if stored and not now:
        return "lines gone"

    def shape(lines):
        return [re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "#", line) for line in lines]

    return "changed numbers" if stored and shape(stored) == shape(now) else ""


def prints_versions(detail: str, packages: list[dict]) -> bool:
    """True when the new lines are the stored ones with each changed package's new version in place of
    its pinned one: the cell prints the versions, and nothing else changed."""
    stored, now = lines_of(detail, "stored:"), lines_of(detail, "now:")
    for p in packages:
        now = [line.replace(p["resolved"], p["pinned"]) for line in now]
    return bool(stored) and now == stored


def read_junit(path: Path, notebooks: list[Path], root: Path = REPO_ROOT) -> list[NotebookResult]:
    """nbval's results, one NotebookResult per notebook, in the order of ``notebooks``."""
    by_class = {str(nb.relative_to(root)).replace("/", "."): nb for nb in notebooks}
    results = {nb: NotebookResult(str(nb.relative_to(root))) for nb in notebooks}
    ids = {nb: code_cell_ids(nb) for nb in notebooks}
    for case in ET.parse(path).iter("testcase"):
        nb = by_class.get(case.get("classname", ""))
        match = re.fullmatch(r"Cell (\d+)", case.get("name", ""))
        if nb is None or match is None:
            continue
        number = int(match.group(1))
        cell_id = ids[nb][number] if number < len(ids[nb]) else ""
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        skipped = case.find("skipped")
        if failure is not None:
            message = ANSI.sub("", failure.text or failure.get("message", ""))
            if "Cell outputs differ" in message:
                detail = diff_lines(message)
                result = CellResult(number, cell_id, "changed", detail, tag_change(detail))
            else:
                line = last_exception_line(message)
                result = CellResult(number, cell_id, "raised", line, tag_exception(line))
        elif skipped is not None:
            result = CellResult(number, cell_id, "skipped", skipped.get("message", ""))
        else:
            result = CellResult(number, cell_id, "passed")
        results[nb].cells.append(result)
    return [results[nb] for nb in notebooks]


def build_report(resolution: dict, notebooks: list[NotebookResult], stamp: dict) -> dict:
    packages = [
        row for row in resolution["packages"] if row["resolved"] != row["pinned"] or "held_back_by" in row
    ]
    for nb in notebooks:
        for cell in nb.cells:
            if cell.outcome == "changed" and prints_versions(cell.detail, packages):
                cell.tag = "versions printed"
    return {
        **stamp,
        "python": resolution["python"],
        "profile": "portable: one core, no AVX-512 kernels (the Makefile's PORTABLE)",
        "packages": packages,
        "notebooks": [
            {
                "notebook": nb.notebook,
                **{outcome: nb.count(outcome) for outcome in ("passed", "changed", "raised", "skipped")},
                "problems": [vars(c) for c in nb.cells if c.outcome in ("changed", "raised")],
            }
            for nb in notebooks
        ],
    }


def markdown(report: dict) -> str:
    lines = [
        f"# Drift report, {report['date']}",
        "",
        f"The notebooks' nbval checks on the newest releases of the direct dependencies (`make drift`), "
        f"Python {report['python']}, {report['profile']}, at commit `{report['commit']}`.",
        "",
        "## Packages that differ from the pins",
        "",
    ]
    if report["packages"]:
        lines += ["| package | pinned | newest | installed | held back by |", "|---|---|---|---|---|"]
        for p in report["packages"]:
            held = "; ".join(p.get("held_back_by", [])) or "—"
            lines.append(f"| {p['name']} | {p['pinned']} | {p['newest']} | {p['resolved']} | {held} |")
    else:
        lines.append("None: every pin is the newest release.")
    lines += [
        "",
        "## Notebooks",
        "",
        "| notebook | passed | changed | raised | skipped |",
        "|---|---|---|---|---|",
    ]
    for nb in report["notebooks"]:
        lines.append(
            f"| `{nb['notebook']}` | {nb['passed']} | {nb['changed']} | {nb['raised']} | {nb['skipped']} |"
        )
    problems = [(nb["notebook"], p) for nb in report["notebooks"] for p in nb["problems"]]
    lines += ["", "## What changed or raised", ""]
    if not problems:
        lines.append("Nothing: every checked output is the same on the newest releases.")
    else:
        lines += [problem_kinds(report) + ".", ""]
    for notebook, p in problems:
        tag = f" ({p['tag']})" if p["tag"] else ""
        lines.append(f"* `{notebook}`, cell {p['cell']} (`{p['cell_id']}`): **{p['outcome']}**{tag}")
        lines += ["", "  ```", *[f"  {line}" for line in p["detail"].splitlines()], "  ```", ""]
    return "\n".join(lines).rstrip() + "\n"


def problem_kinds(report: dict) -> str:
    """E.g. "8 cell(s): 7 changed, versions printed; 1 raised, removed API"."""
    kinds = Counter(
        f"{p['outcome']}, {p['tag'] or 'kind not told'}" for nb in report["notebooks"] for p in nb["problems"]
    )
    return f"{kinds.total()} cell(s): " + "; ".join(f"{n} {kind}" for kind, n in kinds.items())


def summary(report: dict) -> str:
    lines = [f"drift report {report['date']}: {len(report['packages'])} package(s) differ from their pins"]
    for p in report["packages"]:
        held = f" (held back: {'; '.join(p['held_back_by'])})" if p.get("held_back_by") else ""
        lines.append(f"  {p['name']}: pinned {p['pinned']}, newest {p['newest']}, ran {p['resolved']}{held}")
    for nb in report["notebooks"]:
        state = "RAISED" if nb["raised"] else "CHANGED" if nb["changed"] else "ok"
        lines.append(
            f"  {state:8s}{nb['notebook']}: {nb['passed']} passed, {nb['changed']} changed, "
            f"{nb['raised']} raised, {nb['skipped']} skipped"
        )
    if any(nb["problems"] for nb in report["notebooks"]):
        lines.append("  " + problem_kinds(report))
    return "\n".join(lines)


def report(notebook_paths: list[Path]) -> Path:
    resolution = json.loads(RESOLUTION.read_text())
    results = read_junit(JUNIT, notebook_paths)
    built = build_report(resolution, results, provenance.stamp())
    REPORTS.mkdir(parents=True, exist_ok=True)
    base = REPORTS / built["date"]
    base.with_suffix(".json").write_text(json.dumps(built, indent=1, ensure_ascii=False) + "\n")
    base.with_suffix(".md").write_text(markdown(built))
    print(summary(built))
    print(f"[drift] report: {base.with_suffix('.md').relative_to(REPO_ROOT)} (and .json)")
    return base


def english_notebooks() -> list[Path]:
    return sorted(
        p for p in (REPO_ROOT / "notebooks").rglob("*.ipynb") if "zh" not in p.relative_to(REPO_ROOT).parts
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    step = sub.add_parser("setup", help="build .venv-drift with the newest releases")
    step.add_argument("--hold", default=os.environ.get("DRIFT_HOLD", ""), help="packages kept at their pins")
    sub.add_parser("report", help="write data/drift/DATE.{md,json} from the last run")
    args = parser.parse_args(argv)
    if args.step == "setup":
        setup({canonicalize_name(name) for name in args.hold.split()})
    else:
        report(english_notebooks())


if __name__ == "__main__":
    main()
