"""Running the attacks on a dataset and assembling the report."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from threadpoolctl import threadpool_limits

from crowdquant.data.audit import dating, linkage, reidentify, semantics, side_channels
from crowdquant.data.audit.frontier import (
    privacy_frontier,
    setting_label,
    small_universe_repeats,
)
from crowdquant.data.audit.inputs import AuditInput, AuditSample, sample_eras
from crowdquant.data.audit.library import PublicEra, PublicLibrary, correlation
from crowdquant.data.audit.report import (
    AuditMeta,
    AuditReport,
    CheckResult,
    DatingMethod,
    DatingResult,
    EraReid,
    FrontierEntry,
    GateResult,
    LinkageResult,
    PairLinkage,
    ReidCase,
    ReidResult,
    SemanticsResult,
    SideChannelResult,
)
from crowdquant.data.splits import LIVE

DEFAULT_THRESHOLD = 0.05
AUDIT_STEPS = (
    "sampling eras",
    "linkage",
    "re-identification",
    "semantics",
    "dating",
    "side channels",
    "frontier",
)
"""What an audit does, in order (the frontier only when asked), for a progress callback."""
Progress = Callable[[str, int, int], None]
"""Told (what runs now, steps done, steps in all) before each step, and once when done."""
SEMANTICS_GATE = 0.10  # suggested: at most 10 % of features recoverable at |ρ| > 0.9
CORRESPONDENCE_ERAS = 64  # published eras / public dates pooled to match features

ASSUMPTIONS = [
    "Kerckhoffs attacker: knows the pipeline, the feature definitions and the configuration, "
    "not the keys.",
    "The attacker's public data is the operator's raw panel itself (same prices, same universe).",
    "L2 and L3 take each era's date as known (an upper bound; L4 measures how far it can be "
    "found).",
    "L2 case (a), the upper bound: the better, by ground truth, of the operator's feature map "
    "and a linear map from public signals to released features fitted on ground-truth-aligned "
    "rows; with mixing and too few rows for the map, each released feature's best |Spearman| "
    "public signal on those rows, with its sign.",
    "L2 case (b), no ground truth: the feature correspondence comes from graph matching of the "
    f"released features' correlation matrix (mean over ≤ {CORRESPONDENCE_ERAS} published eras) "
    f"against the public library's (mean over ≤ {CORRESPONDENCE_ERAS} weekly dates), within "
    "published feature groups of equal size; the rows so matched then train a linear map "
    "(ridge, on mutual-nearest pairs pooled over the sampled eras), kept when the attacker's "
    "own confidence measure (share of mutual-nearest pairs) improves.",
    "L3 is measured on ground-truth-aligned rows, as after a successful re-identification "
    "(an upper bound).",
    "L4 uses no date knowledge: it matches every sampled era against every weekly date of the "
    "panel; the headline figure is the best of its fingerprints.",
    "Row-level attacks use at most max_rows sampled stocks per era; the candidate tickers are "
    "the publicly eligible ones among the same sampled stocks (chance = 1 / candidates).",
]


@contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """The audit's matrix products are small: one BLAS thread is as fast on an idle machine
    and many times faster on a busy one (no waiting for worker threads to be scheduled)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@dataclass
