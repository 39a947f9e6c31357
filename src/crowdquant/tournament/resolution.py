"""Resolution: a round's final scores, through its payout rule, into the ledger.

When a round resolves (`resolve_payouts`, in the same database transaction as its status
change), its payout rule (`Round.payout_rule`, fixed at open) turns the stakes frozen at
close and the final scores into rewards and burns:

- classic: each stake at risk earns or loses `payouts.classic_payouts` of it; rewards come
  from the treasury, into the stake (compounding) or the owner's wallet (`PayoutMode`);
  burns go to the sink, from the stake first, then from the model's pending release;
- 2017: `payouts.rules2017_payouts`; losing stakes are burned, the others returned to the
  wallet; USD awards (auction) and prizes (by rank) come from the tournament's prize pool,
  NMR prizes from the treasury. The gates read the day-0 `originality_2017` and the
  consistency and concordance measured on the counting upload (`rules2017_checks`).

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
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crowdquant.clock import Clock
from crowdquant.db.models import (
    MetaModel,
    Model,
    Round,
    RoundPayout,
    RoundResult,
    RoundScore,
    RoundStake,
    RoundStatus,
    Submission,
    SubmissionCheck,
    SubmissionStatus,
    Tournament,
)
from crowdquant.ledger import (
    BURNED,
    TREASURY,
    AccountId,
    Ledger,
    NewTransaction,
    Posting,
    prize_pool,
    release,
    stake,
    transfer,
    wallet,
)
from crowdquant.money import Currency, format_amount
from crowdquant.payouts import PayoutRule, scale_to
from crowdquant.tournament.rounds import described_configs, round_payout_rule, round_score_configs
from crowdquant.tournament.rules import PlannedPayout, Ruleset, ruleset_of, ruleset_paying
from crowdquant.tournament.scoring import days_recorded, scored_submissions
from crowdquant.tournament.staking import release_due

Checkpoint = Callable[[str], None]
"""Called between the steps of a resolution with the step's name (tests inject crashes)."""


def _no_checkpoint(step: str) -> None:
    del step


def round_rule(round_: Round) -> PayoutRule:
    """The rule `round_` resolves by (the default of its kind if none was recorded)."""
    return round_payout_rule(round_)


# --- the plan: pure figures from the stored stakes and scores ------------------------------------


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
    ruleset = ruleset_paying(rule)
    if ruleset.upload_gates:
        gates = _upload_gates(session, round_, ruleset.upload_gates)
        for model_id, measured in gates.items():
            scores[model_id] = {**measured, **scores.get(model_id, {})}
    dropped = dropped_duplicates(session, round_)
    counted = {model_id: row for model_id, row in stakes.items() if model_id not in dropped}
    at_risk = sum(row.at_risk for row in counted.values())
    planned, factor = ruleset.plan_payouts(
        rule, participants - set(dropped), counted, scores, models
    )
    planned += [
        _duplicate_returned(stakes[model_id], models[model_id], dropped[model_id], ruleset)
        for model_id in sorted(set(stakes) & set(dropped), key=str)
    ]
    return Plan(rule, planned, len(participants), len(counted), at_risk, factor)


def dropped_duplicates(session: Session, round_: Round) -> dict[uuid.UUID, uuid.UUID]:
    """The models whose on-time submission was a near-duplicate of another of its account's
    when the round's meta model was fixed, each with the model kept in its place."""
    recorded = session.scalar(select(MetaModel.duplicates).where(MetaModel.round_id == round_.id))
    if not recorded or not recorded.get("dropped"):
        return {}
    pairs = {uuid.UUID(dup): uuid.UUID(kept) for dup, kept in recorded["dropped"].items()}
    owners = dict(
        session.execute(
            select(Submission.id, Submission.model_id).where(
                Submission.id.in_(set(pairs) | set(pairs.values()))
            )
        ).all()
    )
    return {owners[dup]: owners[kept] for dup, kept in pairs.items()}


def _duplicate_returned(
    row: RoundStake, model: Model, kept: uuid.UUID, ruleset: Ruleset
) -> PlannedPayout:
    """A near-duplicate's stake is not at risk: nothing is paid or burned, and a stake placed
    on the round goes back to the wallet whole."""
    returned = row.at_risk if ruleset.round_stakes else 0
    planned = PlannedPayout(
        model_id=model.id,
        owner_id=model.account_id,
        at_risk=0,
        reward=0,
        burn=0,
        usd=0,
        returned=returned,
        inputs={"duplicate_of": str(kept), "stake_returned": returned},
    )
    assert planned.reward == planned.burn == 0 and 0 <= planned.returned <= row.at_risk
    return planned


