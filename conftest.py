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

import pytest

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
    "test_serving_browser.py",
    "test_bench_serve.py",
    "test_serving_runtimes.py",
    "test_serving_ray.py",
    "test_lab_browser.py",
}


def pytest_ignore_collect(collection_path, config):
    """With ``-m unit``, skip importing whole files that hold no unit test."""
    if config.getoption("markexpr") == "unit" and collection_path.name in INTEGRATION_FILES | SLOW_FILES:
        return True
    return None


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
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