class _Audit:
    """The shared state of one audit: the sample, the public library, the correspondences."""

    data: AuditInput
    sample: AuditSample
    library: PublicLibrary
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def start(cls, data: AuditInput, eras: int, max_rows: int, seed: int) -> _Audit:
        t = time.perf_counter()
        sample = sample_eras(data, eras, max_rows, seed)
        library = PublicLibrary(data.panel, data.config.anonymisation.missing_bin)
        audit = cls(data, sample, library)
        audit.timings["sample"] = time.perf_counter() - t
        return audit

    def _timed(self, name: str, start: float) -> None:
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start

    @property
    def mixing(self) -> bool:
        return self.data.config.anonymisation.mixing

    @cached_property
    def public(self) -> list[PublicEra]:
        """The library on each attacked era's date."""
        t = time.perf_counter()
        days = np.array([s.day for s in self.sample.attacked])
        out = list(self.library.eras(days))
        self._timed("library", t)
        return out

    @cached_property
    def library_corr(self) -> np.ndarray:
        t = time.perf_counter()
        out = self.library.mean_binned_correlation(CORRESPONDENCE_ERAS)
        self._timed("library", t)
        return out

    @cached_property
    def released_corr(self) -> np.ndarray:
        """Mean feature-feature correlation of the bins over evenly spread published eras."""
        frames = [f for s, f in self.data.frames.items() if len(f) and s != LIVE]
        labels = sorted({str(e) for f in frames for e in f["era"].unique()})
        picks = np.unique(
            np.linspace(0, len(labels) - 1, min(CORRESPONDENCE_ERAS, len(labels))).round()
        ).astype(int)
        chosen = {labels[i] for i in picks}
        total, used = np.zeros((len(self.data.features),) * 2), 0
        for frame in frames:
            rows = frame[frame["era"].isin(chosen)]
            for _, era in rows.groupby("era"):
                if len(era) >= 3:
                    total += correlation(era[self.data.features].to_numpy(np.float32))
                    used += 1
        return total / max(used, 1)

    @cached_property
    def estimated(self) -> reidentify.Correspondence:
        t = time.perf_counter()
        out = reidentify.estimate_correspondence(
            self.released_corr,
            self.library_corr,
            self.data.group_labels(),
            self.library.groups,
            signed=not self.mixing,
        )
        self._timed("correspondence", t)
        return out

    @cached_property
    def aligned(self) -> list[np.ndarray]:
        """The library's Gaussian scores of each attacked era's kept rows (ground truth)."""
        return [
            p.gaussian[p.rows(s.kept_tickers)]
            for s, p in zip(self.sample.attacked, self.public, strict=True)
        ]

    @cached_property
    def cross(self) -> np.ndarray:
        """(features, signals) Spearman on ground-truth-aligned rows, mean over eras."""
        return semantics.mean_spearman([s.kept_bins for s in self.sample.attacked], self.aligned)

    @cached_property
    def true_correspondence(self) -> reidentify.Correspondence | None:
        return reidentify.known_correspondence(
            self.data.features, self.data.feature_map, self.library.names
        )

    @cached_property
    def targets(self) -> list[reidentify.EraTarget]:
        out = []
        for s, p in zip(self.sample.attacked, self.public, strict=True):
            candidates = self.sample.subset[p.tickers]
            out.append(
                reidentify.EraTarget.build(
                    s.kept_bins, s.kept_tickers, p.tickers[candidates], p.gaussian[candidates]
                )
            )
        return out

    def attack_known(self) -> reidentify.Attack:
        t = time.perf_counter()
        fallback = reidentify.correlated_correspondence(self.cross)
        out = reidentify.attack_known(self.targets, self.true_correspondence, fallback)
        self._timed("reidentification", t)
        return out

    def attack_estimated(self) -> reidentify.Attack:
        corr = self.estimated
        t = time.perf_counter()
        out = reidentify.attack_estimated(self.targets, corr, try_flip=self.mixing)
        self._timed("reidentification", t)
        return out


def _case(
    label: str, scores: list[reidentify.ReidScores], eras: list[str], accuracy: float | None
) -> ReidCase:
    def mean(name: str) -> float:
        return float(np.mean([getattr(s, name) for s in scores]))

    return ReidCase(
        correspondence=label,
        correspondence_accuracy=accuracy,
        top1=mean("top1"),
        top1_nearest=mean("top1_nearest"),
        top10=mean("top10"),
        mrr=mean("mrr"),
        chance_top1=mean("chance_top1"),
        chance_top10=mean("chance_top10"),
        chance_mrr=mean("chance_mrr"),
        eras=[
            EraReid(
                era=e,
                top1=s.top1,
                top1_nearest=s.top1_nearest,
                top10=s.top10,
                mrr=s.mrr,
                rows=s.rows,
                candidates=s.candidates,
            )
            for e, s in zip(eras, scores, strict=True)
        ],
    )