def _upload_gates(
    session: Session, round_: Round, checks: Mapping[str, str]
) -> dict[uuid.UUID, dict[str, float]]:
    """Each on-time model's gates as measured on the upload it is scored by (`checks`: the
    check's metric to the score it stands for)."""
    counting = {
        scored.submission_id: scored.model_id
        for scored in scored_submissions(session, round_)
        if not scored.late
    }
    gates: dict[uuid.UUID, dict[str, float]] = {}
    for submission_id, metric, value in session.execute(
        select(SubmissionCheck.submission_id, SubmissionCheck.metric, SubmissionCheck.value).where(
            SubmissionCheck.submission_id.in_(list(counting)),
            SubmissionCheck.metric.in_(list(checks)),
        )
    ):
        if value is not None and not math.isnan(value):
            gates.setdefault(counting[submission_id], {})[checks[metric]] = value
    return gates


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
    rewards, nmr_scaled_to = _scaled(treasury, {p.model_id: p.reward for p in plan.payouts})
    pool_balance = ledger.balance(session, pool, Currency.USD)
    awards, usd_scaled_to = _scaled(pool_balance, {p.model_id: p.usd for p in plan.payouts})
    now = clock.now()
    # each model's stake and release, read at once: a model's postings move no other's
    held = ledger.balances_of(
        session,
        [a for p in plan.payouts for a in (stake(p.model_id), release(p.model_id))],
        Currency.NMR,
    )
    paid = burned = usd_paid = 0
    posts: list[NewTransaction] = []  # posted together, in this order, after the loop
    for planned in plan.payouts:
        reward, usd = rewards[planned.model_id], awards[planned.model_id]
        key = f"payout:{round_.id}:{planned.model_id}"
        burn, nmr_post = _nmr_post(key, planned, reward, held)
        posts += [] if nmr_post is None else [nmr_post]
        inputs = planned.inputs if burn == planned.burn else {**planned.inputs, "burn_cap": burn}
        if usd:
            posts.append(
                NewTransaction(
                    f"payout-usd:{round_.id}:{planned.model_id}",
                    Currency.USD,
                    transfer(pool, wallet(planned.owner_id), usd),
                    memo=f"round {round_.number}: USD award",
                )
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
    ledger.post_many(session, posts)
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
        nmr_scaled_to=nmr_scaled_to,
        usd_scaled_to=usd_scaled_to,
        resolved_at=now,
    )
    session.add(result)
    session.flush()
    checkpoint("recorded")
    return result


def _scaled(
    available: int, amounts: Mapping[uuid.UUID, int]
) -> tuple[dict[uuid.UUID, int], int | None]:
    """The amounts scaled pro rata to `available`, and what they were scaled to (None when
    paid in full)."""
    wanted = {str(key): amount for key, amount in amounts.items()}
    scaled = scale_to(max(available, 0), wanted)
    scaled_to = None if scaled == wanted else max(available, 0)
    return {uuid.UUID(key): amount for key, amount in scaled.items()}, scaled_to


def _nmr_post(
    key: str, planned: PlannedPayout, reward: int, balances: Mapping[AccountId, int]
) -> tuple[int, NewTransaction | None]:
    """The amount burned (capped at what the stake and pending release hold, as read in
    `balances`), and the model's NMR movements of the round as one transaction (None when
    nothing moves)."""
    model_stake, model_release = stake(planned.model_id), release(planned.model_id)
    owner = wallet(planned.owner_id)
    held, releasing = balances[model_stake], balances[model_release]
    burn = min(planned.burn, held + releasing)
    from_stake = min(burn, held)
    returned = min(planned.returned, held - from_stake)
    # what leaves the model's accounts is what they hold, and nothing is created from them
    assert reward >= 0 and 0 <= from_stake <= held and 0 <= burn - from_stake <= releasing
    assert returned >= 0 and from_stake + returned <= held
    postings: list[Posting] = []
    if reward:
        postings += transfer(TREASURY, owner if planned.to_wallet else model_stake, reward)
    if burn:
        postings += _burn_postings(model_stake, from_stake, model_release, burn - from_stake)
    if returned:
        postings += transfer(model_stake, owner, returned)
    if not postings:
        return burn, None
    return burn, NewTransaction(
        key, Currency.NMR, tuple(postings), memo=_memo(reward, burn, returned)
    )


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
                if round_.status is RoundStatus.OPEN and not ruleset_of(tournament).round_stakes
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
    nmr_available = result.nmr_scaled_to
    usd_available = result.usd_scaled_to
    rewards = scale_to(
        sum(p.reward for p in plan.payouts) if nmr_available is None else nmr_available,
        {str(p.model_id): p.reward for p in plan.payouts},
    )
    awards = scale_to(
        sum(p.usd for p in plan.payouts) if usd_available is None else usd_available,
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


PAYOUT_FIELDS = (
    "is_payout",
    "default_multiplier",
    "min_multiplier",
    "max_multiplier",
    "clip_threshold",
    "stake_threshold",
    "payout_factor",
    "hurdle",
)
"""What a score config says about payouts (its window follows the calendar)."""


def replay_score_configs(round_: Round) -> list[str]:
    """Compare the score configs `round_` recorded at open with those its recorded payout
    rule describes, and list every difference in what they pay (empty: they agree)."""
    if round_.score_configs is None:
        return []
    recorded = {config.score_config_id: config for config in round_score_configs(round_)}
    described = {
        config.score_config_id: config
        for config in described_configs(round_.tournament, round_, round_rule(round_))
    }
    differences = [
        f"score config {key}: recorded, but the round's rule has no such score"
        for key in sorted(set(recorded) - set(described))
    ]
    differences += [
        f"score config {key}: the round's rule has it, but it was not recorded"
        for key in sorted(set(described) - set(recorded))
    ]
    for key in sorted(set(recorded) & set(described)):
        for name in PAYOUT_FIELDS:
            was, wanted = getattr(recorded[key], name), getattr(described[key], name)
            if was != wanted:
                differences.append(
                    f"score config {key}: {name} recorded {was}, the round's rule gives {wanted}"
                )
    return differences
