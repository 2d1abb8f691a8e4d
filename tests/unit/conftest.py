"""Unit tests: quick, in-process, one module at a time (`make test-fast` runs these). A test here that
needs more says so with `@pytest.mark.slow` or `@pytest.mark.integration`, and is then not a unit test."""

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items):
    for item in items:
        if (
            HERE in item.path.parents
            and not any(item.iter_markers("slow"))
            and not any(item.iter_markers("integration"))
        ):
            item.add_marker(pytest.mark.unit)
