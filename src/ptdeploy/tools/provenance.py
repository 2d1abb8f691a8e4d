"""Where a recorded number came from: the date and the commit, stamped on benchmark and GPU recordings."""

import datetime
import os
import subprocess

from ptdeploy.paths import REPO_ROOT


def commit() -> str:
    """This checkout's commit (PTDEPLOY_COMMIT when set: a copy without .git, e.g. on a GPU machine)."""
    if os.environ.get("PTDEPLOY_COMMIT"):
        return os.environ["PTDEPLOY_COMMIT"]
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:  # no git
        found = ""
    return found or "unknown"


def stamp() -> dict:
    """The fields every recording carries: today's date and the commit."""
    return {"date": datetime.date.today().isoformat(), "commit": commit()}
