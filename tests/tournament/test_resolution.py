"""Resolution on scored rounds, on both databases: classic payouts and burns checked against
figures computed here from the stored scores, payout modes, the payout factor, pro rata
rewards, the round's summary, exactly-once resolution under retries and crashes, the replay,
the scheduler's path, the stake-weighted meta model, and the 2017 rules' burns, auction and
rank prizes."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.db.base import Base
from crowdquant.db.models import (
    Account,
    Cadence,
    MetaModel,
    Model,
    PayoutMode,
    Round,
    RoundPayout,
    RoundResult,
    RoundScore,
    RoundStake,
    RoundTargets,
    Rules,
    StakeChangeKind,
    Submission,
)
from crowdquant.db.session import transaction
from crowdquant.ledger import (
    BURNED,
    OPERATOR_FUNDING,
    TREASURY,
    AccountId,
    prize_pool,
    stake,
    transfer,
    wallet,
)
from crowdquant.ledger.sql import SqlLedger
from crowdquant.money import GENESIS_SUPPLY, NMR_UNIT, Currency
from crowdquant.payouts import ClassicRule, rule_to_data
from crowdquant.storage import LocalStorage
from crowdquant.tournament.accounts import sign_up
from crowdquant.tournament.leaderboard import account_leaderboard, model_leaderboard
from crowdquant.tournament.lifecycle import RoundLifecycle
from crowdquant.tournament.models import create_model
from crowdquant.tournament.resolution import (
    replay_payouts,
    resolve_payouts,
    rounds_money,
)
from crowdquant.tournament.rounds import (
    FeedPublisher,
    open_round,
)
from crowdquant.tournament.runtime import TournamentRuntime
from crowdquant.tournament.scheduler import Scheduler
from crowdquant.tournament.scoring import FeedTargets, days_recorded
from crowdquant.tournament.staking import change_stake, freeze_stakes, grant_nmr, stake_on_round
from crowdquant.tournament.submissions import live_ids_of_round
from crowdquant.tournament.tournaments import create_tournament, get_tournament
from crowdquant.tournament.visibility import Viewer

from .live_market import MONDAY, local_storage
from .scored_round import CHEAP, DAY, World, market_feed, score, upload

NMR = NMR_UNIT
STAKES = {"alice_a": 100, "alice_b": 50, "bob": 200, "bench": 80, "latecomer": 30}
"""NMR each model of the scored world stakes; the latecomer's upload is late, so not at risk."""
GRANT = 1_000
THRESHOLD = 72_000 * NMR
CLIP = Fraction(5, 100)
HURDLE = Fraction(1, 1000)
BENCHMARK = Fraction("0.69314718")


class Crash(Exception):  # noqa: N818
    """An injected failure."""


# --- reading the database ------------------------------------------------------------------------


