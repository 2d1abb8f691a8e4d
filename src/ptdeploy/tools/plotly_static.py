"""Plotly figures that also render where JavaScript does not run (GitHub, nbviewer, a PDF export).

HTA draws with plotly. A plotly figure stored as ``application/vnd.plotly.v1+json`` is interactive in
JupyterLab and blank everywhere else. :func:`use_static_twin_renderer` registers a plotly renderer that
puts two things in each figure's output bundle: the interactive JSON (without plotly's 7 KB default
theme, to keep notebooks small) and a small PNG drawn from the same data with matplotlib. Viewers show
the richest format they can render. Only the chart types HTA uses are drawn: bar (stacked, with error
bars), pie and histogram.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from contextlib import contextmanager

import matplotlib as mpl
import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from matplotlib.figure import Figure  # not pyplot: the twin is drawn off-screen, never shown
from matplotlib.patches import Rectangle
from PIL import Image
from plotly.io.base_renderers import ExternalRenderer, PlotlyRenderer

RENDERER = "plotly_json_with_png"
WIDTH_IN, MAX_HEIGHT_IN, DPI = 6.0, 4.5, 56  # a 336-pixel-wide preview; the JSON has the detail
LABEL_CHARS = 40  # CUDA kernel names run to hundreds of characters


class StaticTwinRenderer(PlotlyRenderer):
    """Plotly's JSON mimetype plus a matplotlib PNG of the same figure."""

    def to_mimebundle(self, fig_dict):
        fig_dict = dict(
            fig_dict, layout={k: v for k, v in fig_dict.get("layout", {}).items() if k != "template"}
        )
        bundle = super().to_mimebundle(fig_dict)
        bundle["image/png"] = base64.b64encode(static_png(fig_dict)).decode("ascii")
        return bundle


def use_static_twin_renderer() -> None:
    """Make every ``fig.show()`` (HTA's included) store interactive JSON and a static PNG."""
    pio.renderers[RENDERER] = StaticTwinRenderer()
    pio.renderers.default = RENDERER


class _Collector(ExternalRenderer):
    """Keeps each figure it is asked to show, and shows nothing."""

    def __init__(self):
        self.figures: list[dict] = []

    def render(self, fig_dict):
        self.figures.append(fig_dict)


@contextmanager
def collected_figures() -> Iterator[list[dict]]:
    """Inside the block, ``fig.show()`` displays nothing: each figure's dict is appended to the list.

    For a library call that draws many figures (HTA's kernel breakdown draws one per top kernel): show
    the ones that teach with ``plotly.io.show(fig_dict)``, write the rest to files.
    """
    collector, before = _Collector(), pio.renderers.default
    pio.renderers["collect_figures"] = collector
    pio.renderers.default = "collect_figures"
    try:
        yield collector.figures
    finally:
        pio.renderers.default = before


def static_png(fig_dict: dict) -> bytes:
    """A small palette PNG of a plotly figure (bar, pie and histogram traces), drawn with matplotlib."""
    fig = go.Figure(fig_dict)
    layout = fig.layout
    width, height = layout.width or 700, layout.height or 450
    size = (WIDTH_IN, min(WIDTH_IN * height / width, MAX_HEIGHT_IN))
    pies = [t for t in fig.data if t.type == "pie"]
    if pies:
        figure = Figure(figsize=size, dpi=DPI)
        _draw_pies(figure, pies)
    else:
        figure = Figure(figsize=size, dpi=DPI, layout="constrained")
        _draw_xy(figure.add_subplot(), fig.data, layout)
    figure.suptitle(_short(layout.title.text or "", 80), fontsize=9)
    return small_png(figure)


def small_png(figure, dpi: int | None = None) -> bytes:
    """A matplotlib figure as a 16-colour PNG: plenty for flat charts, and several times smaller."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi or figure.dpi, metadata={"Software": None})
    image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB").quantize(colors=16, dither=0)
    out = io.BytesIO()
    image.save(out, format="png", optimize=True)
    return out.getvalue()


def _array(values, dtype=None) -> np.ndarray:
    """Plotly data as a numpy array, also when it is stored as base64 ``{"bdata", "dtype"}``."""
    if isinstance(values, dict) and "bdata" in values:
        values = np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
    return np.asarray(values, dtype=dtype)


def _short(text, n: int = LABEL_CHARS) -> str:
    text = str(text).replace("<br>", " ")
    return text if len(text) <= n else text[: n - 1] + "…"


def _draw_pies(figure, pies) -> None:
    colours = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    legend = {}
    for pie in pies:
        (x0, x1), (y0, y1) = pie.domain.x or (0, 1), pie.domain.y or (0, 1)
        ax = figure.add_axes((x0, 0.15 + y0 * 0.75, x1 - x0, (y1 - y0) * 0.75))  # room for the legend
        labels = [_short(label) for label in pie.labels]
        for label in labels:
            legend.setdefault(label, colours[len(legend) % len(colours)])
        ax.pie(
            _array(pie.values, float),
            colors=[legend[label] for label in labels],
            startangle=90,
            counterclock=False,
        )
        ax.set_title(_short(pie.title.text or ""), fontsize=7)
    handles = [Rectangle((0, 0), 1, 1, color=c) for c in legend.values()]
    figure.legend(handles, list(legend), loc="lower center", fontsize=6, ncol=2, frameon=False)


def _draw_xy(ax, traces, layout) -> None:
    categories: dict = {}  # categorical x values, in order of first appearance
    for trace in traces:
        if (
            trace.type == "bar"
            and trace.x is not None
            and not np.issubdtype(_array(trace.x).dtype, np.number)
        ):
            for x in _array(trace.x).tolist():
                categories.setdefault(x, len(categories))
    bottom_pos: dict = {}
    bottom_neg: dict = {}
    for trace in traces:
        name = _short(trace.name) if trace.name else None
        colour = trace.marker.color if isinstance(trace.marker.color, str) else None
        if trace.type == "histogram":
            ax.hist(_array(trace.x, float), bins=trace.nbinsx or "auto", label=name, color=colour)
        elif trace.type == "bar":
            xs = [categories.get(x, x) for x in _array(trace.x).tolist()]
            ys = _array(trace.y, float)
            base = [(bottom_pos if y >= 0 else bottom_neg).get(x, 0.0) for x, y in zip(xs, ys, strict=True)]
            err = None
            if trace.error_y and trace.error_y.array is not None:
                plus = _array(trace.error_y.array, float)
                minus = trace.error_y.arrayminus
                err = [_array(minus, float) if minus is not None else plus, plus]
            ax.bar(xs, ys, bottom=base, label=name, color=colour, yerr=err, capsize=3)
            for x, y, b in zip(xs, ys, base, strict=True):
                (bottom_pos if y >= 0 else bottom_neg)[x] = b + y
        else:
            raise ValueError(f"no static twin for plotly trace type {trace.type!r}")
    if categories:
        ax.set_xticks(list(categories.values()), [_short(c, 20) for c in categories])
    else:  # integer x (ranks, streams): one tick each
        xs = np.unique(np.concatenate([_array(t.x, float) for t in traces if t.type == "bar"] or [[]]))
        if 0 < len(xs) <= 16 and np.all(xs == xs.round()):
            ax.set_xticks(xs, [str(int(x)) for x in xs])
    ax.set_xlabel(_short(layout.xaxis.title.text or "", 60), fontsize=8)
    ax.set_ylabel(_short(layout.yaxis.title.text or "", 60), fontsize=8)
    ax.tick_params(labelsize=7)
    if len(traces) > 1 and any(t.name for t in traces):
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
