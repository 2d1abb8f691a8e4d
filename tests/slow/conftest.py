"""Slow tests: minutes rather than seconds (a browser, Ray Serve, the serving benchmark, ONNX and
TorchScript exports, plain `pytest --nbval` on a notebook)."""

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.slow)