def snapshot(sessions: sessionmaker[Session]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table."""
    with transaction(sessions) as session:
        return {
            table.name: sorted((tuple(row) for row in session.execute(table.select())), key=repr)
            for table in Base.metadata.sorted_tables
        }


def exact(value: float) -> Fraction:
    """A stored score at its repr, as people read it."""
    return Fraction(repr(value))


def final_scores(session: Session, round_id: uuid.UUID) -> dict[uuid.UUID, dict[str, float]]:
    """Each on-time model's scores on the round's last recorded day."""
    last = max(session.scalars(select(RoundTargets.day).where(RoundTargets.round_id == round_id)))
    scores: dict[uuid.UUID, dict[str, float]] = {}
    for row in session.scalars(
        select(RoundScore).where(
            RoundScore.round_id == round_id, RoundScore.day == last, RoundScore.late.is_(False)
        )
    ):
        if row.value is not None:
            scores.setdefault(row.model_id, {})[row.metric] = row.value
    return scores


def classic_expected(
    sessions: sessionmaker[Session], round_id: uuid.UUID, threshold: int = THRESHOLD
) -> dict[uuid.UUID, int]:
    """Each frozen stake's signed payout: at_risk × clip(factor × (½·CORR + 2·MMC − 0.001),
    ±5%), truncated toward zero, with factor = min(1, threshold / total at risk)."""
    with transaction(sessions) as session:
        at_risk = {
            row.model_id: row.at_risk
            for row in session.scalars(select(RoundStake).where(RoundStake.round_id == round_id))
        }
        scores = final_scores(session, round_id)
    factor = min(Fraction(1), Fraction(threshold, sum(at_risk.values())))
    expected = {}
    for model_id, amount in at_risk.items():
        measured = scores.get(model_id, {})
        if "corr" not in measured:
            expected[model_id] = 0
            continue
        score = Fraction(1, 2) * exact(measured["corr"]) + 2 * exact(measured.get("mmc", 0.0))
        score -= HURDLE
        expected[model_id] = int(amount * max(-CLIP, min(CLIP, factor * score)))
    return expected


def payouts(sessions: sessionmaker[Session], round_id: uuid.UUID) -> dict[uuid.UUID, RoundPayout]:
    with transaction(sessions) as session:
        return {
            row.model_id: row
            for row in session.scalars(select(RoundPayout).where(RoundPayout.round_id == round_id))
        }


def result_of(sessions: sessionmaker[Session], round_id: uuid.UUID) -> RoundResult:
    with transaction(sessions) as session:
        return session.scalars(select(RoundResult).where(RoundResult.round_id == round_id)).one()


# --- a scored classic round with stakes ----------------------------------------------------------


@dataclass
class Staked:
    """The scored world, its stakes frozen at its close, scored to the final day."""

    world: World
    ledger: SqlLedger
    owners: dict[str, uuid.UUID]  # model name → owner's account id

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.world.sessions

    def nmr(self, account: AccountId) -> int:
        with transaction(self.sessions) as session:
            return self.ledger.balance(session, account, Currency.NMR)

    def resolve(self, checkpoint: Callable[[str], None] | None = None) -> RoundResult:
        with transaction(self.sessions) as session:
            round_ = session.get_one(Round, self.world.round_id)
            RoundLifecycle(None, self.world.clock).resolve(session, round_)
            if checkpoint is None:
                return resolve_payouts(session, self.ledger, self.world.clock, round_)
            return resolve_payouts(
                session, self.ledger, self.world.clock, round_, checkpoint=checkpoint
            )

    def set_round(self, **values: Any) -> None:
        with transaction(self.sessions) as session:
            round_ = session.get_one(Round, self.world.round_id)
            for name, value in values.items():
                setattr(round_, name, value)

    def set_modes(self, modes: dict[str, PayoutMode]) -> None:
        with transaction(self.sessions) as session:
            for name, mode in modes.items():
                session.get_one(Model, self.world.models[name]).payout_mode = mode

    def expected(self, threshold: int = THRESHOLD) -> dict[str, int]:
        names = {model_id: name for name, model_id in self.world.models.items()}
        computed = classic_expected(self.sessions, self.world.round_id, threshold)
        return {names[model_id]: amount for model_id, amount in computed.items()}

    def paid(self) -> dict[str, int]:
        names = {model_id: name for name, model_id in self.world.models.items()}
        return {
            names[model_id]: row.nmr
            for model_id, row in payouts(self.sessions, self.world.round_id).items()
        }


def stake_world(world: World, stakes: dict[str, int]) -> Staked:
    """Grants, stakes and the freeze the close would have made, then twenty days scored."""
    ledger = SqlLedger(world.clock)
    with transaction(world.sessions) as session:
        ledger.genesis(session)
        models = {name: session.get_one(Model, model_id) for name, model_id in world.models.items()}
        owners = {name: model.account_id for name, model in models.items()}
        for account_id in sorted(set(owners.values())):
            account = session.get_one(Account, account_id)
            grant_nmr(session, ledger, account, GRANT * NMR, f"welcome {account.username}")
        for name, amount in stakes.items():
            change_stake(
                session, ledger, world.clock, models[name], StakeChangeKind.INCREASE, amount * NMR
            )
        freeze_stakes(session, ledger, world.clock, session.get_one(Round, world.round_id))
    world.clock.advance(40 * DAY)
    score(world, FeedTargets(market_feed()))
    return Staked(world, ledger, owners)


@pytest.fixture
def staked(world: World) -> Staked:
    return stake_world(world, STAKES)


def test_each_payout_is_the_stake_at_risk_times_the_clipped_final_score(staked: Staked) -> None:
    with transaction(staked.sessions) as session:
        assert days_recorded(session, session.get_one(Round, staked.world.round_id)) == 20
    expected = staked.expected()
    assert set(expected) == {"alice_a", "alice_b", "bob", "bench"}  # not the latecomer
    assert any(amount > 0 for amount in expected.values())
    assert any(amount < 0 for amount in expected.values())
    staked.resolve()
    assert staked.paid() == expected
    with transaction(staked.sessions) as session:
        scores = final_scores(session, staked.world.round_id)
    names = {model_id: name for name, model_id in staked.world.models.items()}
    for model_id, row in payouts(staked.sessions, staked.world.round_id).items():
        assert row.at_risk == STAKES[names[model_id]] * NMR
        assert (row.usd, row.rule_version) == (0, "classic-v2")
        assert row.inputs["corr"] == scores[model_id]["corr"]
        assert row.inputs["mmc"] == scores[model_id]["mmc"]
        assert row.inputs["payout_factor"] == "1"
    latecomer = stake(staked.world.models["latecomer"])
    assert staked.nmr(latecomer) == STAKES["latecomer"] * NMR  # never at risk


def test_a_reward_compounds_into_the_stake_or_goes_to_the_wallet(staked: Staked) -> None:
    staked.set_modes({"alice_a": PayoutMode.COMPOUND, "alice_b": PayoutMode.WALLET})
    expected = staked.expected()
    assert expected["alice_a"] > 0 and expected["alice_b"] > 0
    alice = wallet(staked.owners["alice_a"])
    before = staked.nmr(alice)
    staked.resolve()
    models = staked.world.models
    assert staked.nmr(stake(models["alice_a"])) == STAKES["alice_a"] * NMR + expected["alice_a"]
    assert staked.nmr(stake(models["alice_b"])) == STAKES["alice_b"] * NMR
    assert staked.nmr(alice) == before + expected["alice_b"]


def test_a_burn_leaves_the_stake_for_the_sink_whatever_the_payout_mode(staked: Staked) -> None:
    staked.set_modes({"bench": PayoutMode.WALLET, "bob": PayoutMode.COMPOUND})
    expected = staked.expected()
    assert expected["bench"] < 0
    bob = wallet(staked.owners["bench"])
    before = staked.nmr(bob)
    staked.resolve()
    bench = stake(staked.world.models["bench"])
    assert staked.nmr(bench) == STAKES["bench"] * NMR + expected["bench"]
    assert staked.nmr(BURNED) == -sum(amount for amount in expected.values() if amount < 0)
    assert staked.nmr(bob) == before  # bob's other model compounds


def test_the_payout_factor_shrinks_payouts_when_more_is_at_risk_than_the_threshold(
    staked: Staked,
) -> None:
    threshold = 43 * NMR  # 430 NMR at risk: factor 1/10
    staked.set_round(payout_rule=rule_to_data(ClassicRule(stake_threshold=threshold)))
    expected = staked.expected(threshold)
    staked.resolve()
    assert staked.paid() == expected
    assert result_of(staked.sessions, staked.world.round_id).payout_factor == "0.1"
    unclipped = staked.expected()
    assert any(abs(expected[name]) < abs(unclipped[name]) for name in expected)


def test_rewards_are_scaled_pro_rata_when_the_treasury_cannot_pay_them_all(
    staked: Staked,
) -> None:
    expected = staked.expected()
    rewards = {name: amount for name, amount in expected.items() if amount > 0}
    left = sum(rewards.values()) // 3 + 7
    with transaction(staked.sessions) as session:  # the operator gives the rest away
        account = session.get_one(Account, staked.owners["bob"])
        treasury = staked.ledger.balance(session, TREASURY, Currency.NMR)
        grant_nmr(session, staked.ledger, account, treasury - left, "drain")
    staked.resolve()
    total = sum(rewards.values())
    scaled = {name: amount * left // total for name, amount in rewards.items()}
    paid = staked.paid()
    assert {name: paid[name] for name in rewards} == scaled
    assert {name: paid[name] for name in expected if name not in rewards} == {
        name: amount for name, amount in expected.items() if amount <= 0
    }  # burns are not scaled
    assert 0 <= left - sum(scaled.values()) < len(rewards)  # rounding leaves a few units
    assert staked.nmr(TREASURY) == left - sum(scaled.values())
    result = result_of(staked.sessions, staked.world.round_id)
    assert result.scale == f"nmr:{left}"
    assert result.nmr_paid == sum(scaled.values())


def test_the_round_result_summarises_the_resolution(staked: Staked) -> None:
    expected = staked.expected()
    returned = staked.resolve()
    result = result_of(staked.sessions, staked.world.round_id)
    assert result.id == returned.id
    assert (result.participants, result.stakers) == (4, 4)  # the latecomer is neither
    assert result.at_risk == sum(STAKES[name] for name in expected) * NMR
    assert result.nmr_paid == sum(amount for amount in expected.values() if amount > 0)
    assert result.nmr_burned == -sum(amount for amount in expected.values() if amount < 0)
    assert (result.usd_paid, result.payout_factor, result.scale) == (0, "1", "full")
    assert result.resolved_at == staked.world.clock.now()


def test_rounds_money_follows_a_round_from_its_stakes_to_its_result(staked: Staked) -> None:
    """The operator's view: participants (on time), what is at risk, and the result."""
    with transaction(staked.sessions) as session:
        tournament = get_tournament(session, 8)
        [before] = rounds_money(session, tournament)
        assert (before.round.number, before.participants, before.result) == (1, 4, None)
        assert before.at_risk == (sum(STAKES.values()) - STAKES["latecomer"]) * NMR  # late: none
    result = staked.resolve()
    with transaction(staked.sessions) as session:
        [after] = rounds_money(session, get_tournament(session, 8))
        assert after.result is not None and after.result.id == result.id


