"""The audit on the bundled real panel: 20 S&P 500 stocks, about 1,700 weekly eras."""

from __future__ import annotations

import pytest

from crowdquant.data.audit import AuditInput, AuditReport, run_audit
from crowdquant.data.sources.bundled import load_bundled_panel

from .conftest import build_input, config, one_thread


@pytest.fixture(scope="module")
def data() -> AuditInput:
    return build_input(load_bundled_panel(), config())


@pytest.fixture(scope="module")
def report(data: AuditInput) -> AuditReport:
    with one_thread():
        return run_audit(data)


def test_the_sample_is_every_bundled_stock(report: AuditReport) -> None:
    meta = report.meta
    assert meta.source == "bundled" and meta.tickers == 20
    assert len(meta.sampled_eras) == 5 and all(15 <= n <= 20 for n in meta.rows_per_era)
    assert all(e.candidates <= 20 for e in report.reidentification.estimated.eras)
    assert report.reidentification.estimated.chance_top1 >= 0.05


def test_dating_is_reported_against_the_whole_calendar(report: AuditReport) -> None:
    d = report.dating
    assert d.candidates > 1500
    assert 0.0 <= d.exact <= d.within_one_week <= 1.0
    assert d.chance_exact == pytest.approx(1 / d.candidates)
    assert d.chance_within_one_week == pytest.approx(3 / d.candidates)
    assert d.groups is None  # mixing is off


def test_attacks_beat_chance_on_real_prices(report: AuditReport) -> None:
    assert report.linkage.hungarian > 5 * report.linkage.chance
    a, b = report.reidentification.known, report.reidentification.estimated
    assert a.top1 >= b.top1 > b.chance_top1
    assert 0.0 <= report.semantics.above_0_9 <= report.semantics.above_0_7 <= 1.0


def test_side_channels_pass_and_utility_is_reported(report: AuditReport) -> None:
    assert report.side_channels.passed, [c.detail for c in report.side_channels.checks]
    assert report.example_validation_corr is not None
    assert -1.0 <= report.example_validation_corr <= 1.0
    assert report.frontier is not None and len(report.frontier) == 6
    assert "bundled" in report.to_markdown()
