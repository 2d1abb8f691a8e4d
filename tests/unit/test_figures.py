"""The plotly renderer stores each figure twice: interactive JSON and a static PNG drawn with matplotlib."""

import base64

import plotly.graph_objects as go
import plotly.io as pio
import pytest

from ptdeploy.tools.plotly_static import (
    RENDERER,
    StaticTwinRenderer,
    collected_figures,
    static_png,
    use_static_twin_renderer,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _figures():
    bars = go.Figure(
        [
            go.Bar(x=[0, 1], y=[0.2, 0.3], name="idle"),
            go.Bar(x=[0, 1], y=[0.8, 0.7], name="busy", error_y={"type": "data", "array": [0.1, 0.1]}),
        ]
    )
    bars.update_layout(barmode="relative", title="stacked bars")
    pies = go.Figure([go.Pie(labels=["a", "b"], values=[1, 3], domain={"x": [0, 0.5], "y": [0, 1]})])
    hist = go.Figure([go.Histogram(x=[1, 2, 2, 3, 3, 3])])
    categorical = go.Figure([go.Bar(x=["7", "20"], y=[1, 2])])
    return [bars, pies, hist, categorical]


@pytest.mark.parametrize("fig", _figures(), ids=["bar", "pie", "histogram", "categorical"])
def test_bundle_has_json_and_a_deterministic_png(fig):
    bundle = StaticTwinRenderer().to_mimebundle(fig.to_dict())
    assert set(bundle) == {"application/vnd.plotly.v1+json", "image/png"}
    assert "template" not in bundle["application/vnd.plotly.v1+json"]["layout"]
    png = base64.b64decode(bundle["image/png"])
    assert png.startswith(PNG_MAGIC)
    assert len(png) < 20_000
    assert static_png(fig.to_dict()) == png


def test_unknown_trace_types_are_refused():
    with pytest.raises(ValueError, match="scatter"):
        static_png(go.Figure([go.Scatter(x=[1, 2], y=[3, 4])]).to_dict())


def test_use_static_twin_renderer_sets_the_default():
    before = pio.renderers.default
    try:
        use_static_twin_renderer()
        assert pio.renderers.default == RENDERER
    finally:
        pio.renderers.default = before


# Every notebook's size and static images: tests/unit/test_publishing.py.


def test_collected_figures_are_kept_not_shown():
    before = pio.renderers.default
    with collected_figures() as figures:
        for fig in _figures()[:2]:
            fig.show()
    assert [f["layout"]["title"]["text"] for f in figures[:1]] == ["stacked bars"]
    assert len(figures) == 2 and pio.renderers.default == before