def test_leaderboards_carry_career_nmr_and_the_last_years_and_quarters(staked: Staked) -> None:
    """What a model was paid counts in its career for good, in the last quarter's and
    year's returns for 91 and 365 days; an account sums its models."""
    staked.resolve()
    paid = staked.paid()
    resolved = staked.world.clock.now()

    def board(days: int) -> tuple[dict[str, tuple[int, int, int]], dict[str, int]]:
        with transaction(staked.sessions) as session:
            tournament = get_tournament(session, 8)
            when = resolved + timedelta(days=days)
            models = {
                row.name: (row.career_nmr, row.nmr_last_year, row.nmr_last_quarter)
                for row in model_leaderboard(session, tournament, when, Viewer.public())
            }
            accounts = {
                row.name: row.nmr_last_quarter
                for row in account_leaderboard(session, tournament, when, Viewer.public())
            }
            return models, accounts

    models, accounts = board(0)
    assert models["bob"] == (paid["bob"], paid["bob"], paid["bob"])
    assert accounts["alice"] == paid["alice_a"] + paid["alice_b"]
    assert board(120)[0]["bob"] == (paid["bob"], paid["bob"], 0)
    assert board(400)[0]["bob"] == (paid["bob"], 0, 0)


def test_resolving_again_changes_nothing(staked: Staked) -> None:
    first = staked.resolve()
    before = snapshot(staked.sessions)
    lifecycle = RoundLifecycle(staked.ledger, staked.world.clock)
    with transaction(staked.sessions) as session:
        round_ = session.get_one(Round, staked.world.round_id)
        again = resolve_payouts(session, staked.ledger, staked.world.clock, round_)
        assert again.id == first.id
        assert lifecycle.resolve(session, round_) is False
    assert snapshot(staked.sessions) == before


