"""What every pytest run of this repository shares.

- Kinds of test come from where a test lives: ``tests/unit``, ``tests/integration``, ``tests/slow``, each
  folder's conftest.py marks its own items (a unit-folder test may declare itself slow or integration);
  the notebooks' nbval cells are slow. The markers are registered in pyproject.toml and
  ``--strict-markers`` rejects any other.
- Plain ``pytest --nbval`` gets the project's sanitizers and this environment's kernel (below).
- Sections a machine cannot run (notebooks/skipped.toml) are skipped there, with the reason.
"""

import gc
from pathlib import Path

import pytest

SANITIZERS = Path(__file__).parent / "notebooks" / "sanitize.cfg"
CHINESE_EDITION = Path(__file__).parent / "notebooks" / "zh"


def pytest_configure(config):
    """Plain ``pytest --nbval`` (or ``--nbval-lax``) checks the notebooks as ``make test`` does: with the
    project's sanitizers, in this Python environment. Either choice, given on the command line, wins."""
    option = config.option
    if not (getattr(option, "nbval", False) or getattr(option, "nbval_lax", False)):
        return  # nbval is off or not even loaded (make test-fast): nothing to do
    if option.nbval_sanitize_with is None and option.sanitize_with is None:
        option.nbval_sanitize_with = str(SANITIZERS)
    if option.nbval_kernel_name is None and not option.current_env:
        option.nbval_current_env = True


def pytest_ignore_collect(collection_path, config):
    """notebooks/zh/ holds the Chinese edition: the English notebooks' code cells and outputs with
    translated markdown, proven identical by tests/unit/test_translations.py, so not run a second time.
    A Chinese notebook named on the command line is still collected."""
    if collection_path == CHINESE_EDITION:
        return not any(CHINESE_EDITION in Path(arg).resolve().parents for arg in config.args)
    return None


def pytest_collection_modifyitems(items):
    skips = {}  # notebook -> {tag: entry} of the sections this machine skips (notebooks/skipped.toml)
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
            from ptdeploy.tools.notebooks import notebook_name, skipped_here

            name = notebook_name(item.path)
            if name not in skips:
                skips[name] = skipped_here(name)
            tags = getattr(item, "cell", {}).get("metadata", {}).get("tags", [])
            for tag in tags:
                if tag in skips[name]:
                    entry = skips[name][tag]
                    item.add_marker(pytest.mark.skip(reason=f"on a {entry.when}: {entry.reason}"))


def pytest_collection_finish(session):
    # Collection imported torch, torchvision (with torch._dynamo and sympy) and the rest: millions of
    # objects that live until the end. Freezing them keeps every later garbage collection, and the
    # ones at exit, from walking them again: `make test-fast` takes seconds less.
    gc.freeze()