def _linkage(audit: _Audit) -> LinkageResult:
    t = time.perf_counter()
    eras = audit.sample.eras
    pairs: list[PairLinkage] = []
    assignments: list[np.ndarray] = []
    for a, b in itertools.pairwise(eras):
        rates, assigned = linkage.link_rates(
            a.kept_bins, a.kept_tickers, b.kept_bins, b.kept_tickers
        )
        assignments.append(assigned)
        pairs.append(
            PairLinkage(
                era=a.label,
                next_era=b.label,
                nearest=rates.nearest,
                hungarian=rates.hungarian,
                common=rates.common,
                candidates=rates.candidates,
                chance=rates.chance,
            )
        )
    chain = linkage.chain_rates([e.kept_tickers for e in eras], assignments) if pairs else []
    audit._timed("linkage", t)
    hungarian = float(np.mean([p.hungarian for p in pairs])) if pairs else 0.0
    return LinkageResult(
        nearest=float(np.mean([p.nearest for p in pairs])) if pairs else 0.0,
        hungarian=hungarian,
        chance=float(np.mean([p.chance for p in pairs])) if pairs else 0.0,
        pairs=pairs,
        chain=chain,
        chain_length_to_half=linkage.chain_length_to_half(chain),
        warning=hungarian > 0.5,
    )


def _reidentification(audit: _Audit) -> ReidResult:
    eras = [s.label for s in audit.sample.attacked]
    truth = audit.true_correspondence
    known = audit.attack_known()
    estimated = audit.attack_estimated()
    known_label = {
        "feature map": "given by the operator's feature map",
        "linear map fitted on ground-truth rows": "the best linear map from public signals to "
        "released features, fitted on ground-truth-aligned rows",
        "best-correlated signal on ground-truth rows": "mixing on: each released feature's "
        "best |Spearman| public signal on ground-truth-aligned rows, signed",
    }[known.method] + " (upper bound)"
    estimated_label = (
        "estimated without ground truth: correlation-matrix graph matching"
        + (
            " on |ρ|, signs by agreement, global sign by the cheaper matching"
            if audit.mixing
            else ""
        )
        + (
            "; then a linear map self-trained on the attacker's own confident matches"
            if "self-trained" in estimated.method
            else ""
        )
    )
    accuracy_b = None if truth is None else audit.estimated.accuracy(truth)
    return ReidResult(
        date_known=True,
        known=_case(
            known_label, known.scores, eras, 1.0 if known.method == "feature map" else None
        ),
        estimated=_case(estimated_label, estimated.scores, eras, accuracy_b),
    )


def _semantics(audit: _Audit) -> SemanticsResult:
    t = time.perf_counter()
    found = semantics.feature_semantics(audit.cross)
    truth = audit.true_correspondence
    above = found.fraction_above(0.9)
    audit._timed("semantics", t)
    return SemanticsResult(
        features=len(found.max_abs_rho),
        above_0_9=above,
        above_0_7=found.fraction_above(0.7),
        mean_max_abs_rho=float(found.max_abs_rho.mean()),
        median_max_abs_rho=float(np.median(found.max_abs_rho)),
        source_recovered=None if truth is None else found.source_recovered(truth.columns),
        passed=above <= SEMANTICS_GATE,
    )


def _dating(audit: _Audit) -> DatingResult:
    corr = audit.estimated
    t = time.perf_counter()
    attacked = audit.sample.attacked
    released = [correlation(s.bins) for s in attacked]
    library = audit.library
    candidates = (correlation(p.bins) for p in library.eras(library.candidate_days, cache=False))
    groups = (
        dating.matched_groups(audit.data.group_labels(), library.groups, corr)
        if audit.mixing
        else None
    )
    dists = dating.dating_distances(released, candidates, corr, groups)
    truth = np.array([s.grid_index for s in attacked])
    numbers = np.array([int(s.label) for s in attacked])
    scores = {name: dating.score_dating(d, truth, numbers) for name, d in dists.items()}
    audit._timed("dating", t)

    def method(s: dating.DatingScores) -> DatingMethod:
        return DatingMethod(
            exact=s.exact,
            within_one_week=s.within_one_week,
            joint_exact=s.joint_exact,
            joint_within_one_week=s.joint_within_one_week,
        )

    first = scores["matrix"]
    return DatingResult(
        candidates=first.candidates,
        chance_exact=first.chance_exact,
        chance_within_one_week=first.chance_within_one_week,
        matrix=method(scores["matrix"]),
        spectrum=method(scores["spectrum"]),
        groups=method(scores["groups"]) if "groups" in scores else None,
        exact=max(s.exact for s in scores.values()),
        within_one_week=max(s.within_one_week for s in scores.values()),
    )


def _side_channels(audit: _Audit) -> SideChannelResult:
    t = time.perf_counter()
    checks = side_channels.checklist(audit.data)
    audit._timed("side_channels", t)
    return SideChannelResult(
        passed=all(c.passed for c in checks),
        checks=[
            CheckResult(name=c.name, passed=c.passed, detail=c.detail, value=c.value)
            for c in checks
        ],
    )


