"""Resolution: a round's final scores, through its payout rule, into the ledger.

When a round resolves (`resolve_payouts`, in the same database transaction as its status
change), its payout rule (`Round.payout_rule`, fixed at open) turns the stakes frozen at
close and the final scores into rewards and burns:

- classic: each stake at risk earns or loses `payouts.classic_payouts` of it; rewards come
  from the treasury, into the stake (compounding) or the owner's wallet (`PayoutMode`);
  burns go to the sink, from the stake first, then from the model's pending release;
- 2017: `payouts.legacy_payouts`; losing stakes are burned, the others returned to the
  wallet; USD awards (auction) and prizes (by rank) come from the tournament's prize pool,
  NMR prizes from the treasury. The gates read the day-0 `originality_2017` and the
  consistency and concordance measured on the counting upload (`legacy_checks`).

Rewards are scaled down pro rata when the treasury (or the prize pool) cannot pay them all,
and the scaling is recorded. Every (round, model) gets one `RoundPayout` row and its ledger
postings under the keys `payout:<round>:<model>` (NMR) and `payout-usd:<round>:<model>`
(USD); the round gets its `RoundResult`. All of it commits together or not at all, so a
crash anywhere leaves the round unresolved and the next try starts clean; a round already
resolved is never paid twice (the result row, the unique payout rows and the ledger's
idempotent keys each refuse it). `plan_payouts` computes the same figures without writing,
for the replay.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crowdquant.clock import Clock
from crowdquant.db.models import (
    Model,
    PayoutMode,
    Round,
    RoundPayout,
    RoundResult,
    RoundScore,
    RoundStake,
    RoundStatus,
    Rules,
    Submission,
    SubmissionCheck,
    SubmissionStatus,
    Tournament,
)
from crowdquant.ledger import (
    BURNED,
    TREASURY,
    AccountId,
    Currency,
    Ledger,
    Posting,
    format_amount,
    prize_pool,
    release,
    stake,
    transfer,
    wallet,
)
from crowdquant.payouts import (
    ClassicEntry,
    ClassicRule,
    Legacy2017Rule,
    LegacyEntry,
    PayoutRule,
    classic_payouts,
    default_rule,
    legacy_payouts,
    passes_gates,
    rule_from_data,
    scale_to,
)
from crowdquant.tournament.scoring import days_recorded, scored_submissions
from crowdquant.tournament.staking import release_due

Checkpoint = Callable[[str], None]
"""Called between the steps of a resolution with the step's name (tests inject crashes)."""
FULL = "full"


def _no_checkpoint(step: str) -> None:
    del step


def round_rule(round_: Round) -> PayoutRule:
    """The rule `round_` resolves by (the default of its kind if none was recorded)."""
    if round_.payout_rule:
        return rule_from_data(round_.payout_rule)
    return default_rule(round_.tournament.rules.value)


# --- the plan: pure figures from the stored stakes and scores ------------------------------------


@dataclass(frozen=True)
class PlannedPayout:
    model_id: uuid.UUID
    owner_id: uuid.UUID
    at_risk: int
    reward: int
    """NMR the rule awards, before any pro rata scaling (prize NMR under 2017 rules)."""
    burn: int
    usd: int
    """USD cents the rule awards, before scaling."""
    returned: int = 0
    """2017 rules: the round's stake going back to the wallet."""
    to_wallet: bool = True
    """Where the reward goes: the owner's wallet, or the model's stake (compounding)."""
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    rule: PayoutRule
    payouts: list[PlannedPayout]
    participants: int
    stakers: int
    at_risk: int
    payout_factor: str | None


def plan_payouts(session: Session, round_: Round) -> Plan:
    """What `round_`'s rule pays and burns, from its frozen stakes and final stored scores."""
    rule = round_rule(round_)
    participants = _participants(session, round_)
    stakes = {
        row.model_id: row
        for row in session.scalars(select(RoundStake).where(RoundStake.round_id == round_.id))
        if row.at_risk > 0
    }
    models = {
        model.id: model
        for model in session.scalars(select(Model).where(Model.id.in_(participants | set(stakes))))
    }
    scores = _final_scores(session, round_)
    at_risk = sum(row.at_risk for row in stakes.values())
    if isinstance(rule, ClassicRule):
        planned, factor = _plan_classic(rule, stakes, scores, models)
    else:
        gates = _upload_gates(session, round_)
        for model_id, measured in gates.items():
            scores[model_id] = {**measured, **scores.get(model_id, {})}
        planned, factor = _plan_legacy(rule, participants, stakes, scores, models), None
    return Plan(rule, planned, len(participants), len(stakes), at_risk, factor)


