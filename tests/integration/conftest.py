"""Integration tests: a real HTTP server (gunicorn, nginx), the C++ build or a real Jupyter kernel."""

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)
