"""What a reader meets on GitHub, nbviewer or Binder: small notebooks whose figures render anywhere."""

import pytest

from ptdeploy.tools.notebooks import all_notebooks, read_plain

MAX_BYTES = 300_000
# Interactive figure formats that GitHub and nbviewer cannot draw: each needs a static image beside it.
INTERACTIVE = ("application/vnd.plotly.v1+json", "application/vnd.jupyter.widget-view+json")
STATIC = ("image/png", "image/jpeg", "image/svg+xml")
NOTEBOOKS = all_notebooks()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_small(path):
    assert path.stat().st_size <= MAX_BYTES, f"{path.name}: {path.stat().st_size} bytes"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_figure_has_a_static_image(path):
    bundles = [o.get("data", {}) for c in read_plain(path)["cells"] for o in c.get("outputs", [])]
    missing = [
        b.keys() for b in bundles if any(k in b for k in INTERACTIVE) and not any(k in b for k in STATIC)
    ]
    assert not missing, f"{path.name}: figures without a static image: {missing}"


def test_every_notebook_links_the_tutorial_it_mirrors():
    for path in NOTEBOOKS:
        first = read_plain(path)["cells"][0]["source"]
        assert "https://pytorch.org/tutorials/" in first, path.name
