"""The audit report: JSON (round-trips), Markdown and the re-identification plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

JSON_NAME, MARKDOWN_NAME, PLOT_NAME = "audit.json", "audit.md", "reidentification.png"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AuditMeta(_Model):
    source: str
    tickers: int
    features: int
    published_eras: int
    sampled_eras: list[str]
    sampled_dates: list[str]
    sampled_split: str
    rows_per_era: list[int]
    max_rows: int
    seed: int
    mixing: bool
    subsample: tuple[float, float] | None
    config_hash: str
    assumptions: list[str]


class GateResult(_Model):
    metric: str
    value: float
    threshold: float
    passed: bool


class PairLinkage(_Model):
    era: str
    next_era: str
    nearest: float
    hungarian: float
    common: int
    candidates: int
    chance: float


class LinkageResult(_Model):
    nearest: float
    hungarian: float
    chance: float
    pairs: list[PairLinkage]
    chain: list[float]  # success after k = 1, 2, ... links
    chain_length_to_half: int
    warning: bool  # > 50 %: stocks can be tracked across eras


class EraReid(_Model):
    era: str
    top1: float
    top1_nearest: float
    top10: float
    mrr: float
    rows: int
    candidates: int


class ReidCase(_Model):
    correspondence: str
    correspondence_accuracy: float | None  # share of features matched to their true source
    top1: float
    top1_nearest: float
    top10: float
    mrr: float
    chance_top1: float
    chance_top10: float
    chance_mrr: float
    eras: list[EraReid]


class ReidResult(_Model):
    date_known: bool
    known: ReidCase  # case (a)
    estimated: ReidCase  # case (b)


class SemanticsResult(_Model):
    features: int
    above_0_9: float
    above_0_7: float
    mean_max_abs_rho: float
    median_max_abs_rho: float
    source_recovered: float | None
    passed: bool  # the suggested gate: at most 10 % of features above 0.9


class DatingMethod(_Model):
    exact: float
    within_one_week: float
    joint_exact: bool
    joint_within_one_week: bool


class DatingResult(_Model):
    candidates: int
    chance_exact: float
    chance_within_one_week: float
    matrix: DatingMethod
    spectrum: DatingMethod
    groups: DatingMethod | None  # run when mixing is on
    exact: float  # the best method
    within_one_week: float


class CheckResult(_Model):
    name: str
    passed: bool
    detail: str
    value: float | None = None


class SideChannelResult(_Model):
    passed: bool
    checks: list[CheckResult]


class FrontierEntry(_Model):
    label: str
    keys: int  # fresh keys averaged over
    mixing: bool
    subsample: tuple[float, float] | None
    case_a_top1: float
    case_b_top1: float
    chance_top1: float
    semantics_above_0_9: float


class AuditReport(_Model):
    meta: AuditMeta
    gate: GateResult
    example_validation_corr: float | None
    linkage: LinkageResult
    reidentification: ReidResult
    semantics: SemanticsResult
    dating: DatingResult
    side_channels: SideChannelResult
    frontier: list[FrontierEntry] | None
    timings: dict[str, float]

    @property
    def passed(self) -> bool:
        """The build gate: single-era re-identification (case b) within the threshold."""
        return self.gate.passed

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> AuditReport:
        return cls.model_validate(payload)

    def to_markdown(self) -> str:
        return render_markdown(self)

    def write(self, directory: Path) -> list[Path]:
        directory.mkdir(parents=True, exist_ok=True)
        paths = [directory / JSON_NAME, directory / MARKDOWN_NAME, directory / PLOT_NAME]
        paths[0].write_text(json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n")
        paths[1].write_text(self.to_markdown())
        plot_reidentification(self, paths[2])
        return paths


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


def render_markdown(r: AuditReport) -> str:
    m, g = r.meta, r.gate
    reid, ln, sem, dt = r.reidentification, r.linkage, r.semantics, r.dating
    a, b = reid.known, reid.estimated
    corr = "—" if r.example_validation_corr is None else f"{r.example_validation_corr:+.4f}"
    lines = [
        f"# Leakage audit — {m.source}",
        "",
        f"**Gate: {'PASS' if g.passed else 'FAIL'}** — {g.metric} = {_pct(g.value)} "
        f"(threshold {_pct(g.threshold)}).  ",
        f"**Side channels: {'PASS' if r.side_channels.passed else 'FAIL'}.**  ",
        f"Utility: example model validation CORR = {corr}.",
        "",
        f"Sampled {len(m.sampled_eras)} {m.sampled_split} eras ({', '.join(m.sampled_eras)}; "
        f"{', '.join(str(n) for n in m.rows_per_era)} rows used, at most {m.max_rows}), "
        f"{m.features} features, {m.tickers} tickers in the panel, seed {m.seed}; "
        f"mixing {'on' if m.mixing else 'off'}, subsample {m.subsample or 'none'}.",
        "",
        "| Attack | Result | Chance |",
        "|---|---|---|",
        f"| L1 cross-era linkage (Hungarian / NN) | {_pct(ln.hungarian)} / {_pct(ln.nearest)} "
        f"| {_pct(ln.chance)} |",
        f"| L2 re-id (a) known correspondence: top-1 / top-10 / MRR | {_pct(a.top1)} / "
        f"{_pct(a.top10)} / {a.mrr:.3f} | {_pct(a.chance_top1)} / {_pct(a.chance_top10)} / "
        f"{a.chance_mrr:.3f} |",
        f"| L2 re-id (b) estimated correspondence: top-1 / top-10 / MRR | {_pct(b.top1)} / "
        f"{_pct(b.top10)} / {b.mrr:.3f} | {_pct(b.chance_top1)} / {_pct(b.chance_top10)} / "
        f"{b.chance_mrr:.3f} |",
        f"| L3 semantics: features with max abs ρ > 0.9 / > 0.7 | {_pct(sem.above_0_9)} / "
        f"{_pct(sem.above_0_7)} | — |",
        f"| L4 dating: exact / ±1 week | {_pct(dt.exact)} / {_pct(dt.within_one_week)} "
        f"| {_pct(dt.chance_exact)} / {_pct(dt.chance_within_one_week)} |",
        f"| L6 side channels | {sum(c.passed for c in r.side_channels.checks)} of "
        f"{len(r.side_channels.checks)} checks pass | — |",
        f"| U example model validation CORR | {corr} | 0 |",
        "",
        "## Assumptions",
        "",
        *[f"- {x}" for x in m.assumptions],
        "",
        "## L1 cross-era linkage",
        "",
        "| Era → next | NN | Hungarian | Stocks in both | Candidates | Chance |",
        "|---|---|---|---|---|---|",
        *[
            f"| {p.era} → {p.next_era} | {_pct(p.nearest)} | {_pct(p.hungarian)} | {p.common} | "
            f"{p.candidates} | {_pct(p.chance)} |"
            for p in ln.pairs
        ],
        "",
        "Chained links (k eras ahead): "
        + ", ".join(f"k={k}: {_pct(x)}" for k, x in enumerate(ln.chain, start=1))
        + f"; chain length still ≥ 50 %: {ln.chain_length_to_half}."
        + (" **Warning: stocks can be tracked across eras.**" if ln.warning else ""),
        "",
        "## L2 re-identification (era date assumed known)",
        "",
        f"- (a) {a.correspondence}; correspondence accuracy {_pct(a.correspondence_accuracy)}.",
        f"- (b) {b.correspondence}; correspondence accuracy {_pct(b.correspondence_accuracy)}.",
        "",
        "| Era | (a) top-1 | (a) top-10 | (a) MRR | (b) top-1 | (b) top-10 | (b) MRR | Rows | "
        "Candidates |",
        "|---|---|---|---|---|---|---|---|---|",
        *[
            f"| {ea.era} | {_pct(ea.top1)} | {_pct(ea.top10)} | {ea.mrr:.3f} | {_pct(eb.top1)} | "
            f"{_pct(eb.top10)} | {eb.mrr:.3f} | {ea.rows} | {ea.candidates} |"
            for ea, eb in zip(a.eras, b.eras, strict=True)
        ],
        "",
        "## L3 feature semantics",
        "",
        f"{sem.features} features; max abs Spearman against the public library: mean "
        f"{sem.mean_max_abs_rho:.3f}, median {sem.median_max_abs_rho:.3f}; "
        f"> 0.9: {_pct(sem.above_0_9)}, > 0.7: {_pct(sem.above_0_7)}; best match is the true "
        f"source for {_pct(sem.source_recovered)}. Suggested gate (≤ 10 % above 0.9): "
        f"{'pass' if sem.passed else 'fail'}.",
        "",
        "## L4 era dating",
        "",
        f"{dt.candidates} candidate weeks.",
        "",
        "| Fingerprint | Exact | ±1 week | Joint offset exact | Joint ±1 week |",
        "|---|---|---|---|---|",
        *[
            f"| {name} | {_pct(x.exact)} | {_pct(x.within_one_week)} | "
            f"{'yes' if x.joint_exact else 'no'} | {'yes' if x.joint_within_one_week else 'no'} |"
            for name, x in (
                ("correlation matrix", dt.matrix),
                ("eigenvalue spectrum", dt.spectrum),
                ("group canonical correlations", dt.groups),
            )
            if x is not None
        ],
        "",
        "## L6 side channels",
        "",
        "| Check | Result | Detail |",
        "|---|---|---|",
        *[
            f"| {c.name} | {'pass' if c.passed else '**FAIL**'} | {c.detail} |"
            for c in r.side_channels.checks
        ],
        "",
    ]
    if r.frontier:
        lines += [
            "## Privacy frontier (same eras re-encoded under fresh keys)",
            "",
            f"Averaged over {r.frontier[0].keys} key(s) per setting.",
            "",
            "| Setting | Re-id (b) top-1 | Re-id (a) top-1 | Chance | Semantics > 0.9 |",
            "|---|---|---|---|---|",
            *[
                f"| {p.label} | {_pct(p.case_b_top1)} | {_pct(p.case_a_top1)} | "
                f"{_pct(p.chance_top1)} | {_pct(p.semantics_above_0_9)} |"
                for p in r.frontier
            ],
            "",
        ]
    lines += [
        "## Runtime",
        "",
        ", ".join(f"{k} {v:.2f} s" for k, v in r.timings.items()),
        "",
    ]
    return "\n".join(lines)


def plot_reidentification(r: AuditReport, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if r.frontier:
        subs: list[tuple[float, float] | None] = []
        for p in r.frontier:
            if p.subsample not in subs:
                subs.append(p.subsample)
        xs = list(range(len(subs)))
        labels = ["none" if s is None else f"{s[0]:.0%}–{s[1]:.0%}" for s in subs]
        for mixing, colour in ((False, "tab:blue"), (True, "tab:orange")):
            pts = sorted(
                ((subs.index(p.subsample), p) for p in r.frontier if p.mixing == mixing),
                key=lambda t: t[0],
            )
            if not pts:
                continue
            name = f"mixing {'on' if mixing else 'off'}"
            ax.plot(
                [x for x, _ in pts],
                [p.case_b_top1 for _, p in pts],
                "o-",
                color=colour,
                label=f"{name}: (b) estimated correspondence",
            )
            ax.plot(
                [x for x, _ in pts],
                [p.case_a_top1 for _, p in pts],
                "s--",
                color=colour,
                alpha=0.6,
                label=f"{name}: (a) known correspondence",
            )
        chance = max(p.chance_top1 for p in r.frontier)
        ax.set_xticks(xs, labels)
        ax.set_xlabel("per-era universe sub-sampling")
        if r.meta.subsample in subs:
            ax.plot(
                [subs.index(r.meta.subsample)],
                [r.gate.value],
                "k*",
                markersize=14,
                label="published data, case (b)",
            )
    else:
        a, b = r.reidentification.known, r.reidentification.estimated
        ax.bar([0, 1], [a.top1, b.top1], color=["tab:blue", "tab:orange"])
        ax.set_xticks([0, 1], ["(a) known correspondence", "(b) estimated"])
        chance = b.chance_top1
    ax.axhline(chance, color="grey", linestyle=":", label="chance (1/n)")
    ax.axhline(
        r.gate.threshold,
        color="red",
        linestyle="-",
        linewidth=1,
        label=f"gate threshold {r.gate.threshold:.0%}",
    )
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("single-era top-1 re-identification")
    ax.set_title(f"Re-identification — {r.meta.source}")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