UPLOAD_GATES = {"consistency": "consistency", "concordance": "concordance"}
"""2017 gates measured at upload (`legacy_checks`), by the score name the rule reads. The
day-0 `originality_2017` judges originality: it compares the on-time uploads at the close,
where the upload's own originality saw only those that came before it."""


def _upload_gates(session: Session, round_: Round) -> dict[uuid.UUID, dict[str, float]]:
    """Each on-time model's gates as measured on the upload it is scored by."""
    counting = {
        scored.submission_id: scored.model_id
        for scored in scored_submissions(session, round_)
        if not scored.late
    }
    gates: dict[uuid.UUID, dict[str, float]] = {}
    for submission_id, metric, value in session.execute(
        select(SubmissionCheck.submission_id, SubmissionCheck.metric, SubmissionCheck.value).where(
            SubmissionCheck.submission_id.in_(list(counting)),
            SubmissionCheck.metric.in_(list(UPLOAD_GATES)),
        )
    ):
        if value is not None and not math.isnan(value):
            gates.setdefault(counting[submission_id], {})[UPLOAD_GATES[metric]] = value
    return gates


def _plan_classic(
    rule: ClassicRule,
    stakes: Mapping[uuid.UUID, RoundStake],
    scores: Mapping[uuid.UUID, dict[str, float]],
    models: Mapping[uuid.UUID, Model],
) -> tuple[list[PlannedPayout], str]:
    entries = [
        ClassicEntry(
            str(model_id),
            row.at_risk,
            scores.get(model_id, {}).get("corr"),
            scores.get(model_id, {}).get("mmc"),
        )
        for model_id, row in sorted(stakes.items())
    ]
    result = classic_payouts(rule, entries)
    factor = _decimal_text(result.payout_factor.numerator, result.payout_factor.denominator)
    planned = []
    for entry in entries:
        model_id = uuid.UUID(entry.key)
        amount = result.payouts[entry.key]
        planned.append(
            PlannedPayout(
                model_id=model_id,
                owner_id=models[model_id].account_id,
                at_risk=entry.at_risk,
                reward=max(amount, 0),
                burn=max(-amount, 0),
                usd=0,
                to_wallet=models[model_id].payout_mode is PayoutMode.WALLET,
                inputs={"corr": entry.corr, "mmc": entry.mmc, "payout_factor": factor},
            )
        )
    return planned, factor


def _plan_legacy(
    rule: Legacy2017Rule,
    participants: set[uuid.UUID],
    stakes: Mapping[uuid.UUID, RoundStake],
    scores: Mapping[uuid.UUID, dict[str, float]],
    models: Mapping[uuid.UUID, Model],
) -> list[PlannedPayout]:
    order = {
        model_id: k
        for k, model_id in enumerate(sorted(stakes, key=lambda m: (stakes[m].staked_at, str(m))))
    }
    entries = []
    for model_id in sorted(participants | set(stakes), key=str):
        measured = scores.get(model_id, {})
        row = stakes.get(model_id)
        entries.append(
            LegacyEntry(
                key=str(model_id),
                live_logloss=measured.get("logloss"),
                eligible=passes_gates(
                    rule,
                    consistency=measured.get("consistency"),
                    original=_gate(measured.get("originality_2017")),
                    concordant=_gate(measured.get("concordance")),
                ),
                stake=0 if row is None else row.at_risk,
                confidence=None if row is None else row.confidence,
                order=order.get(model_id, len(order)),
            )
        )
    planned = []
    for entry, outcome in zip(entries, legacy_payouts(rule, entries), strict=True):
        model_id = uuid.UUID(entry.key)
        planned.append(
            PlannedPayout(
                model_id=model_id,
                owner_id=models[model_id].account_id,
                at_risk=entry.stake,
                reward=outcome.prize_nmr,
                burn=outcome.burn,
                usd=outcome.award_usd + outcome.prize_usd,
                returned=outcome.returned,
                inputs={
                    "live_logloss": entry.live_logloss,
                    "eligible": entry.eligible,
                    "confidence": None if entry.confidence is None else str(entry.confidence),
                    "rank": outcome.rank,
                    "auction_award_usd": outcome.auction_award_usd,
                    "prize_usd": outcome.prize_usd,
                },
            )
        )
    return planned


