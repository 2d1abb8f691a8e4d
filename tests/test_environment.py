"""requirements.txt (pip) and environment.yml (Binder) must pin the same versions."""

import re

from ptdeploy.paths import REPO_ROOT

PIN = re.compile(r"^\s*(?:-\s+)?([A-Za-z0-9_.\-]+)==([^\s#]+)")


def pins(path):
    found = {}
    for line in (REPO_ROOT / path).read_text().splitlines():
        if m := PIN.match(line):
            name, version = m.group(1).lower(), m.group(2)
            found[name] = version.split("+")[0]  # 2.14.1+cpu is the CPU build of 2.14.1
    return found


def test_every_requirement_is_pinned():
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            assert PIN.match(line), f"not pinned with ==: {line}"


def test_binder_environment_pins_the_same_versions():
    pip, conda = pins("requirements.txt"), pins("environment.yml")
    assert pip, "no pins found in requirements.txt"
    assert conda == pip


def test_binder_takes_cpu_only_torch():
    text = (REPO_ROOT / "environment.yml").read_text()
    assert "torch==2.14.1+cpu" in text and "torchvision==0.29.1+cpu" in text
    assert "download.pytorch.org/whl/cpu" in text
