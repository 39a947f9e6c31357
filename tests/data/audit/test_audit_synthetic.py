"""The whole audit on a small synthetic market, with and without mixing."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from crowdquant.data.audit import AuditInput, AuditReport, run_audit, single_era_reidentification
from crowdquant.data.audit.runner import AUDIT_STEPS
from crowdquant.data.build import build_version
from crowdquant.data.panel import Panel
from crowdquant.data.sources import SyntheticSource

from .conftest import KEYS, MARKET, build_input, config, one_thread, synthetic_panel


@pytest.fixture(scope="module")
def panel() -> Panel:
    return synthetic_panel()


@pytest.fixture(scope="module")
def plain(panel: Panel) -> AuditInput:
    return build_input(panel, config())


@pytest.fixture(scope="module")
def mixed(panel: Panel) -> AuditInput:
    return build_input(panel, config(mixing=True))


@pytest.fixture(scope="module")
def report(plain: AuditInput) -> AuditReport:
    with one_thread():
        return run_audit(plain, eras=3, frontier=True)


@pytest.fixture(scope="module")
def mixed_report(mixed: AuditInput) -> AuditReport:
    with one_thread():
        return run_audit(mixed, eras=3, frontier=False)


def _rates(r: AuditReport) -> list[float]:
    a, b = r.reidentification.known, r.reidentification.estimated
    return [
        r.linkage.nearest, r.linkage.hungarian, *r.linkage.chain,
        a.top1, a.top1_nearest, a.top10, a.mrr, b.top1, b.top1_nearest, b.top10, b.mrr,
        r.semantics.above_0_9, r.semantics.above_0_7, r.dating.exact, r.dating.within_one_week,
    ]  # fmt: skip


def test_every_rate_is_a_share(report: AuditReport, mixed_report: AuditReport) -> None:
    for r in (report, mixed_report):
        assert all(0.0 <= x <= 1.0 for x in _rates(r))
        assert r.meta.sampled_split == "validation"
        assert len(r.meta.sampled_eras) == 3 and len(r.linkage.pairs) == 3


def test_linkage_is_high_and_far_above_chance(report: AuditReport) -> None:
    link = report.linkage
    assert link.hungarian > 0.5 and link.nearest > 0.5
    assert link.hungarian > 20 * link.chance
    assert link.warning
    assert len(link.chain) == 3 and link.chain_length_to_half >= 1
    assert link.chain[0] >= link.chain[-1] - 0.05


def test_known_correspondence_bounds_the_estimated_one(
    report: AuditReport, mixed_report: AuditReport
) -> None:
    for r in (report, mixed_report):
        a, b = r.reidentification.known, r.reidentification.estimated
        assert a.top1 >= b.top1
        assert b.chance_top1 == pytest.approx(1 / MARKET.n_stocks, rel=0.2)
        assert a.top1 > 10 * a.chance_top1
        assert a.mrr >= a.chance_mrr and a.top10 >= a.top1_nearest
        assert [e.era for e in a.eras] == r.meta.sampled_eras
    plain_b = report.reidentification.estimated
    assert plain_b.correspondence_accuracy is not None and plain_b.correspondence_accuracy > 0.5
    assert mixed_report.reidentification.estimated.correspondence_accuracy is None


def test_gate_is_case_b_against_the_threshold(plain: AuditInput, report: AuditReport) -> None:
    gate = report.gate
    assert gate.value == report.reidentification.estimated.top1
    assert gate.threshold == 0.05
    assert report.passed == gate.passed == (gate.value <= gate.threshold)
    with one_thread():
        assert single_era_reidentification(plain, eras=3) == pytest.approx(gate.value)
        lenient = run_audit(plain, eras=1, frontier=False, threshold=1.0)
    assert lenient.passed and lenient.gate.threshold == 1.0


def test_mixing_lowers_feature_semantics_recovery(
    report: AuditReport, mixed_report: AuditReport
) -> None:
    plain, mixed = report.semantics, mixed_report.semantics
    assert plain.source_recovered is not None and plain.source_recovered > 0.9
    assert plain.above_0_9 > 0.9
    assert mixed.source_recovered is None
    assert mixed.mean_max_abs_rho < plain.mean_max_abs_rho - 0.1
    assert mixed.above_0_9 < plain.above_0_9 - 0.5


def test_dating_reports_each_fingerprint(report: AuditReport, mixed_report: AuditReport) -> None:
    for r in (report, mixed_report):
        d = r.dating
        assert d.candidates > 50 and d.chance_exact == pytest.approx(1 / d.candidates)
        assert d.exact == max(m.exact for m in (d.matrix, d.spectrum, d.groups) if m)
        assert d.within_one_week >= d.exact
    assert report.dating.groups is None and mixed_report.dating.groups is not None
    assert report.dating.matrix.exact > 0.5  # same panel, exact fingerprints


def test_frontier_covers_mixing_and_subsampling(report: AuditReport) -> None:
    points = report.frontier
    assert points is not None and len(points) == 6
    assert {(p.mixing, p.subsample) for p in points} == {
        (m, s) for m in (False, True) for s in (None, (0.85, 0.95), (0.5, 0.7))
    }
    for p in points:
        assert 0 <= p.case_b_top1 <= 1 and 0 <= p.case_a_top1 <= 1
        assert p.chance_top1 < 0.05
    off = [p for p in points if not p.mixing]
    on = [p for p in points if p.mixing]
    assert min(p.semantics_above_0_9 for p in off) > max(p.semantics_above_0_9 for p in on)


def test_report_round_trips_to_json_and_writes_three_files(
    report: AuditReport, tmp_path: Path
) -> None:
    payload = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert AuditReport.from_json(payload) == report
    paths = report.write(tmp_path / "audit")
    assert [p.name for p in paths] == ["audit.json", "audit.md", "reidentification.png"]
    assert json.loads(paths[0].read_text()) == report.to_json()
    markdown = paths[1].read_text()
    assert markdown == report.to_markdown()
    for heading in ("Gate:", "L1 cross-era linkage", "L4 era dating", "L6 side channels",
                    "Privacy frontier", "example model validation CORR"):  # fmt: skip
        assert heading in markdown
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_max_rows_and_seed_shape_the_sample(plain: AuditInput) -> None:
    with one_thread():
        told: list[tuple[str, int, int]] = []
        small = run_audit(
            plain,
            eras=2,
            max_rows=40,
            frontier=False,
            seed=3,
            progress=lambda what, done, total: told.append((what, done, total)),
        )
        again = run_audit(plain, eras=2, max_rows=40, frontier=False, seed=3)
    steps = AUDIT_STEPS[:-1]  # no frontier
    assert told == [*((step, k, len(steps)) for k, step in enumerate(steps)), ("done", 6, 6)]
    assert small == again.model_copy(update={"timings": small.timings})
    assert all(n <= 40 for n in small.meta.rows_per_era)
    assert all(e.candidates <= 40 for e in small.reidentification.estimated.eras)
    assert all(p.candidates <= 40 for p in small.linkage.pairs)
    assert small.frontier is None


def test_a_written_version_audits_like_the_build(tmp_path: Path) -> None:
    source = SyntheticSource(market=MARKET.model_copy(update={"n_stocks": 60, "n_weeks": 110}))
    cfg = config()
    with one_thread():
        version, built = build_version(
            source, cfg, KEYS, tmp_path / "datasets", tmp_path / "operator", version="v1"
        )
        panel = synthetic_panel(source.market)
        from_disk = run_audit(AuditInput.from_version(version, panel), eras=2, frontier=False)
        in_memory = run_audit(AuditInput.from_built(built, panel, cfg), eras=2, frontier=False)
    assert from_disk.meta == in_memory.meta
    assert from_disk.reidentification == in_memory.reidentification
    assert from_disk.side_channels == in_memory.side_channels
    assert from_disk.example_validation_corr == pytest.approx(in_memory.example_validation_corr)


def test_a_panel_that_does_not_match_the_dataset_is_refused(plain: AuditInput) -> None:
    other = synthetic_panel(MARKET.model_copy(update={"n_stocks": 50}))
    with pytest.raises(ValueError, match="does not match"):
        run_audit(replace(plain, panel=other), eras=1, frontier=False)
