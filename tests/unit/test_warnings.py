"""A quiet test run: an unexplained warning fails its test; the explained ones are few and say why.

pyproject.toml's filterwarnings starts with "error", then ignores each known warning under a comment
that gives the reason. These tests fail if that guard goes, or if an ignore arrives without a reason.
"""

import tomllib
import warnings

import pytest

from ptdeploy.paths import REPO_ROOT

PYPROJECT = REPO_ROOT / "pyproject.toml"
MAX_IGNORED = 8  # "a handful": raise it only together with a reason for the new one


def filters() -> list[str]:
    return tomllib.loads(PYPROJECT.read_text())["tool"]["pytest"]["ini_options"]["filterwarnings"]


def test_unexplained_warnings_are_errors():
    assert filters()[0] == "error"
    with pytest.raises(UserWarning):
        warnings.warn("a warning nobody has explained", UserWarning, stacklevel=1)


def test_every_ignored_warning_has_a_reason_above_it():
    lines = PYPROJECT.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("filterwarnings = ["))
    end = next(i for i in range(start, len(lines)) if lines[i] == "]")
    reason = False
    for line in (s.strip() for s in lines[start + 1 : end]):
        if line.startswith("#"):
            reason = len(line.split()) >= 5
        elif line.startswith('"ignore'):
            assert reason, f"no reason given above {line}"
        else:
            reason = False
    ignored = [f for f in filters() if f.startswith("ignore")]
    assert 0 < len(ignored) <= MAX_IGNORED


def test_an_explained_warning_is_ignored():
    with warnings.catch_warnings(record=True) as caught:
        # catch_warnings(record=True) keeps the active filters; only the ones they let through are recorded
        warnings.warn(
            "torch.ao.quantization is deprecated and will be removed", DeprecationWarning, stacklevel=1
        )
    assert caught == []