def _gate(value: float | None) -> bool | None:
    return None if value is None else value >= 0.5


def _decimal_text(numerator: int, denominator: int) -> str:
    """An exact fraction as a decimal string (to 30 places if it does not terminate)."""
    value = Decimal(numerator) / Decimal(denominator)
    return f"{value.normalize():f}"


def _participants(session: Session, round_: Round) -> set[uuid.UUID]:
    return set(
        session.scalars(
            select(Submission.model_id).where(
                Submission.round_id == round_.id,
                Submission.status == SubmissionStatus.VALID,
                Submission.late.is_(False),
            )
        )
    )


def _final_scores(session: Session, round_: Round) -> dict[uuid.UUID, dict[str, float]]:
    """Each on-time model's scores on the last day scored (and its day-0 gates)."""
    last = days_recorded(session, round_)
    rows = session.execute(
        select(RoundScore.model_id, RoundScore.metric, RoundScore.value).where(
            RoundScore.round_id == round_.id,
            RoundScore.late.is_(False),
            RoundScore.day.in_({0, last}),
        )
    ).all()
    scores: dict[uuid.UUID, dict[str, float]] = {}
    for model_id, metric, value in rows:
        if value is None or math.isnan(value):
            continue
        scores.setdefault(model_id, {})[metric] = value
    return scores


# --- resolving: the plan, scaled, into the ledger ------------------------------------------------


def resolve_payouts(
    session: Session,
    ledger: Ledger,
    clock: Clock,
    round_: Round,
    *,
    checkpoint: Checkpoint = _no_checkpoint,
) -> RoundResult:
    """Pay and burn `round_`'s stakes by its rule, release what was waiting for it and record
    its result, once: a round already resolved returns its recorded result."""
    ledger.hold(session)  # the balances read here stay as read until the payouts are posted
    recorded = round_result(session, round_)
    if recorded is not None:
        return recorded
    plan = plan_payouts(session, round_)
    checkpoint("planned")
    pool = prize_pool(round_.tournament_id)
    treasury = ledger.balance(session, TREASURY, Currency.NMR)
    rewards, nmr_scale = _scaled(treasury, {p.model_id: p.reward for p in plan.payouts}, "nmr")
    pool_balance = ledger.balance(session, pool, Currency.USD)
    awards, usd_scale = _scaled(pool_balance, {p.model_id: p.usd for p in plan.payouts}, "usd")
    now = clock.now()
    paid = burned = usd_paid = 0
    for planned in plan.payouts:
        reward, usd = rewards[planned.model_id], awards[planned.model_id]
        key = f"payout:{round_.id}:{planned.model_id}"
        burn = _post_nmr(session, ledger, key, planned, reward)
        inputs = planned.inputs if burn == planned.burn else {**planned.inputs, "burn_cap": burn}
        if usd:
            ledger.post(
                session,
                f"payout-usd:{round_.id}:{planned.model_id}",
                Currency.USD,
                transfer(pool, wallet(planned.owner_id), usd),
                memo=f"round {round_.number}: USD award",
            )
        session.add(
            RoundPayout(
                round_id=round_.id,
                model_id=planned.model_id,
                at_risk=planned.at_risk,
                nmr=reward - burn,
                usd=usd,
                rule_version=plan.rule.version,
                inputs=inputs,
                event_key=key,
                resolved_at=now,
            )
        )
        paid, burned, usd_paid = paid + reward, burned + burn, usd_paid + usd
        checkpoint(f"paid {planned.model_id}")
    session.flush()
    release_due(session, ledger, clock, round_)
    checkpoint("released")
    result = RoundResult(
        round_id=round_.id,
        participants=plan.participants,
        stakers=plan.stakers,
        at_risk=plan.at_risk,
        usd_paid=usd_paid,
        nmr_paid=paid,
        nmr_burned=burned,
        payout_factor=plan.payout_factor,
        scale=",".join(s for s in (nmr_scale, usd_scale) if s) or FULL,
        resolved_at=now,
    )
    session.add(result)
    session.flush()
    checkpoint("recorded")
    return result