def test_a_crash_at_any_step_leaves_nothing_and_the_retry_pays_the_same(staked: Staked) -> None:
    before = snapshot(staked.sessions)
    steps: list[str] = []
    planned: dict[uuid.UUID, int] = {}
    with pytest.raises(Crash), transaction(staked.sessions) as session:

        def record(step: str) -> None:
            steps.append(step)
            if step == "recorded":  # the last step: what would commit, then a crash
                planned.update(
                    {row.model_id: row.nmr for row in session.scalars(select(RoundPayout))}
                )
                raise Crash(step)

        round_ = session.get_one(Round, staked.world.round_id)
        RoundLifecycle(None, staked.world.clock).resolve(session, round_)
        resolve_payouts(session, staked.ledger, staked.world.clock, round_, checkpoint=record)
    assert steps[0] == "planned" and steps[-2:] == ["released", "recorded"]
    assert len(steps) == 3 + len(staked.expected())  # a step after each payout
    assert snapshot(staked.sessions) == before

    for crash_at in steps:

        def crash(step: str, crash_at: str = crash_at) -> None:
            if step == crash_at:
                raise Crash(step)

        with pytest.raises(Crash, match=crash_at):
            staked.resolve(crash)
        assert snapshot(staked.sessions) == before, crash_at

    staked.resolve()
    paid = payouts(staked.sessions, staked.world.round_id)
    assert {model_id: row.nmr for model_id, row in paid.items()} == planned
    assert staked.paid() == staked.expected()
    with transaction(staked.sessions) as session:
        assert staked.ledger.verify(session).sound


