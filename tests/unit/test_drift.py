"""The drift watch's code (ptdeploy.tools.drift), on a small fake run: make drift itself downloads
gigabytes and is not part of make test.

fixtures/drift/junit.xml is real nbval output (pytest --nbval --junitxml) for a four-cell notebook: a cell
that passed, one whose output changed (1.5 stored, 1.25 printed), one that raised (a removed torch
function) and one skipped (the skip added by hand, as conftest.py writes them); paths shortened.
"""

import json
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from ptdeploy.tools import drift

FIXTURE = Path(__file__).parent / "fixtures" / "drift" / "junit.xml"


@pytest.fixture
def run(tmp_path):
    cells = [{"cell_type": "markdown", "id": "intro", "metadata": {}, "source": "# t"}]
    cells += [{"cell_type": "code", "id": cid, "metadata": {}, "source": "", "outputs": []} for cid in "abcd"]
    notebook = tmp_path / "t.ipynb"
    notebook.write_text(json.dumps({"cells": cells}))
    return drift.read_junit(FIXTURE, [notebook], root=tmp_path)


def test_each_cell_gets_its_outcome_and_its_id(run):
    [result] = run
    assert result.notebook == "t.ipynb"
    assert [(c.cell, c.cell_id, c.outcome) for c in result.cells] == [
        (0, "a", "passed"),
        (1, "b", "changed"),
        (2, "c", "raised"),
        (3, "d", "skipped"),
    ]
    assert {o: result.count(o) for o in ("passed", "changed", "raised", "skipped")} == dict.fromkeys(
        ("passed", "changed", "raised", "skipped"), 1
    )


def test_a_changed_output_shows_the_lines_that_differ_and_is_tagged(run):
    changed = run[0].cells[1]
    # nbval's diff marks the stored output with + and this run's with -: the report names them.
    assert changed.detail.splitlines() == ["mismatch 'stdout'", "now:    1.25", "stored: 1.5"]
    assert changed.tag == "changed numbers"
    assert "#x1B" not in changed.detail and "\x1b" not in changed.detail  # nbval's colours are gone


def test_a_raised_cell_shows_the_exceptions_last_line_and_is_tagged(run):
    raised = run[0].cells[2]
    assert raised.detail == "AttributeError: module 'torch' has no attribute 'foo_removed'"
    assert raised.tag == "removed API"


@pytest.mark.parametrize(
    "line, tag",
    [
        ("FutureWarning: `torch.jit.trace` is deprecated", "deprecation now an error"),
        ("TypeError: profile.__init__() got an unexpected keyword argument 'use_cuda'", "removed API"),
        ("ImportError: cannot import name 'dynamo_export'", "removed API"),
        ("RuntimeError: shapes do not match", ""),
    ],
)
def test_exception_tags(line, tag):
    assert drift.tag_exception(line) == tag


def test_only_digit_changes_are_changed_numbers():
    assert drift.tag_change("now:    speedup 1.25x\nstored: speedup 1.5x") == "changed numbers"
    assert drift.tag_change("now:    Debug mode: off\nstored: Debug mode: on") == ""
    assert drift.tag_change("now:    a\nnow:    b\nstored: a") == ""
    assert drift.tag_change("now:    frame #0: c10::Error::Error") == "lines added"
    assert drift.tag_change("stored: Warning: slow path") == "lines gone"


def test_a_cell_that_prints_the_new_versions_is_told_apart():
    packages = [
        {"name": "torch", "pinned": "2.14.1", "resolved": "2.15.0"},
        {"name": "torchvision", "pinned": "0.29.1", "resolved": "0.29.2"},
    ]
    versions = "now:    torch 2.15.0 | torchvision 0.29.2\nstored: torch 2.14.1 | torchvision 0.29.1"
    assert drift.prints_versions(versions, packages)
    assert not drift.prints_versions("now:    torch 2.15.0 | 3 cats\nstored: torch 2.14.1 | 2 cats", packages)
    assert not drift.prints_versions("now:    1.25\nstored: 1.5", packages)


def test_the_report_lists_changed_packages_and_problems(run):
    resolution = {
        "python": "3.11.7",
        "packages": [
            {"name": "torch", "pinned": "2.14.1", "newest": "2.15.0", "resolved": "2.15.0"},
            {"name": "numpy", "pinned": "2.4.6", "newest": "2.4.6", "resolved": "2.4.6"},
            {
                "name": "torchao",
                "pinned": "0.18.0",
                "newest": "0.19.0",
                "resolved": "0.18.0",
                "held_back_by": ["executorch 1.5.1 requires torchao<0.19,>=0.18.0"],
            },
        ],
    }
    report = drift.build_report(resolution, run, {"date": "2026-12-07", "commit": "abc1234"})
    assert [p["name"] for p in report["packages"]] == ["torch", "torchao"]  # numpy is at its pin
    [nb] = report["notebooks"]
    assert (nb["passed"], nb["changed"], nb["raised"], nb["skipped"]) == (1, 1, 1, 1)
    assert [p["cell_id"] for p in nb["problems"]] == ["b", "c"]
    text = drift.markdown(report)
    assert "# Drift report, 2026-12-07" in text
    assert "| torchao | 0.18.0 | 0.19.0 | 0.18.0 | executorch 1.5.1 requires torchao<0.19,>=0.18.0 |" in text
    assert "cell 2 (`c`): **raised** (removed API)" in text
    assert "2 cell(s): 1 changed, changed numbers; 1 raised, removed API." in text
    assert "torchao: pinned 0.18.0, newest 0.19.0, ran 0.18.0 (held back" in drift.summary(report)
    assert json.loads(json.dumps(report)) == report  # the machine-readable form is plain JSON


def test_a_package_that_caps_another_is_named():
    items = [
        {"metadata": {"name": "executorch", "version": "1.5.1", "requires_dist": ["torchao<0.19,>=0.18.0"]}},
        {
            "metadata": {
                "name": "timm",
                "version": "1.0.31",
                "requires_dist": ["torch", "pytest; extra == 'dev'"],
            }
        },
        {"metadata": {"name": "pandas", "version": "3.1.1", "requires_dist": None}},
    ]
    assert drift.held_back_by("torchao", "0.19.0", items) == [
        "executorch 1.5.1 requires torchao<0.19,>=0.18.0"
    ]
    assert drift.held_back_by("pytest", "1.0", [{"metadata": {**items[1]["metadata"]}}]) == []  # an extra


def test_the_pins_are_read_from_both_requirement_files():
    pins = {p.name: p for p in drift.read_pins()}
    assert pins["torch"].version and not pins["torch"].no_deps
    assert pins["executorch"].no_deps  # requirements-nodeps.txt
    assert pins["ray"].unpinned() == "ray[serve]"
    assert all(len(p.requirement.specifier) == 1 for p in pins.values())  # every one pinned, exactly
    assert Requirement(f"torch=={pins['torch'].version}").specifier.contains(pins["torch"].version)