def _scaled(
    available: int, amounts: Mapping[uuid.UUID, int], currency: str
) -> tuple[dict[uuid.UUID, int], str]:
    """The amounts scaled pro rata to `available`, and how (empty when paid in full)."""
    wanted = {str(key): amount for key, amount in amounts.items()}
    scaled = scale_to(max(available, 0), wanted)
    label = "" if scaled == wanted else f"{currency}:{max(available, 0)}"
    return {uuid.UUID(key): amount for key, amount in scaled.items()}, label


def _post_nmr(
    session: Session,
    ledger: Ledger,
    key: str,
    planned: PlannedPayout,
    reward: int,
) -> int:
    """Post the model's NMR movements of the round as one transaction; the amount burned
    (capped at what the stake and pending release hold)."""
    model_stake, model_release = stake(planned.model_id), release(planned.model_id)
    owner = wallet(planned.owner_id)
    held = ledger.balance(session, model_stake, Currency.NMR)
    releasing = ledger.balance(session, model_release, Currency.NMR)
    burn = min(planned.burn, held + releasing)
    from_stake = min(burn, held)
    returned = min(planned.returned, held - from_stake)
    postings: list[Posting] = []
    if reward:
        postings += transfer(TREASURY, owner if planned.to_wallet else model_stake, reward)
    if burn:
        postings += _burn_postings(model_stake, from_stake, model_release, burn - from_stake)
    if returned:
        postings += transfer(model_stake, owner, returned)
    if postings:
        ledger.post(session, key, Currency.NMR, postings, memo=_memo(reward, burn, returned))
    return burn


def _burn_postings(
    model_stake: AccountId, from_stake: int, model_release: AccountId, from_release: int
) -> Iterable[Posting]:
    if from_stake:
        yield from transfer(model_stake, BURNED, from_stake)
    if from_release:
        yield from transfer(model_release, BURNED, from_release)


def _memo(reward: int, burn: int, returned: int) -> str:
    parts = [
        f"{what} {format_amount(amount, Currency.NMR)}"
        for what, amount in (("reward", reward), ("burn", burn), ("stake returned", returned))
        if amount
    ]
    return "resolution: " + ", ".join(parts)


# --- reading -------------------------------------------------------------------------------------


def round_result(session: Session, round_: Round) -> RoundResult | None:
    return session.scalar(select(RoundResult).where(RoundResult.round_id == round_.id))


@dataclass(frozen=True)
class RoundMoney:
    """A round as the operator follows it: who took part, what is at risk, what it paid."""

    round: Round
    participants: int
    """Models with a valid on-time submission."""
    at_risk: int | None
    """NMR (10^-18 units) at risk; None while a classic round is open (frozen at close)."""
    result: RoundResult | None


def rounds_money(session: Session, tournament: Tournament) -> list[RoundMoney]:
    """Every round of `tournament`, newest first, with its participants, stakes and result."""
    rounds = list(
        session.scalars(
            select(Round).where(Round.tournament_id == tournament.id).order_by(Round.number.desc())
        )
    )
    ids = [round_.id for round_ in rounds]
    participants = dict(
        session.execute(
            select(Submission.round_id, func.count(func.distinct(Submission.model_id)))
            .where(
                Submission.round_id.in_(ids),
                Submission.status == SubmissionStatus.VALID,
                Submission.late.is_(False),
            )
            .group_by(Submission.round_id)
        ).all()
    )
    at_risk: dict[uuid.UUID, int] = {}
    for round_id, amount in session.execute(  # summed here: SQLite stores amounts as text
        select(RoundStake.round_id, RoundStake.at_risk).where(RoundStake.round_id.in_(ids))
    ):
        at_risk[round_id] = at_risk.get(round_id, 0) + amount
    results = {
        row.round_id: row
        for row in session.scalars(select(RoundResult).where(RoundResult.round_id.in_(ids)))
    }
    return [
        RoundMoney(
            round=round_,
            participants=participants.get(round_.id, 0),
            at_risk=(
                None
                if round_.status is RoundStatus.OPEN and tournament.rules is Rules.CLASSIC
                else at_risk.get(round_.id, 0)
            ),
            result=results.get(round_.id),
        )
        for round_ in rounds
    ]


