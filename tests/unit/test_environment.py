"""requirements.txt (make's venv) and environment.yml (Binder) must describe the same environment.

``problems()`` compares the two files' texts; the tests run it on the real files (no problem) and on
small broken copies, one per mistake it must catch.
"""

import sys

import pytest
import yaml
from packaging.requirements import InvalidRequirement, Requirement

from ptdeploy.paths import REPO_ROOT

# repo2docker installs and runs its own Jupyter server: environment.yml must leave these out.
BINDER_PROVIDES = {"jupyterlab", "ipykernel"}
PACKAGE_INSTALL = "-e ."  # written exactly so: repo2docker runs it from the repository root


def pinned(lines: list[str], where: str) -> tuple[dict[str, str], list[str]]:
    """name -> version for `name==version` lines; problems for anything else."""
    pins, problems = {}, []
    for line in lines:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            problems.append(f"{where}: cannot parse {line!r}")
            continue
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==" or "*" in specs[0].version:
            problems.append(f"{where}: {line!r} is not pinned with ==")
            continue
        pins[req.name.lower().replace("_", "-")] = specs[0].version.split("+")[0]  # 2.14.1+cpu: the CPU build
    return pins, problems


def problems(requirements_txt: str, environment_yml: str, python: str) -> list[str]:
    found = []
    req_lines = [line.split("#")[0].strip() for line in requirements_txt.splitlines()]
    pip_pins, bad = pinned([line for line in req_lines if line], "requirements.txt")
    found += bad

    env = yaml.safe_load(environment_yml)
    conda, pip_section = [], []
    for dep in env.get("dependencies", []):
        if isinstance(dep, dict):
            pip_section += dep.get("pip", [])
        else:
            conda.append(dep)
    extra_conda = [d for d in conda if d.split("=")[0] not in {"python", "pip"}]
    if extra_conda:
        found.append(f"environment.yml: conda-level packages {extra_conda}: pin them in the pip section")
    pythons = [d for d in conda if d.split("=")[0] == "python"]
    if pythons != [f"python={python}"]:
        found.append(f"environment.yml: Python is {pythons}, make's venv uses python={python}")
    if PACKAGE_INSTALL not in pip_section:
        found.append(f"environment.yml: the package install {PACKAGE_INSTALL!r} is missing")
    options = [line for line in pip_section if line.startswith("-")]
    env_pins, bad = pinned([line for line in pip_section if line not in options], "environment.yml")
    found += bad

    for name in sorted(BINDER_PROVIDES & env_pins.keys()):
        found.append(f"environment.yml: {name} is repo2docker's to install, not ours")
    expected = {k: v for k, v in pip_pins.items() if k not in BINDER_PROVIDES}
    for name in sorted(expected.keys() - env_pins.keys()):
        found.append(f"environment.yml: {name} is missing (requirements.txt pins {expected[name]})")
    for name in sorted(env_pins.keys() - pip_pins.keys()):
        found.append(f"environment.yml: {name} is not in requirements.txt")
    for name in sorted(expected.keys() & env_pins.keys()):
        if expected[name] != env_pins[name]:
            found.append(f"{name}: requirements.txt {expected[name]}, environment.yml {env_pins[name]}")
    return found


def real_files() -> tuple[str, str]:
    return (REPO_ROOT / "requirements.txt").read_text(), (REPO_ROOT / "environment.yml").read_text()


PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def test_the_two_files_describe_the_same_environment():
    assert problems(*real_files(), PYTHON) == []


def test_binder_takes_cpu_only_torch():
    requirements, text = real_files()
    for name in ("torch", "torchvision"):
        [pin] = [line for line in requirements.splitlines() if line.startswith(f"{name}==")]
        assert f"{pin}+cpu" in text  # the same version, CPU-only build
    assert "download.pytorch.org/whl/cpu" in text


GOOD_REQ = "torch==2.14.1\nnumpy==2.4.6  # comment\njupyterlab==4.6.6\n"
GOOD_ENV = """
dependencies:
  - python=3.11
  - pip
  - pip:
      - --extra-index-url https://download.pytorch.org/whl/cpu
      - torch==2.14.1+cpu
      - numpy==2.4.6
      - -e .
"""


@pytest.mark.parametrize(
    "req, env, expected",
    [
        (GOOD_REQ, GOOD_ENV, None),
        (GOOD_REQ.replace("numpy==2.4.6", "numpy"), GOOD_ENV, "'numpy' is not pinned"),
        (GOOD_REQ.replace("numpy==2.4.6", "numpy>=2.4.6"), GOOD_ENV, "'numpy>=2.4.6' is not pinned"),
        (GOOD_REQ, GOOD_ENV.replace("numpy==2.4.6", "numpy>=2.4"), "'numpy>=2.4' is not pinned"),
        (GOOD_REQ, GOOD_ENV.replace("numpy==2.4.6", "numpy==2.4.5"), "numpy: requirements.txt 2.4.6"),
        (GOOD_REQ + "# pandas==3.1.1\n", GOOD_ENV + "      # - pandas==3.1.1\n", None),
        (
            GOOD_REQ,
            GOOD_ENV.replace("      - numpy==2.4.6\n", "      # - numpy==2.4.6\n"),
            "numpy is missing",
        ),
        (GOOD_REQ, GOOD_ENV + "      - scipy==1.17.0\n", "scipy is not in requirements.txt"),
        (GOOD_REQ, GOOD_ENV.replace("  - pip\n", "  - pip\n  - numpy=2.4.6\n"), "conda-level packages"),
        (GOOD_REQ, GOOD_ENV.replace("      - -e .\n", ""), "'-e .' is missing"),
        (GOOD_REQ, GOOD_ENV.replace("- -e .", "- -e ./src"), "'-e .' is missing"),
        (GOOD_REQ, GOOD_ENV.replace("python=3.11", "python=3.12"), "make's venv uses python=3.11"),
        (GOOD_REQ, GOOD_ENV + "      - jupyterlab==4.6.6\n", "jupyterlab is repo2docker's"),
    ],
)
def test_each_mismatch_is_caught(req, env, expected):
    found = problems(req, env, "3.11")
    if expected is None:
        assert found == []
    else:
        assert any(expected in p for p in found), found


def test_both_environments_install_the_nodeps_file_without_dependencies():
    command = "pip install --no-deps -r requirements-nodeps.txt"
    assert command in (REPO_ROOT / "postBuild").read_text()
    assert (
        command.replace("pip install", "pip install --quiet --disable-pip-version-check")
        in (REPO_ROOT / "Makefile").read_text()
    )
    nodeps, bad = pinned(
        [
            line
            for line in (REPO_ROOT / "requirements-nodeps.txt").read_text().splitlines()
            if line and line[0] != "#"
        ],
        "requirements-nodeps.txt",
    )
    assert bad == [] and nodeps
    environment = real_files()[1]
    assert not [name for name in nodeps if name in environment], (
        "environment.yml would install their dependencies"
    )
