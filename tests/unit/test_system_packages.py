"""System programs: one list (system-packages.txt), Binder's apt.txt made from it, every program the
project starts on it, and every make target that needs them installing them first."""

import json
import os
import re
import subprocess
import sys

import pytest

from ptdeploy import system_packages
from ptdeploy.paths import NOTEBOOKS_DIR, REPO_ROOT

LISTED = {command for p in system_packages.read() for command in p.commands}
# Programs started by name that are not on the list, and why that is fine.
NOT_LISTED = {
    "git": "only to stamp a benchmark or recording with its commit; a missing git gives 'unknown'",
    "setpriv": "util-linux, essential on Debian; only the Lab-as-another-user test uses it, as root",
}
# make targets that run notebooks, a server or the C++ build -> the install rule each must depend on
TARGETS = {
    "run": "system-packages",
    "refresh": "system-packages",
    "test-notebooks": "system-packages",
    "lab": "system-packages",
    "serve": "system-packages",
    "cpp": "system-packages",
    "test": "system-packages-tests",
    "bench-serve": "system-packages-tests",
}


def python_sources() -> dict[str, str]:
    """name -> text of every Python source: src/, scripts/, tests/ and the notebooks' code cells."""
    sources = {}
    for folder in ("src", "scripts", "tests"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            sources[str(path.relative_to(REPO_ROOT))] = path.read_text()
    for path in NOTEBOOKS_DIR.rglob("*.ipynb"):
        cells = json.loads(path.read_text())["cells"]
        code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        sources[str(path.relative_to(REPO_ROOT))] = "\n".join(code)
    return sources


def test_binder_apt_txt_is_the_notebooks_part_of_the_list():
    assert (REPO_ROOT / "apt.txt").read_text() == system_packages.apt_txt(), (
        "apt.txt is made from system-packages.txt: "
        "PYTHONPATH=src python3 -m ptdeploy.system_packages apt-txt > apt.txt"
    )
    assert "chromium\n" not in system_packages.apt_txt()  # test tools stay out of Binder's image


def test_every_program_the_project_starts_is_on_the_list():
    started = re.compile(r"(?:subprocess\.\w+|Popen)\(\s*\[\s*\"([^\"]+)\"")
    named = re.compile(r"system_packages\.(?:require|find)\(\s*\"([^\"]+)\"")
    found = {}
    for name, text in python_sources().items():
        if name.endswith("system_packages.py"):
            continue
        for match in [*started.finditer(text), *named.finditer(text)]:
            found.setdefault(match.group(1), name)
        # a program looked up any other way escapes the list and its install rule
        assert "shutil.which(" not in text, f"{name}: use system_packages.require() / find()"
        assert not re.search(r"\"/usr/s?bin/", text), f"{name}: a hard-coded program path"
    unlisted = {prog: where for prog, where in found.items() if prog not in LISTED | NOT_LISTED.keys()}
    assert not unlisted, f"programs started but not in system-packages.txt: {unlisted}"
    assert {"nginx", "cmake", "c++", "chromium", "wrk"} <= found.keys()  # the scan sees them


def test_make_targets_that_need_system_programs_install_them_first():
    makefile = (REPO_ROOT / "Makefile").read_text()
    for target, rule in TARGETS.items():
        line = re.search(rf"^{re.escape(target)}:(.*)$", makefile, re.M)
        assert line, f"no '{target}' target in the Makefile"
        assert rule in line.group(1).split(), f"make {target} must depend on {rule}"


def test_require_names_the_package_and_how_to_install_it():
    packages = [system_packages.Package("no-such-pkg", ("no-such-program",), "notebooks", "for a test")]
    with pytest.raises(system_packages.MissingProgram, match="apt-get install -y no-such-pkg"):
        system_packages.require("no-such-program", packages)
    with pytest.raises(ValueError, match="not in system-packages.txt"):
        system_packages.require("unlisted-program", packages)
    assert [p.name for p in system_packages.missing(["notebooks"], packages)] == ["no-such-pkg"]
    assert system_packages.missing(["tests"], packages) == []


def test_install_uses_sudo_only_when_not_root():
    assert system_packages.install_command(["nginx"], euid=0)[0] == "apt-get"
    assert system_packages.install_command(["nginx"], euid=1000)[:2] == ["sudo", "apt-get"]


def test_a_malformed_row_is_reported_with_its_line(tmp_path):
    path = tmp_path / "system-packages.txt"
    path.write_text("# comment\ncmake cmake notebooks configures\nnginx nginx somewhere proxy\n")
    with pytest.raises(ValueError, match=r"system-packages.txt:3"):
        system_packages.read(path)


def run_without_site_packages(*args: str) -> subprocess.CompletedProcess:
    """As the Makefile runs it before the venv exists: the system Python, src/ on the path, nothing else
    (-S: no site-packages, so an import of anything outside the standard library fails here)."""
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO_ROOT / "src")}
    command = [sys.executable, "-S", "-m", "ptdeploy.system_packages", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env)


def test_the_command_line_needs_only_the_standard_library():
    result = run_without_site_packages("apt-txt")
    assert result.returncode == 0, result.stderr
    assert result.stdout == system_packages.apt_txt()


def test_the_command_line_rejects_an_unknown_group():
    result = run_without_site_packages("check", "docs")
    assert result.returncode == 2 and "unknown group(s) docs" in result.stderr