def test_the_replay_agrees_with_an_honest_history(staked: Staked) -> None:
    staked.resolve()
    with transaction(staked.sessions) as session:
        round_ = session.get_one(Round, staked.world.round_id)
        assert replay_payouts(session, round_) == []


def test_the_replay_names_the_model_whose_payout_was_tampered_with(staked: Staked) -> None:
    staked.resolve()
    tampered = staked.world.models["bob"]
    with transaction(staked.sessions) as session:
        row = session.scalars(select(RoundPayout).where(RoundPayout.model_id == tampered)).one()
        row.nmr += 1
    with transaction(staked.sessions) as session:
        round_ = session.get_one(Round, staked.world.round_id)
        differences = replay_payouts(session, round_)
    assert len(differences) == 1 and str(tampered) in differences[0]


def test_the_replay_of_an_unresolved_round_says_so(staked: Staked) -> None:
    with transaction(staked.sessions) as session:
        round_ = session.get_one(Round, staked.world.round_id)
        assert replay_payouts(session, round_) == [f"round {round_.number} has not resolved"]


def test_the_meta_model_is_weighted_by_the_stakes_at_risk(staked: Staked) -> None:
    with transaction(staked.sessions) as session:
        meta = session.scalars(
            select(MetaModel).where(MetaModel.round_id == staked.world.round_id)
        ).one()
        model_of = dict(
            session.execute(
                select(Submission.id, Submission.model_id).where(
                    Submission.round_id == staked.world.round_id
                )
            ).all()
        )
    assert meta.weighting == "stake"
    names = {model_id: name for name, model_id in staked.world.models.items()}
    weights = {names[model_of[uuid.UUID(key)]]: value for key, value in meta.weights.items()}
    assert set(weights) == {"alice_a", "alice_b", "bob", "bench"}
    total, staked_total = sum(weights.values()), sum(STAKES[name] for name in weights)
    for name, weight in weights.items():
        assert weight / total == pytest.approx(STAKES[name] / staked_total)


def test_the_meta_model_is_equal_weighted_without_stakes(world: World) -> None:
    stake_world(world, {})
    with transaction(world.sessions) as session:
        meta = session.scalars(select(MetaModel).where(MetaModel.round_id == world.round_id)).one()
    assert meta.weighting == "equal"
    assert set(meta.weights.values()) == {1.0} and len(meta.weights) == 4


# --- the scheduler's path ------------------------------------------------------------------------


