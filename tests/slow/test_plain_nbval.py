"""The command users and CI systems copy, `pytest --nbval`, needs no project flags (root conftest.py)."""

import subprocess
import sys

from ptdeploy.paths import NOTEBOOKS_DIR, REPO_ROOT


def test_plain_pytest_nbval_passes_on_a_notebook():
    # 02's outputs need the sanitizers (a Generator's address, the kernel's cell file names): without
    # the conftest hook this run fails.
    notebook = (NOTEBOOKS_DIR / "02_torchscript_intro.ipynb").relative_to(REPO_ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", "-q", "-p", "no:xdist", str(notebook)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
