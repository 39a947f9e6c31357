"""Server-drawn charts: valid inline SVG, text kept as text, the same bytes for the same
numbers, and words instead of empty axes when there is nothing to draw."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from crowdquant.web.charts import NO_ROUNDS, bar_chart, cumulative, line_chart

SVG = "{http://www.w3.org/2000/svg}"
SCORES = {"CORR": [(1, 0.02), (2, -0.01), (3, 0.03)], "MMC": [(1, 0.004), (2, None), (3, 0.001)]}


def texts(svg: str) -> list[str]:
    """The text of every `<text>` element: what a reader (or a screen reader) sees."""
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return [element.text or "" for element in root.iter(f"{SVG}text")]


def test_a_line_chart_is_an_inline_svg_with_its_title_axis_and_series_labels() -> None:
    svg = line_chart(SCORES, title="alice: final score per round", y_label="score")
    assert svg.startswith('<svg role="img" aria-label="alice: final score per round"')
    assert "<?xml" not in svg and "<!DOCTYPE" not in svg  # ready to sit inside a page
    words = texts(svg)
    for label in ("alice: final score per round", "score", "round", "CORR", "MMC"):
        assert label in words
    assert len(ET.fromstring(svg).findall(f".//{SVG}path")) > 2  # lines are drawn
    assert 'id="figure_1"' not in svg  # no id two charts on one page would share


def test_a_bar_chart_draws_a_bar_per_point_and_signs_its_colours() -> None:
    svg = bar_chart(
        {"NMR": [(1, 4.0), (2, -1.5), (3, 2.0)]},
        title="payouts",
        y_label="NMR",
        signed_colors=True,
    )
    assert {"payouts", "NMR", "round"} <= set(texts(svg))
    assert svg.count('fill="#167a3e"') == 2 and svg.count('fill="#b3261e"') == 1
    grouped = bar_chart({"NMR": [(1, 1.0)], "USD": [(1, 3.0)]}, title="paid", y_label="amount")
    assert {"NMR", "USD"} <= set(texts(grouped))  # a legend names each series


def test_the_same_numbers_give_the_same_bytes_and_charts_never_share_ids() -> None:
    first = line_chart(SCORES, title="a", y_label="score")
    assert line_chart(SCORES, title="a", y_label="score") == first
    other = line_chart(SCORES, title="b", y_label="score")
    ids = {part.split('"')[1] for part in first.split(' id="')[1:]}
    assert ids and not any(f'id="{found}"' in other for found in ids)


@pytest.mark.parametrize("series", [{}, {"CORR": []}, {"CORR": [(1, None)]}])
def test_without_data_a_chart_says_so(series: dict[str, list[tuple[float, float | None]]]) -> None:
    svg = line_chart(series, title="bob: cumulative score", y_label="score")
    assert texts(svg) == ["bob: cumulative score", NO_ROUNDS]
    bars = bar_chart(series, title="bob: payouts", y_label="NMR", empty="nothing paid yet")
    assert texts(bars) == ["bob: payouts", "nothing paid yet"]


def test_text_is_written_as_given() -> None:
    svg = line_chart({"USD $ & <co>": [(1, 1.0)]}, title="a $5 <prize>", y_label="$")
    words = texts(svg)
    assert "USD $ & <co>" in words and "a $5 <prize>" in words


def test_cumulative_sums_by_round_and_skips_missing_values() -> None:
    assert cumulative([(3, 0.5), (1, 1.0), (2, None), (4, -2.0)]) == [
        (1.0, 1.0),
        (3.0, 1.5),
        (4.0, -0.5),
    ]
    assert cumulative([]) == []


def test_charts_carry_no_inline_style_the_pages_policy_would_block() -> None:
    line = line_chart(SCORES, title="a", y_label="score")
    bars = bar_chart({"NMR": [(1, 4.0)]}, title="b", y_label="NMR", signed_colors=True)
    empty = line_chart({}, title="c", y_label="score")
    for svg in (line, bars, empty):
        assert not re.search(r"<style|\sstyle=", svg)
        assert ET.fromstring(svg).get("stroke-linecap") == "butt"  # inherited by every element
    drawn = [p for p in ET.fromstring(line).iter(f"{SVG}path") if p.get("stroke") == "#1f77b4"]
    assert any(p.get("fill") == "none" for p in drawn)  # the line is a stroke, not a shape
    words = ET.fromstring(line).iter(f"{SVG}text")
    assert all(word.get("font-size") and word.get("font-family") for word in words)


def test_a_single_round_is_labelled_with_whole_rounds() -> None:
    line = line_chart({"CORR": [(3, 0.02)]}, title="one", y_label="score")
    bars = bar_chart({"NMR": [(3, 1.0)]}, title="one bar", y_label="NMR")
    for svg in (line, bars):
        words = texts(svg)
        assert words[: words.index("round")] == ["2", "3", "4"]  # not 2.95, 3.00, 3.05