def test_the_scheduler_freezes_stakes_at_close_and_pays_them_when_it_resolves(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    clock = ManualClock(MONDAY)
    ledger = SqlLedger(clock)
    storage = local_storage(tmp_path / "files")
    publisher = FeedPublisher(market_feed(), storage)
    threshold = 30 * NMR  # the tournament's own rule: 60 NMR at risk, factor 1/2
    with transaction(sessions) as session:
        ledger.genesis(session)
        create_tournament(
            session,
            clock,
            8,
            "classic",
            Rules.CLASSIC,
            Cadence.DAILY,
            "v1",
            {"payout_rule": {"stake_threshold": str(threshold)}},
        )
        alice = sign_up(session, clock, "alice", "a@example.org", "x" * 10, hasher=CHEAP)
        bob = sign_up(session, clock, "bob", "b@example.org", "x" * 10, hasher=CHEAP)
        staker = create_model(session, clock, alice, 8, "staker")
        other = create_model(session, clock, bob, 8, "other")
        grant_nmr(session, ledger, alice, 100 * NMR, "welcome")
        change_stake(session, ledger, clock, staker, StakeChangeKind.INCREASE, 60 * NMR)
        ids = (staker.id, other.id)
    scheduler = Scheduler(
        sessions,
        clock,
        {8: TournamentRuntime(publisher, FeedTargets(market_feed()))},
        storage=storage,
        ledger=ledger,
    )
    assert [str(event) for event in scheduler.tick()] == [
        "round 1 of tournament 8 opened (live era 0003)"
    ]
    rng = np.random.default_rng(11)
    with transaction(sessions) as session:
        round_ = session.scalars(select(Round)).one()
        live = live_ids_of_round(storage, round_)
        for model_id in ids:
            model = session.get_one(Model, model_id)
            values = pd.Series(rng.uniform(0, 1, len(live)), index=live).round(6)
            upload(session, clock, storage, round_, model.account, model_id, values)
        round_id, close_time = round_.id, round_.close_time
        assert round_.payout_rule["stake_threshold"] == str(threshold)

    clock.set(close_time)
    closed = [str(event) for event in scheduler.tick()]
    assert "round 1 of tournament 8 closed" in closed
    with transaction(sessions) as session:
        frozen = session.scalars(select(RoundStake).where(RoundStake.round_id == round_id)).all()
        assert [(row.model_id, row.at_risk) for row in frozen] == [(ids[0], 60 * NMR)]
        resolve_time = session.get_one(Round, round_id).resolve_time
        assert session.scalar(select(RoundResult)) is None
    assert resolve_time is not None

    clock.set(resolve_time)
    assert "round 1 of tournament 8 resolved" in [str(event) for event in scheduler.tick()]
    expected = classic_expected(sessions, round_id, threshold)
    assert {model_id: row.nmr for model_id, row in payouts(sessions, round_id).items()} == expected
    assert expected[ids[0]] != 0
    result = result_of(sessions, round_id)
    assert (result.stakers, result.payout_factor) == (1, "0.5")
    with transaction(sessions) as session:
        assert ledger.balance(session, stake(ids[0]), Currency.NMR) == 60 * NMR + expected[ids[0]]
        assert ledger.verify(session).sound


# --- the 2017 rules ------------------------------------------------------------------------------

LEGACY = {
    # name: (owner, signal, noise, stake in NMR, confidence)
    "sharp": ("alice", 0.20, 0.10, 300, "0.4"),
    "steady": ("bob", 0.08, 0.05, 200, "0.8"),
    "loser": ("alice", -0.12, 0.08, 100, "0.9"),
    "free": ("bob", 0.14, 0.15, 0, None),
}
"""Predictions lean towards the final day's binary target by `signal` (away if negative)."""
POOL_USD = 100_000  # the default rule's weekly auction pool, in cents
PRIZE_USD, PRIZE_DECAY, NMR_PER_USD = Fraction(1000), 1.2, 4


@dataclass
class Legacy:
    sessions: sessionmaker[Session]
    clock: ManualClock
    storage: LocalStorage
    ledger: SqlLedger
    tournament_id: uuid.UUID
    round_id: uuid.UUID
    models: dict[str, uuid.UUID]
    owners: dict[str, uuid.UUID]  # model name → owner's account id

    def fund_pool(self, cents: int) -> None:
        with transaction(self.sessions) as session:
            self.ledger.post(
                session,
                f"fund:{uuid.uuid4()}",
                Currency.USD,
                transfer(OPERATOR_FUNDING, prize_pool(self.tournament_id), cents),
            )

    def balance(self, account: AccountId, currency: Currency) -> int:
        with transaction(self.sessions) as session:
            return self.ledger.balance(session, account, currency)

    def resolve(self) -> RoundResult:
        with transaction(self.sessions) as session:
            round_ = session.get_one(Round, self.round_id)
            RoundLifecycle(None, self.clock).resolve(session, round_)
            return resolve_payouts(session, self.ledger, self.clock, round_)

    def paid(self) -> dict[str, tuple[int, int]]:
        names = {model_id: name for name, model_id in self.models.items()}
        return {
            names[model_id]: (row.nmr, row.usd)
            for model_id, row in payouts(self.sessions, self.round_id).items()
        }


@pytest.fixture
def legacy(sessions: sessionmaker[Session], tmp_path: Path) -> Legacy:
    """A 2017-rules round: four models staked (or not) with different confidences, closed and
    scored to its final day."""
    clock = ManualClock(MONDAY + timedelta(minutes=5))  # the weekly round is open
    ledger = SqlLedger(clock)
    storage = local_storage(tmp_path / "files")
    feed = market_feed()
    rng = np.random.default_rng(2017)
    with transaction(sessions) as session:
        ledger.genesis(session)
        tournament = create_tournament(
            session, clock, 11, "legacy", Rules.RULES2017, Cadence.WEEKLY, "v2"
        )
        accounts = {
            name: sign_up(session, clock, name, f"{name}@example.org", "x" * 10, hasher=CHEAP)
            for name in ("alice", "bob")
        }
        for account in accounts.values():
            grant_nmr(session, ledger, account, GRANT * NMR, f"welcome {account.username}")
        round_ = open_round(
            session, clock, get_tournament(session, 11), FeedPublisher(feed, storage)
        )
        assert round_.market_date is not None
        live = feed.live_era(round_.number, round_.live_era, pd.Timestamp(round_.market_date))
        residual = feed.targets(live, 20)["residual_return"].astype(np.float64)
        lean = 2.0 * (residual > residual.median()) - 1.0  # the final binary target, ±1
        ids = live_ids_of_round(storage, round_)
        lean = lean.reindex(ids)
        models = {}
        for name, (owner, signal, noise, amount, confidence) in LEGACY.items():
            model = create_model(session, clock, accounts[owner], 11, name)
            models[name] = model.id
            values = 0.5 + signal * lean + rng.normal(0, noise, len(ids))
            upload(
                session,
                clock,
                storage,
                round_,
                accounts[owner],
                model.id,
                values.clip(0.02, 0.98).round(6),
            )
            if amount:
                stake_on_round(session, ledger, clock, model, amount * NMR, Decimal(confidence))
        owners = {name: accounts[LEGACY[name][0]].id for name in LEGACY}
        round_id, tournament_id = round_.id, tournament.id
    with transaction(sessions) as session:
        round_ = session.get_one(Round, round_id)
        clock.set(round_.close_time)
        lifecycle = RoundLifecycle(ledger, clock)
        lifecycle.close(session, round_)
        lifecycle.start_scoring(session, round_)
    world = World(sessions, clock, storage, round_id, pd.DataFrame(), {}, set(), models)
    clock.advance(40 * DAY)
    score(world, FeedTargets(feed))
    return Legacy(sessions, clock, storage, ledger, tournament_id, round_id, models, owners)


def live_logloss(legacy: Legacy) -> dict[str, float]:
    names = {model_id: name for name, model_id in legacy.models.items()}
    with transaction(legacy.sessions) as session:
        scores = final_scores(session, legacy.round_id)
        gates = {
            row.model_id: row.value
            for row in session.scalars(
                select(RoundScore).where(
                    RoundScore.round_id == legacy.round_id,
                    RoundScore.metric == "originality_2017",
                )
            )
        }
    assert set(gates.values()) == {1.0}  # every model passed the originality gate
    return {names[model_id]: measured["logloss"] for model_id, measured in scores.items()}


def rank_prize(rank: int) -> tuple[int, int]:
    """(USD cents, NMR units): $1000 × rank^-1.2 to the cent, and 4 NMR per dollar of it
    truncated to 0.01 NMR."""
    usd = PRIZE_USD * Fraction(repr(rank**-PRIZE_DECAY))
    return round(usd * 100), math.floor(usd * NMR_PER_USD * 100) * NMR // 100


@dataclass(frozen=True)
class LegacyExpected:
    burned: dict[str, int]
    ranks: dict[str, int]
    awards: dict[str, int]  # the auction's USD cents, paid to winners only
    nmr: dict[str, int]  # the RoundPayout's NMR: prize less burn
    usd: dict[str, int]  # the RoundPayout's USD: auction award if won, plus prize


def legacy_expected(legacy: Legacy) -> LegacyExpected:
    losses = live_logloss(legacy)
    beaten = {name: exact(loss) < BENCHMARK for name, loss in losses.items()}
    burned = {
        name: LEGACY[name][3] * NMR if exact(loss) > BENCHMARK else 0
        for name, loss in losses.items()
    }
    winners = sorted((loss, name) for name, loss in losses.items() if beaten[name])
    ranks = {name: rank for rank, (_, name) in enumerate(winners, start=1)}
    # by confidence, each stake asks stake/confidence dollars until the pool is spent:
    # loser 100/0.9 → 11111 cents (never paid: it lost), steady 200/0.8 → 25000, and
    # sharp's 300/0.4 → 75000 gets what is left of 100000
    awards = {"loser": 11111, "steady": 25000, "sharp": 100000 - 11111 - 25000, "free": 0}
    nmr, usd = {}, {}
    for name in LEGACY:
        prize_usd, prize_nmr = rank_prize(ranks[name]) if name in ranks else (0, 0)
        nmr[name] = prize_nmr - burned[name]
        usd[name] = (awards[name] if beaten[name] else 0) + prize_usd
    return LegacyExpected(burned, ranks, awards, nmr, usd)


def test_2017_losing_stakes_are_burned_and_winning_ones_returned(legacy: Legacy) -> None:
    legacy.fund_pool(10_000_00)
    expected = legacy_expected(legacy)
    assert expected.burned == {"loser": 100 * NMR, "sharp": 0, "steady": 0, "free": 0}
    legacy.resolve()
    assert legacy.balance(BURNED, Currency.NMR) == 100 * NMR
    for name, model_id in legacy.models.items():
        assert legacy.balance(stake(model_id), Currency.NMR) == 0, name
    prizes = {name: nmr + expected.burned[name] for name, nmr in expected.nmr.items()}
    alice, bob = wallet(legacy.owners["sharp"]), wallet(legacy.owners["steady"])
    # alice: 1000 granted, 300 staked and returned, 100 burned, sharp's prize
    assert legacy.balance(alice, Currency.NMR) == 900 * NMR + prizes["sharp"]
    assert legacy.balance(bob, Currency.NMR) == GRANT * NMR + prizes["steady"] + prizes["free"]
    assert {name: nmr for name, (nmr, _) in legacy.paid().items()} == expected.nmr


def test_2017_rank_prizes_go_by_live_logloss(legacy: Legacy) -> None:
    legacy.fund_pool(10_000_00)
    expected = legacy_expected(legacy)
    assert expected.ranks == {"sharp": 1, "free": 2, "steady": 3}
    assert rank_prize(1) == (100_000, 4_000 * NMR)
    assert rank_prize(2) == (43_528, 174_110 * NMR // 100)  # $435.275..., 1741.10 NMR
    legacy.resolve()
    names = {model_id: name for name, model_id in legacy.models.items()}
    for model_id, row in payouts(legacy.sessions, legacy.round_id).items():
        name = names[model_id]
        assert row.inputs["rank"] == expected.ranks.get(name)
        assert row.inputs["prize_usd"] == (
            rank_prize(expected.ranks[name])[0] if name in expected.ranks else 0
        )
        assert row.rule_version == "legacy2017-v1"
    treasury = legacy.balance(TREASURY, Currency.NMR)
    paid = sum(rank_prize(rank)[1] for rank in expected.ranks.values())
    assert treasury == GENESIS_SUPPLY - 2 * GRANT * NMR - paid


def test_2017_the_auction_pays_by_confidence_and_only_winners(legacy: Legacy) -> None:
    legacy.fund_pool(10_000_00)
    expected = legacy_expected(legacy)
    legacy.resolve()
    names = {model_id: name for name, model_id in legacy.models.items()}
    auction = {
        names[model_id]: row.inputs["auction_award_usd"]
        for model_id, row in payouts(legacy.sessions, legacy.round_id).items()
    }
    assert auction == expected.awards
    assert {name: usd for name, (_, usd) in legacy.paid().items()} == expected.usd
    assert expected.usd["loser"] == 0
    total = sum(expected.usd.values())
    assert legacy.balance(prize_pool(legacy.tournament_id), Currency.USD) == 10_000_00 - total
    alice, bob = wallet(legacy.owners["sharp"]), wallet(legacy.owners["steady"])
    assert legacy.balance(alice, Currency.USD) == expected.usd["sharp"]
    assert legacy.balance(bob, Currency.USD) == expected.usd["steady"] + expected.usd["free"]


def test_2017_usd_is_scaled_pro_rata_when_the_prize_pool_is_short(legacy: Legacy) -> None:
    pool = 1_000_00
    legacy.fund_pool(pool)
    expected = legacy_expected(legacy)
    total = sum(expected.usd.values())
    assert total > pool
    result = legacy.resolve()
    scaled = {name: usd * pool // total for name, usd in expected.usd.items()}
    assert {name: usd for name, (_, usd) in legacy.paid().items()} == scaled
    assert {name: nmr for name, (nmr, _) in legacy.paid().items()} == expected.nmr  # NMR in full
    assert result.scale == f"usd:{pool}"
    assert result.usd_paid == sum(scaled.values())
    assert legacy.balance(prize_pool(legacy.tournament_id), Currency.USD) == pool - result.usd_paid


def test_2017_the_round_result_summarises_the_resolution(legacy: Legacy) -> None:
    legacy.fund_pool(10_000_00)
    expected = legacy_expected(legacy)
    legacy.resolve()
    result = result_of(legacy.sessions, legacy.round_id)
    assert (result.participants, result.stakers, result.at_risk) == (4, 3, 600 * NMR)
    assert result.nmr_burned == 100 * NMR
    assert result.nmr_paid == sum(rank_prize(rank)[1] for rank in expected.ranks.values())
    assert result.usd_paid == sum(expected.usd.values())
    assert (result.payout_factor, result.scale) == (None, "full")
    with transaction(legacy.sessions) as session:
        round_ = session.get_one(Round, legacy.round_id)
        assert replay_payouts(session, round_) == []
        assert legacy.ledger.verify(session).sound
