"""Charts drawn on the server: small pure functions from numbers to an inline `<svg>` string.

Drawn with matplotlib's object API (`Figure`, never pyplot's global state) and its SVG
backend, with text kept as text (`svg.fonttype` "none") and ids from a fixed salt
(`svg.hashsalt`, per chart title, so two charts on one page never share an id): the same
numbers always give the same bytes. Styles are written as SVG presentation attributes
(`fill="..."`), never `style` attributes or a `<style>` element, which the site's content
security policy blocks. With no data a chart says so in words instead of
drawing empty axes. Templates include a chart with ``{{ chart | safe }}`` inside a
``div.chart``.
"""

from __future__ import annotations

import io
import math
import re
import threading
from collections.abc import Mapping, Sequence
from html import escape

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

Point = tuple[float, float | None]
"""(x, y): a round number and its value; None where the value is missing."""

NO_ROUNDS = "no resolved rounds yet"
SIZE = (6.4, 3.0)  # inches; the page scales the SVG to its column
POSITIVE, NEGATIVE = "#167a3e", "#b3261e"  # site.css --good and --bad
_RENDERING = threading.Lock()  # matplotlib's settings are process-wide: one chart at a time
_SVG_START = re.compile(r"<svg\b")
_POSITION_ID = re.compile(r' id="[\w.]+_\d+"')  # figure_1, axes_1, text_3...: never referenced
_STYLE_ATTRIBUTE = re.compile(r' style="([^"]*)"')
_STYLE_ELEMENT = re.compile(r"\s*<style[^>]*>\s*\*\s*\{([^}]*)\}\s*</style>")


def line_chart(
    series: Mapping[str, Sequence[Point]],
    *,
    title: str,
    y_label: str,
    x_label: str = "round",
    empty: str = NO_ROUNDS,
) -> str:
    """One line (with its points marked) per named series, and a legend of their names."""
    drawn = {name: _present(points) for name, points in series.items()}
    drawn = {name: points for name, points in drawn.items() if points}
    figure = _figure()
    if not drawn:
        return _render(_empty(figure, title, empty), title)
    axes = _axes(figure, title, x_label, y_label)
    for name, points in drawn.items():
        xs, ys = zip(*points, strict=True)
        axes.plot(xs, ys, marker="o", markersize=3.5, linewidth=1.4, label=_plain(name))
    if _spans_zero(drawn):
        axes.axhline(0.0, color="0.6", linewidth=0.8)
    _around_one_x(axes, drawn)
    axes.legend(loc="best", fontsize="small", frameon=False)
    return _render(figure, title)


def bar_chart(
    series: Mapping[str, Sequence[Point]],
    *,
    title: str,
    y_label: str,
    x_label: str = "round",
    empty: str = NO_ROUNDS,
    signed_colors: bool = False,
) -> str:
    """Bars per x, side by side when there are several series (with a legend of their
    names). With `signed_colors` a single series is drawn green above zero, red below."""
    drawn = {name: _present(points) for name, points in series.items()}
    drawn = {name: points for name, points in drawn.items() if points}
    figure = _figure()
    if not drawn:
        return _render(_empty(figure, title, empty), title)
    axes = _axes(figure, title, x_label, y_label)
    width = 0.8 / len(drawn)
    for k, (name, points) in enumerate(drawn.items()):
        xs = [x - 0.4 + width * (k + 0.5) for x, _ in points]
        ys = [y for _, y in points]
        colors = None
        if signed_colors and len(drawn) == 1:
            colors = [POSITIVE if y >= 0 else NEGATIVE for y in ys]
        axes.bar(xs, ys, width=width, color=colors, label=_plain(name))
    axes.axhline(0.0, color="0.6", linewidth=0.8)
    _around_one_x(axes, drawn)
    if len(drawn) > 1 or not signed_colors:
        axes.legend(loc="best", fontsize="small", frameon=False)
    return _render(figure, title)


def cumulative(points: Sequence[Point]) -> list[tuple[float, float]]:
    """The running sum of the values, by x (missing values add nothing)."""
    total, out = 0.0, []
    for x, y in sorted(_present(points)):
        total += y
        out.append((x, total))
    return out


# --- drawing -------------------------------------------------------------------------------------


def _present(points: Sequence[Point]) -> list[tuple[float, float]]:
    return [
        (float(x), float(y))
        for x, y in points
        if y is not None and math.isfinite(y) and math.isfinite(x)
    ]


def _spans_zero(drawn: Mapping[str, list[tuple[float, float]]]) -> bool:
    values = [y for points in drawn.values() for _, y in points]
    return min(values) < 0 < max(values)


def _around_one_x(axes: Axes, drawn: Mapping[str, list[tuple[float, float]]]) -> None:
    """With a single round, one round either side (not fractions of a round around it)."""
    xs = {x for points in drawn.values() for x, _ in points}
    if len(xs) == 1:
        (x,) = xs
        axes.set_xlim(x - 1, x + 1)


def _plain(text: str) -> str:
    """Text as written: a `$` would start matplotlib's math mode."""
    return text.replace("$", r"\$")


def _figure() -> Figure:
    return Figure(figsize=SIZE, dpi=100, layout="constrained")


def _axes(figure: Figure, title: str, x_label: str, y_label: str) -> Axes:
    axes = figure.subplots()
    axes.set_title(_plain(title), fontsize="medium")
    axes.set_xlabel(_plain(x_label))
    axes.set_ylabel(_plain(y_label))
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return axes


def _empty(figure: Figure, title: str, message: str) -> Figure:
    figure.set_size_inches(SIZE[0], SIZE[1] / 2)
    figure.text(0.5, 0.72, _plain(title), ha="center", va="center", fontsize="medium")
    figure.text(0.5, 0.36, _plain(message), ha="center", va="center", color="0.4")
    return figure


def _render(figure: Figure, title: str) -> str:
    """The figure as an `<svg>` element (no XML prologue), labelled with its title."""
    buffer = io.StringIO()
    salt = f"crowdquant:{title}"
    with _RENDERING, matplotlib.rc_context({"svg.hashsalt": salt, "svg.fonttype": "none"}):
        figure.savefig(
            buffer,
            format="svg",
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
    text = buffer.getvalue()
    start = _SVG_START.search(text)
    if start is None:  # pragma: no cover - matplotlib always writes one
        raise ValueError("matplotlib wrote no <svg> element")
    svg = _POSITION_ID.sub("", text[start.start() :]).strip()
    everywhere = _STYLE_ELEMENT.search(svg)
    inherited = _attributes(everywhere.group(1)) if everywhere else ""
    svg = _STYLE_ELEMENT.sub("", svg)
    svg = _STYLE_ATTRIBUTE.sub(lambda found: _attributes(found.group(1)), svg)
    label = f'<svg role="img" aria-label="{escape(title, quote=True)}"{inherited}'
    return label + svg[len("<svg") :]


def _attributes(declarations: str) -> str:
    """CSS declarations ("fill: none; stroke: #000000") as SVG presentation attributes."""
    pairs = (part.split(":", 1) for part in declarations.split(";") if ":" in part)
    return "".join(f' {name.strip()}="{value.strip()}"' for name, value in pairs)
