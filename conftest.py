"""Kinds of test, given from where a test lives so that test files carry no boilerplate.

- ``integration``: needs a real server over HTTP (gunicorn, nginx), the C++ build or a real Jupyter kernel
  (files named below), or JupyterLab (single tests marked ``@pytest.mark.integration``);
- ``slow``: minutes rather than seconds: the notebooks' nbval cells, the browser, the serving benchmark,
  and single tests marked ``@pytest.mark.slow`` in their file (load, fuzz, script runs, HTA analyses,
  exports and int8 calibration);
- ``unit``: everything else; ``make test-fast`` runs these (``pytest -m unit tests``). Asked for unit tests
  only, pytest does not even import the files above (Ray, Hypothesis, servers): the run stays quick.

The markers are registered in pyproject.toml and ``--strict-markers`` rejects any other.
"""

import gc
from pathlib import Path

import pytest

SANITIZERS = Path(__file__).parent / "notebooks" / "sanitize.cfg"

INTEGRATION_FILES = {
    "test_serving_http.py",
    "test_serving_proxy.py",
    "test_serving_browser.py",
    "test_bench_serve.py",
    "test_cpp.py",
    "test_serving_ray.py",
    "test_lab_browser.py",
    "test_notebook_runs.py",
}
# test_serving_runtimes exports the classifier to TorchScript and ONNX (tens of seconds of CPU).
# test_serving_ray starts a local Ray instance and two replicas (~45 s here, up to minutes when busy).
SLOW_FILES = {
    "test_plain_nbval.py",
    "test_serving_browser.py",
    "test_bench_serve.py",
    "test_serving_runtimes.py",
    "test_serving_ray.py",
    "test_lab_browser.py",
}


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
    """With ``-m unit``, skip importing whole files that hold no unit test."""
    if config.getoption("markexpr") == "unit" and collection_path.name in INTEGRATION_FILES | SLOW_FILES:
        return True
    return None


def pytest_collection_modifyitems(items):
    skips = {}  # notebook -> {tag: entry} of the sections this machine skips (notebooks/skipped.toml)
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
            if item.path.name not in skips:
                from ptdeploy.notebooks import skipped_here

                skips[item.path.name] = skipped_here(item.path.name)
            tags = getattr(item, "cell", {}).get("metadata", {}).get("tags", [])
            for tag in tags:
                if tag in skips[item.path.name]:
                    entry = skips[item.path.name][tag]
                    item.add_marker(pytest.mark.skip(reason=f"on a {entry.when}: {entry.reason}"))
        if item.path.name in INTEGRATION_FILES:
            item.add_marker(pytest.mark.integration)
        if item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("integration") is None and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.unit)


def pytest_collection_finish(session):
    # Collection imported torch, torchvision (with torch._dynamo and sympy) and the rest: millions of
    # objects that live until the end. Freezing them keeps every later garbage collection, and the
    # ones at exit, from walking them again: `make test-fast` takes seconds less.
    gc.freeze()