def round_payouts(session: Session, round_: Round) -> list[RoundPayout]:
    return list(
        session.scalars(
            select(RoundPayout)
            .where(RoundPayout.round_id == round_.id)
            .order_by(RoundPayout.model_id)
        )
    )


def model_payouts(session: Session, model: Model) -> dict[uuid.UUID, RoundPayout]:
    """`model`'s payouts in its resolved rounds, by round id."""
    rows = session.scalars(select(RoundPayout).where(RoundPayout.model_id == model.id))
    return {row.round_id: row for row in rows}


def paid_rounds(
    session: Session, model_ids: Iterable[uuid.UUID]
) -> list[tuple[RoundPayout, Round]]:
    """The models' payouts with their rounds, newest round first."""
    rows = session.execute(
        select(RoundPayout, Round)
        .join(Round, Round.id == RoundPayout.round_id)
        .where(RoundPayout.model_id.in_(list(model_ids)))
        .order_by(Round.number.desc(), RoundPayout.model_id)
    ).all()
    return [(payout, round_) for payout, round_ in rows]


def tournament_results(session: Session, number: int) -> dict[uuid.UUID, RoundResult]:
    """The recorded results of tournament `number`'s rounds, by round id."""
    rows = session.scalars(
        select(RoundResult)
        .join(Round, Round.id == RoundResult.round_id)
        .join(Tournament, Tournament.id == Round.tournament_id)
        .where(Tournament.number == number)
    )
    return {row.round_id: row for row in rows}


def career_payouts(
    session: Session, model_ids: Iterable[uuid.UUID], *, since: datetime | None = None
) -> dict[uuid.UUID, tuple[int, int]]:
    """Each model's NMR (net of burns, 10^-18) and USD (cents) over its resolved rounds,
    or over those resolved since `since`."""
    wanted = list(model_ids)
    totals: dict[uuid.UUID, tuple[int, int]] = {model_id: (0, 0) for model_id in wanted}
    query = select(RoundPayout.model_id, RoundPayout.nmr, RoundPayout.usd).where(
        RoundPayout.model_id.in_(wanted)
    )
    if since is not None:
        query = query.where(RoundPayout.resolved_at >= since)
    for model_id, nmr, usd in session.execute(query):
        before_nmr, before_usd = totals[model_id]
        totals[model_id] = (before_nmr + nmr, before_usd + usd)
    return totals


def replay_payouts(session: Session, round_: Round) -> list[str]:
    """Recompute `round_`'s payouts from its stored stakes and scores, scaled as recorded,
    and list every difference from what was paid (empty: the replay agrees)."""
    result = round_result(session, round_)
    if result is None:
        return [f"round {round_.number} has not resolved"]
    plan = plan_payouts(session, round_)
    scales = dict(part.split(":", 1) for part in result.scale.split(",") if ":" in part)
    rewards = scale_to(
        int(scales["nmr"]) if "nmr" in scales else sum(p.reward for p in plan.payouts),
        {str(p.model_id): p.reward for p in plan.payouts},
    )
    awards = scale_to(
        int(scales["usd"]) if "usd" in scales else sum(p.usd for p in plan.payouts),
        {str(p.model_id): p.usd for p in plan.payouts},
    )
    stored = {row.model_id: row for row in round_payouts(session, round_)}
    differences = []
    for planned in plan.payouts:
        row = stored.pop(planned.model_id, None)
        key = str(planned.model_id)
        if row is None:
            differences.append(f"model {key}: no payout was recorded")
            continue
        burn = min(planned.burn, int(row.inputs.get("burn_cap", planned.burn)))
        wanted_nmr = rewards[key] - burn
        if row.nmr != wanted_nmr or row.usd != awards[key] or row.rule_version != plan.rule.version:
            differences.append(
                f"model {key}: recorded {row.nmr} NMR units and {row.usd} cents by"
                f" {row.rule_version}, replayed {wanted_nmr} and {awards[key]} by"
                f" {plan.rule.version}"
            )
    differences += [f"model {model_id}: a payout no rule gives" for model_id in stored]
    return differences