def _frontier(audit: _Audit, seed: int) -> list[FrontierEntry]:
    t = time.perf_counter()
    repeats = small_universe_repeats(int(audit.sample.subset.sum()))
    points = privacy_frontier(
        audit.library,
        np.array([s.day for s in audit.sample.attacked]),
        audit.sample.subset,
        audit.data.config.anonymisation.missing_bin,
        audit.library_corr,
        seed,
        repeats=repeats,
    )
    audit._timed("frontier", t)
    return [
        FrontierEntry(
            label=setting_label(p.mixing, p.subsample),
            keys=repeats,
            mixing=p.mixing,
            subsample=p.subsample,
            case_a_top1=p.case_a_top1,
            case_b_top1=p.case_b_top1,
            chance_top1=p.chance_top1,
            semantics_above_0_9=p.semantics_above_0_9,
        )
        for p in points
    ]


def _meta(audit: _Audit, max_rows: int, seed: int) -> AuditMeta:
    data, attacked = audit.data, audit.sample.attacked
    published = {str(e) for f in data.frames.values() if len(f) for e in f["era"].unique()}
    anon = data.config.anonymisation
    return AuditMeta(
        source=data.panel.name,
        tickers=len(data.panel.tickers),
        features=len(data.features),
        published_eras=len(published),
        sampled_eras=[s.label for s in attacked],
        sampled_dates=[s.date for s in attacked],
        sampled_split=attacked[0].split,
        rows_per_era=[int(s.kept.sum()) for s in attacked],
        max_rows=max_rows,
        seed=seed,
        mixing=anon.mixing,
        subsample=anon.subsample,
        config_hash=data.config.digest(),
        assumptions=ASSUMPTIONS,
    )


def run_audit(
    data: AuditInput,
    *,
    eras: int = 5,
    max_rows: int = 1000,
    frontier: bool = True,
    seed: int = 0,
    threshold: float = DEFAULT_THRESHOLD,
    progress: Progress | None = None,
) -> AuditReport:
    """Run every attack on a few sampled eras of a dataset; see the package docstring.
    `progress` is told each step as it starts (`AUDIT_STEPS`) and the end."""
    with _single_threaded_blas():
        return _run_audit(data, eras, max_rows, frontier, seed, threshold, progress)


def _run_audit(
    data: AuditInput,
    eras: int,
    max_rows: int,
    frontier: bool,
    seed: int,
    threshold: float,
    progress: Progress | None,
) -> AuditReport:
    start = time.perf_counter()
    steps = AUDIT_STEPS if frontier else AUDIT_STEPS[:-1]

    def step(done: int) -> None:
        if progress is not None:
            progress(steps[done] if done < len(steps) else "done", done, len(steps))

    step(0)
    audit = _Audit.start(data, eras, max_rows, seed)
    step(1)
    link = _linkage(audit)
    step(2)
    reid = _reidentification(audit)
    step(3)
    sem = _semantics(audit)
    step(4)
    dated = _dating(audit)
    step(5)
    sides = _side_channels(audit)
    points = None
    if frontier:
        step(6)
        points = _frontier(audit, seed)
    step(len(steps))
    gate_value = reid.estimated.top1
    audit.timings["total"] = time.perf_counter() - start
    corr = data.example_validation_corr
    return AuditReport(
        meta=_meta(audit, max_rows, seed),
        gate=GateResult(
            metric="single-era re-identification, top-1, case (b)",
            value=gate_value,
            threshold=threshold,
            passed=gate_value <= threshold,
        ),
        example_validation_corr=None if corr is None or not np.isfinite(corr) else float(corr),
        linkage=link,
        reidentification=reid,
        semantics=sem,
        dating=dated,
        side_channels=sides,
        frontier=points,
        timings={k: round(v, 3) for k, v in audit.timings.items()},
    )


def single_era_reidentification(data: AuditInput, eras: int = 3) -> float:
    """The build gate's number: mean single-era top-1 re-identification, case (b)."""
    with _single_threaded_blas():
        audit = _Audit.start(data, eras, max_rows=1000, seed=0)
        return float(np.mean([s.top1 for s in audit.attack_estimated().scores]))
