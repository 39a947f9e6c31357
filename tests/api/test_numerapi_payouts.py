"""The payouts acceptance test, on both databases: numerapi participants play rounds to
resolution under each rule version, and every payout, burn and "Results" summary is checked
against figures computed here, independently, from the stored scores; then
`crowdquant round replay` and `crowdquant ledger audit` pass on that history.

- Classic (tournament 8): four participants stake, unstake and set their stakes with
  numerapi, upload to two overlapping rounds (one upload late), and change stakes between
  the closes; a small stake threshold puts the payout factor below 1.
- 2017 (tournament 11): four participants download the round's numerai_tournament_data.csv and
  upload a probability for each of its rows (validation, test and live) with numerapi, stake on
  the open round over REST at different confidences; the operator funds the prize pool.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from crowdquant.cli import app as cli
from crowdquant.data.release import DatasetVersion
from crowdquant.db.models import (
    PayoutMode,
    Round,
    RoundPayout,
    RoundResult,
    RoundScore,
    RoundStake,
    RoundTargets,
    Rules,
    StakeChange,
    StakeChangeStatus,
    Submission,
    SubmissionCheck,
    Tournament,
)
from crowdquant.db.session import transaction
from crowdquant.ledger import BURNED, TREASURY, prize_pool, release, stake, wallet
from crowdquant.money import GENESIS_SUPPLY, Currency
from crowdquant.tournament.funding import fund_prize_pool
from crowdquant.tournament.rules2017_files import tournament_rows
from crowdquant.tournament.scoring import replay_round
from crowdquant.tournament.tournaments import get_tournament

from ..tournament.live_market import build_dataset_version
from ..tournament.scored_round import market_feed
from .staked_world import (
    NMR,
    START,
    StakedWorld,
    TournamentSpec,
    model_name,
    nmr,
    staked_world,
)

PLAYERS = ("alice", "bob", "carol", "dave")
GRANT = 1_000 * NMR
DAY = timedelta(days=1)
HORIZON = 20  # scoring days of a round

CLASSIC = 8
THRESHOLD = 50 * NMR
CORR_MULTIPLIER, MMC_MULTIPLIER, CLIP = Fraction(1, 2), Fraction(2), Fraction(5, 100)
HURDLE = Fraction(1, 1000)

LEGACY = 11
BENCHMARK = Fraction("0.69314718")
POOL = 1_000_00  # the 2017 rule's auction pool, in cents
PRIZE_USD, PRIZE_DECAY, NMR_PER_USD = Fraction(1000), 1.2, 4
FUNDED = 5_000_00


# --- the money as the test expects it ------------------------------------------------------------


@dataclass
class Books:
    """Every player's wallet, stake and pending release, moved by the rules as the issue
    states them, from what the test did; compared with the ledger at the end."""

    wallet: dict[str, int]
    stake: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    release: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    pending: list[tuple[str, int, int]] = field(default_factory=list)  # who, amount, round
    usd: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    rewarded: int = 0
    burned: int = 0

    def increase(self, who: str, amount: int) -> None:
        self.wallet[who] -= amount
        self.stake[who] += amount

    def decrease(self, who: str, amount: int, due: int | None) -> None:
        """Back to the wallet at once with nothing at risk, else pending until `due`."""
        self.stake[who] -= amount
        if due is None:
            self.wallet[who] += amount
        else:
            self.release[who] += amount
            self.pending.append((who, amount, due))

    def pay(self, who: str, amount: int, *, to_wallet: bool) -> None:
        """A reward from the treasury, or a burn: from the stake first, then the release."""
        if amount >= 0:
            self.rewarded += amount
            if to_wallet:
                self.wallet[who] += amount
            else:
                self.stake[who] += amount
            return
        burn = -amount
        from_stake = min(burn, self.stake[who])
        self.stake[who] -= from_stake
        self.release[who] -= burn - from_stake
        self.burned += burn

    def settle(self, who: str, staked: int, burn: int, prize: int, usd: int) -> None:
        """A 2017 round's stake burned or returned, its NMR prize and its USD paid."""
        self.stake[who] -= staked
        self.wallet[who] += staked - burn + prize
        self.burned += burn
        self.rewarded += prize
        self.usd[who] += usd

    def release_due(self, number: int) -> None:
        for who, amount, due in self.pending:
            if due == number:
                left = min(amount, self.release[who])
                self.release[who] -= left
                self.wallet[who] += left
        self.pending = [entry for entry in self.pending if entry[2] != number]


def check_books(world: StakedWorld, books: Books, tournament: int) -> None:
    """The ledger holds what the test expects, and the books are sound."""
    for name, player in world.players.items():
        model = player.models[tournament]
        assert world.balance(wallet(player.account_id)) == books.wallet[name], name
        assert world.balance(stake(model)) == books.stake[name], name
        assert world.balance(release(model)) == books.release[name], name
        assert world.balance(wallet(player.account_id), Currency.USD) == books.usd[name], name
    assert world.balance(BURNED) == books.burned
    granted = GRANT * len(world.players)
    assert world.balance(TREASURY) == GENESIS_SUPPLY - granted - books.rewarded
    with transaction(world.sessions) as session:
        report = world.ledger.verify(session)
    assert report.sound, [str(problem) for problem in report.problems]


# --- reading what the server stored ------------------------------------------------------------


def round_id(world: StakedWorld, tournament: int, number: int) -> uuid.UUID:
    with transaction(world.sessions) as session:
        return session.scalars(
            select(Round.id)
            .join(Tournament, Tournament.id == Round.tournament_id)
            .where(Tournament.number == tournament, Round.number == number)
        ).one()


def final_scores(world: StakedWorld, round_: uuid.UUID) -> dict[uuid.UUID, dict[str, float]]:
    """Each on-time model's scores of the round's final day, and its day-0 figures."""
    with transaction(world.sessions) as session:
        days = session.scalar(
            select(func.max(RoundTargets.day)).where(RoundTargets.round_id == round_)
        )
        assert days == HORIZON
        rows = session.execute(
            select(RoundScore.model_id, RoundScore.metric, RoundScore.value).where(
                RoundScore.round_id == round_,
                RoundScore.late.is_(False),
                RoundScore.day.in_([0, HORIZON]),
            )
        ).all()
    scores: dict[uuid.UUID, dict[str, float]] = defaultdict(dict)
    for model_id, metric, value in rows:
        assert value is not None
        scores[model_id][metric] = value
    return scores


def frozen(world: StakedWorld, round_: uuid.UUID) -> dict[uuid.UUID, RoundStake]:
    with transaction(world.sessions) as session:
        rows = session.scalars(select(RoundStake).where(RoundStake.round_id == round_)).all()
        session.expunge_all()
    return {row.model_id: row for row in rows}


def paid(world: StakedWorld, round_: uuid.UUID) -> dict[uuid.UUID, RoundPayout]:
    with transaction(world.sessions) as session:
        rows = session.scalars(select(RoundPayout).where(RoundPayout.round_id == round_)).all()
        session.expunge_all()
    return {row.model_id: row for row in rows}


def result_of(world: StakedWorld, round_: uuid.UUID) -> RoundResult | None:
    with transaction(world.sessions) as session:
        found = session.scalar(select(RoundResult).where(RoundResult.round_id == round_))
        session.expunge_all()
    return found


def exact(value: float) -> Fraction:
    """A stored score at its repr, as people read it."""
    return Fraction(repr(value))


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


# --- the participants' side ----------------------------------------------------------------------


def download_live(world: StakedWorld, name: str, tournament: int, folder: Path) -> pd.DataFrame:
    """The open round's live file, downloaded with numerapi."""
    version = "v1" if tournament == CLASSIC else "v2"
    path = folder / f"{name}_{tournament}_{world.clock.now():%d%H}" / "live.parquet"
    world.napi(name, tournament).download_dataset(f"{version}/live.parquet", str(path))
    return pd.read_parquet(path)


def classic_predictions(live: pd.DataFrame, name: str) -> pd.DataFrame:
    """Each participant's own model: a feature, its opposite, noise, another feature."""
    features = [c for c in live.columns if c not in ("era", "data_type")]
    rng = np.random.default_rng(PLAYERS.index(name))
    jitter = rng.uniform(0, 0.01, len(live))
    values = {
        "alice": live[features[0]] + jitter,
        "bob": -live[features[1]] + jitter,
        "carol": pd.Series(rng.uniform(0, 1, len(live)), index=live.index),
        "dave": live[features[2]] - live[features[3]] + jitter,
    }[name]
    return pd.DataFrame({"id": live.index, "prediction": values.rank(pct=True).to_numpy()})


def upload(world: StakedWorld, name: str, tournament: int, frame: pd.DataFrame) -> None:
    model = str(world.model(name, tournament))
    world.napi(name, tournament).upload_predictions(model_id=model, df=frame)


def replay_and_audit(world: StakedWorld, monkeypatch: pytest.MonkeyPatch, tournament: int) -> None:
    """`crowdquant round replay` reproduces every resolved round of `tournament` (scores and
    payouts) and `crowdquant ledger audit` finds the books sound, run as the operator would
    on the test's database and storage."""
    engine = world.sessions.kw["bind"]
    monkeypatch.setenv("CROWDQUANT_HOME", str(world.home))
    monkeypatch.setenv("CROWDQUANT_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    with transaction(world.sessions) as session:
        numbers = list(
            session.scalars(
                select(Round.number)
                .join(RoundResult, RoundResult.round_id == Round.id)
                .where(Round.tournament_id == get_tournament(session, tournament).id)
                .order_by(Round.number)
            )
        )
    assert numbers
    runner = CliRunner()
    audit = runner.invoke(cli, ["ledger", "audit"])
    assert audit.exit_code == 0, audit.output
    assert "sound" in audit.output
    replays = [
        runner.invoke(
            cli, ["round", "replay", "--tournament", str(tournament), "--round", str(number)]
        )
        for number in numbers
    ]
    for replay in replays:  # the payouts first: they reproduce even where a score does not
        assert "payouts reproduced exactly" in replay.output, replay.output
    for replay in replays:
        assert "stored scores reproduced exactly" in replay.output, replay.output
        assert replay.exit_code == 0, replay.output


# --- classic -------------------------------------------------------------------------------------


def classic_payout(at_risk: int, factor: Fraction, corr: float, mmc: float) -> int:
    """at_risk × clip(factor × (c·CORR + m·MMC − hurdle), ±clip), truncated toward zero."""
    score = CORR_MULTIPLIER * exact(corr) + MMC_MULTIPLIER * exact(mmc) - HURDLE
    return int(at_risk * max(-CLIP, min(CLIP, factor * score)))


@dataclass(frozen=True)
class ClassicRound:
    number: int
    id: uuid.UUID
    at_risk: dict[str, int]  # the stakes at the close, as the test tracked them
    participants: int


def resolve_classic(
    world: StakedWorld, books: Books, played: ClassicRound, wallet_mode: set[str]
) -> dict[str, int]:
    """The round's payouts computed here from its stored final scores; applied to `books`."""
    scores = final_scores(world, played.id)
    total = sum(played.at_risk.values())
    factor = min(Fraction(1), Fraction(THRESHOLD, total))
    payouts = {}
    for name, at_risk in sorted(played.at_risk.items()):
        measured = scores[world.model(name)]
        payouts[name] = classic_payout(at_risk, factor, measured["corr"], measured["mmc"])
        books.pay(name, payouts[name], to_wallet=name in wallet_mode)
    books.release_due(played.number)
    return payouts


def check_classic_round(
    world: StakedWorld, played: ClassicRound, payouts: dict[str, int], resolved_at: datetime
) -> None:
    """Stakes frozen, payouts and the round's Results summary as computed."""
    names = {world.model(name): name for name in PLAYERS}
    assert {names[m]: row.at_risk for m, row in frozen(world, played.id).items()} == (
        played.at_risk
    )
    rows = paid(world, played.id)
    assert {names[m]: row.nmr for m, row in rows.items()} == payouts
    assert {names[m]: row.at_risk for m, row in rows.items()} == played.at_risk
    assert all(row.usd == 0 and row.rule_version == "classic-v2" for row in rows.values())
    total = sum(played.at_risk.values())
    factor = min(Fraction(1), Fraction(THRESHOLD, total))
    result = result_of(world, played.id)
    assert result is not None
    assert (result.participants, result.stakers, result.at_risk) == (
        played.participants,
        len(played.at_risk),
        total,
    )
    assert result.nmr_paid == sum(p for p in payouts.values() if p > 0)
    assert result.nmr_burned == sum(-p for p in payouts.values() if p < 0)
    assert (result.usd_paid, result.scale) == (0, "full")
    assert result.payout_factor is not None
    assert Fraction(Decimal(result.payout_factor)) == factor
    assert as_utc(result.resolved_at) == resolved_at


def check_classic_results_route(
    world: StakedWorld, played: ClassicRound, payouts: dict[str, int]
) -> None:
    with world.rest() as client:
        answer = client.get(f"/tournaments/{CLASSIC}/rounds/{played.number}/results")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    total = sum(played.at_risk.values())
    assert (body["rule_version"], body["participants"], body["controlling_capital"]) == (
        "classic-v2",
        played.participants,
        len(played.at_risk),
    )
    assert Decimal(body["at_risk"]) == nmr(total)
    assert Decimal(body["nmr_paid"]) == nmr(sum(p for p in payouts.values() if p > 0))
    assert Decimal(body["nmr_burned"]) == nmr(sum(-p for p in payouts.values() if p < 0))
    assert (body["usd_paid"], body["scale"]) == ("0.00", "full")
    assert Fraction(Decimal(body["payout_factor"])) == min(1, Fraction(THRESHOLD, total))
    shown = {
        row["model"]: (Decimal(row["at_risk"]), Decimal(row["nmr"])) for row in body["payouts"]
    }
    assert shown == {
        model_name(name, CLASSIC): (nmr(at_risk), nmr(payouts[name]))
        for name, at_risk in played.at_risk.items()
    }
    corr = [row["inputs"]["corr"] for row in body["payouts"]]
    assert corr == sorted(corr, reverse=True)  # ranked by CORR


def check_classic_numerapi(
    world: StakedWorld,
    books: Books,
    rounds: list[ClassicRound],
    payouts: dict[int, dict[str, int]],
) -> None:
    """What numerapi reads back: stakes, wallets, statements, payouts, round performances."""
    results = {played.number: result_of(world, played.id) for played in rounds}
    for name in PLAYERS:
        napi = world.napi(name)
        assert napi.stake_get(model_name(name, CLASSIC)) == nmr(books.stake[name])
        assert napi.get_account()["availableNmr"] == nmr(books.wallet[name])
        transactions = napi.wallet_transactions()
        net = sum(tx["amount"] if tx["to"] == "wallet" else -tx["amount"] for tx in transactions)
        assert net == nmr(books.wallet[name])
        assert transactions[-1]["type"] == "grant"
        got = napi.pending_model_payouts()
        assert got["pending"] == []
        assert sorted((p["roundNumber"], p["payoutNmr"]) for p in got["actual"]) == sorted(
            (played.number, nmr(payouts[played.number][name]))
            for played in rounds
            if name in played.at_risk
        )
        with pytest.warns(DeprecationWarning):  # numerapi's own deprecation of this call
            performances = napi.round_model_performances_v2(str(world.model(name)))
        staked_in = {played.number for played in rounds if name in played.at_risk}
        assert staked_in <= {performance["roundNumber"] for performance in performances}
        for performance in performances:
            number = performance["roundNumber"]
            (played,) = [r for r in rounds if r.number == number]
            if name not in played.at_risk:
                continue
            assert performance["atRisk"] == nmr(played.at_risk[name])
            result = results[number]
            assert result is not None and result.payout_factor is not None
            assert Decimal(performance["roundPayoutFactor"]) == Decimal(result.payout_factor)
            settled = [
                s["payoutSettled"]
                for s in performance["submissionScores"]
                if s["day"] == HORIZON and s["displayName"] == "corr"
            ]
            assert settled == [nmr(payouts[number][name])]
    bob = world.napi("bob").wallet_transactions()
    rewards = [tx for tx in bob if tx["type"] == "payout"]  # bob is paid into his wallet
    assert sum(tx["amount"] for tx in rewards if tx["to"] == "wallet") == nmr(
        sum(max(payouts[played.number]["bob"], 0) for played in rounds)
    )


def test_classic_rounds_pay_and_burn_as_computed_from_the_stored_scores(
    sessions: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = TournamentSpec(
        CLASSIC, Rules.CLASSIC, "v1", {"payout_rule": {"stake_threshold": str(THRESHOLD)}}
    )
    with staked_world(sessions, tmp_path, [spec], PLAYERS, GRANT) as world:
        books = Books(wallet=dict.fromkeys(PLAYERS, GRANT))
        model = {name: str(world.model(name)) for name in PLAYERS}
        napi = {name: world.napi(name) for name in PLAYERS}

        # round 1: alice, bob and carol upload on time; dave's upload comes late
        one = world.open_round(CLASSIC, resolve_after=35 * DAY)
        live = download_live(world, "alice", CLASSIC, tmp_path)
        for name in ("alice", "bob", "carol"):
            upload(world, name, CLASSIC, classic_predictions(live, name))
        napi["alice"].stake_increase(40, model["alice"])
        books.increase("alice", 40 * NMR)
        assert napi["bob"].stake_set(30, model["bob"])["type"] == "increase"
        books.increase("bob", 30 * NMR)
        napi["carol"].stake_increase(60, model["carol"])
        books.increase("carol", 60 * NMR)
        back = napi["carol"].stake_decrease(5, model["carol"])  # nothing at risk: back at once
        assert back["status"] == "released"
        books.decrease("carol", 5 * NMR, None)
        napi["dave"].stake_increase("40", model["dave"])
        books.increase("dave", 40 * NMR)
        with world.rest("bob") as client:
            mode = client.put(f"/models/{model['bob']}/payout-mode", json={"mode": "wallet"})
        assert mode.status_code == 200 and mode.json()["payout_mode"] == PayoutMode.WALLET
        check_books(world, books, CLASSIC)

        closed_one = START + timedelta(hours=2)
        assert "round 1 of tournament 8 closed" in world.tick_at(closed_one)
        on_time = ("alice", "bob", "carol")  # dave has a stake, but no on-time upload
        round_one = ClassicRound(
            one, round_id(world, CLASSIC, one), {n: books.stake[n] for n in on_time}, 3
        )
        assert round_one.at_risk == {"alice": 40 * NMR, "bob": 30 * NMR, "carol": 55 * NMR}
        upload(world, "dave", CLASSIC, classic_predictions(live, "dave"))  # late
        with transaction(world.sessions) as session:
            late = session.scalars(
                select(Submission.late).where(Submission.round_id == round_one.id)
            ).all()
        assert sorted(late) == [False, False, False, True]

        # between the closes: alice stakes more, carol unstakes (due at round 1's resolution)
        napi["alice"].stake_increase(10, model["alice"])
        books.increase("alice", 10 * NMR)
        pending = napi["carol"].stake_decrease(15, model["carol"])
        assert (pending["status"], pending["dueDate"]) == ("pending", START + 35 * DAY)
        books.decrease("carol", 15 * NMR, one)

        # round 2, a day later: everyone on time
        world.clock.set(START + DAY)
        two = world.open_round(CLASSIC, resolve_after=35 * DAY)
        live = download_live(world, "bob", CLASSIC, tmp_path)
        for name in PLAYERS:
            upload(world, name, CLASSIC, classic_predictions(live, name))
        assert "round 2 of tournament 8 closed" in world.tick_at(START + DAY + timedelta(hours=2))
        round_two = ClassicRound(
            two, round_id(world, CLASSIC, two), {n: books.stake[n] for n in PLAYERS}, 4
        )
        assert sum(round_two.at_risk.values()) == 160 * NMR  # 50 + 30 + 40 + 40
        later = napi["bob"].stake_decrease(5, model["bob"])  # due at round 2's resolution
        assert (later["status"], later["dueDate"]) == ("pending", START + 36 * DAY)
        books.decrease("bob", 5 * NMR, two)
        check_books(world, books, CLASSIC)

        # scoring: nothing is paid before a round resolves
        world.tick_at(START + 10 * DAY)
        waiting = napi["carol"].pending_model_payouts()
        assert waiting["actual"] == []
        assert sorted(p["roundNumber"] for p in waiting["pending"]) == [one, two]
        assert result_of(world, round_one.id) is None

        # round 1 resolves: carol's release comes back, bob's waits for round 2
        resolved_one = START + 35 * DAY + timedelta(minutes=1)
        happened = world.tick_at(resolved_one)
        assert "round 1 of tournament 8 resolved" in happened
        assert "round 2 of tournament 8 resolved" not in happened
        status = napi["carol"].pipeline_status(resolved_one.date().isoformat())
        assert status["resolvedAt"] == resolved_one
        payouts = {one: resolve_classic(world, books, round_one, {"bob"})}
        check_books(world, books, CLASSIC)
        assert books.release["bob"] == 5 * NMR and books.release["carol"] == 0
        with transaction(world.sessions) as session:
            statuses = {
                row.model_id: (row.status, row.released)
                for row in session.scalars(
                    select(StakeChange).where(StakeChange.due_round_id.is_not(None))
                )
            }
        assert statuses == {
            world.model("carol"): (StakeChangeStatus.RELEASED, 15 * NMR),
            world.model("bob"): (StakeChangeStatus.PENDING, None),
        }

        resolved_two = START + 36 * DAY + timedelta(minutes=1)
        assert "round 2 of tournament 8 resolved" in world.tick_at(resolved_two)
        payouts[two] = resolve_classic(world, books, round_two, {"bob"})
        check_books(world, books, CLASSIC)
        assert books.release["bob"] == 0

        for number in (one, two):  # the market gave both rewards and burns
            assert min(payouts[number].values()) < 0 < max(payouts[number].values())
        check_classic_round(world, round_one, payouts[one], resolved_one)
        check_classic_round(world, round_two, payouts[two], resolved_two)
        for played in (round_one, round_two):
            check_classic_results_route(world, played, payouts[played.number])
        check_classic_numerapi(world, books, [round_one, round_two], payouts)
        replay_and_audit(world, monkeypatch, CLASSIC)


def test_a_late_upload_after_day_0_was_scored_leaves_the_round_replayable(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """The close's tick scores day 0 of the on-time uploads; a late upload arrives after
    it. Replaying the round (every submission in one batch) must give the stored figures."""
    spec = TournamentSpec(CLASSIC, Rules.CLASSIC, "v1")
    with staked_world(sessions, tmp_path, [spec], PLAYERS, GRANT) as world:
        number = world.open_round(CLASSIC, resolve_after=35 * DAY)
        live = download_live(world, "alice", CLASSIC, tmp_path)
        for name in ("alice", "bob", "carol"):
            upload(world, name, CLASSIC, classic_predictions(live, name))
        assert "round 1 of tournament 8 closed" in world.tick_at(START + timedelta(hours=2))
        upload(world, "dave", CLASSIC, classic_predictions(live, "dave"))  # late
        world.tick_at(START + 10 * DAY)
        with transaction(world.sessions) as session:
            round_ = session.get_one(Round, round_id(world, CLASSIC, number))
            differences = replay_round(session, world.clock, world.storage, round_)
        assert [str(difference) for difference in differences] == []


# --- 2017 ----------------------------------------------------------------------------------------

BIDS = {
    # name: (signal towards the final target, noise, stake in NMR, confidence)
    "alice": (0.20, 0.10, 300, "0.75"),  # asks $400
    "dave": (-0.30, 0.02, 50, "0.5"),  # confidently wrong; asks $100
    "bob": (0.10, 0.05, 240, "0.4"),  # asks $600: gets what is left of the pool
    "carol": (0.15, 0.10, 100, "0.2"),  # asks $500: nothing is left
}
"""Probabilities lean towards the final day's binary target by `signal` (away if negative)."""


def asked(stake_nmr: int, confidence: str) -> int:
    """What a stake bids for, s/c USD, in whole cents rounded down."""
    return math.floor(Fraction(stake_nmr * 100) / Fraction(confidence))


def auction(eligible: set[str]) -> dict[str, int]:
    """The pool in cents, to the eligible bids by confidence (highest first) until spent."""
    left, awards = POOL, dict.fromkeys(BIDS, 0)
    for name in sorted(eligible, key=lambda n: -Fraction(BIDS[n][3])):
        awards[name] = min(asked(BIDS[name][2], BIDS[name][3]), left)
        left -= awards[name]
    return awards


def rank_prize(rank: int) -> tuple[int, int]:
    """(USD cents, NMR units): $1000 × rank^-1.2 to the cent, and 4 NMR per dollar of it
    truncated to 0.01 NMR."""
    usd = PRIZE_USD * Fraction(repr(rank**-PRIZE_DECAY))
    return round(usd * 100), math.floor(usd * NMR_PER_USD * 100) * NMR // 100


def download_tournament_data(
    world: StakedWorld, name: str, number: int, folder: Path
) -> pd.DataFrame:
    """The round's numerai_tournament_data.csv, downloaded with numerapi by its 2017 name."""
    path = folder / f"{name}_{number}" / "numerai_tournament_data.csv"
    world.napi(name, LEGACY).download_dataset(
        "numerai_tournament_data.csv", str(path), round_num=number
    )
    return pd.read_csv(path, dtype={"id": str}, index_col="id")


def legacy_predictions(world: StakedWorld, tournament: pd.DataFrame, name: str) -> pd.DataFrame:
    """A probability for every row of the round's tournament file: the live rows lean
    towards (or away from) the round's final binary target; the validation and test rows
    towards their known target, by the same amount (so every player is consistent and
    concordant, and a confidently wrong one is wrong on live rows only)."""
    with transaction(world.sessions) as session:
        round_ = session.scalars(
            select(Round).join(Tournament).where(Tournament.number == LEGACY)
        ).one()
        number, era, market_date = round_.number, round_.live_era, round_.market_date
        rows = tournament_rows(session, world.storage, round_)  # the operator's id map
    assert rows is not None and rows.index.equals(tournament.index)
    feed = market_feed()
    live_era = feed.live_era(number, era, pd.Timestamp(market_date))
    residual = feed.targets(live_era, HORIZON)["residual_return"].astype(np.float64)
    up = 2.0 * (residual > residual.median()) - 1.0
    lean = pd.Series(0.0, index=tournament.index)
    live = rows[rows["data_type"] == "live"]
    signal, noise, _, _ = BIDS[name]
    lean[live.index] = signal * up.reindex(live["original_id"]).to_numpy()
    known = rows[rows["data_type"] != "live"]
    lean[known.index] = abs(signal) * (2.0 * known["target"].astype(np.float64) - 1.0)
    rng = np.random.default_rng(PLAYERS.index(name) + 2017)
    values = (0.5 + lean + rng.normal(0, noise, len(lean))).clip(0.02, 0.98)
    return pd.DataFrame({"id": lean.index, "probability": values.round(6).to_numpy()})


@dataclass(frozen=True)
class LegacyExpected:
    logloss: dict[str, float]
    eligible: set[str]
    burned: dict[str, int]
    ranks: dict[str, int]
    awards: dict[str, int]  # the auction's allocation, in cents (paid only to winners)
    nmr: dict[str, int]  # prize less burn
    usd: dict[str, int]  # award if won, plus prize

    def prize(self, name: str) -> tuple[int, int]:
        return rank_prize(self.ranks[name]) if name in self.ranks else (0, 0)


def consistency(world: StakedWorld, round_: uuid.UUID, predictions: pd.DataFrame) -> float:
    """The share of validation eras whose logloss beats ln 2, computed here from the
    uploaded probabilities and the operator's validation targets."""
    with transaction(world.sessions) as session:
        rows = tournament_rows(session, world.storage, session.get_one(Round, round_))
    assert rows is not None
    validation = rows[rows["data_type"] == "validation"]
    p = predictions.set_index("id")["probability"].reindex(validation.index)
    y = validation["target"].astype(np.float64)
    losses = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return float((losses.groupby(validation["era"]).mean() < math.log(2)).mean())


def upload_gates(world: StakedWorld, round_: uuid.UUID) -> dict[uuid.UUID, dict[str, float]]:
    """The consistency and concordance stored with each model's upload."""
    with transaction(world.sessions) as session:
        found = session.execute(
            select(Submission.model_id, SubmissionCheck.metric, SubmissionCheck.value)
            .join(Submission, Submission.id == SubmissionCheck.submission_id)
            .where(
                Submission.round_id == round_,
                SubmissionCheck.metric.in_(("consistency", "concordance")),
            )
        ).all()
    gates: dict[uuid.UUID, dict[str, float]] = {}
    for model_id, metric, value in found:
        gates.setdefault(model_id, {})[metric] = value
    return gates


def legacy_expected(
    world: StakedWorld, round_: uuid.UUID, uploaded: dict[str, pd.DataFrame]
) -> LegacyExpected:
    """Burns, auction awards and rank prizes computed here from the stored live logloss (the
    final day's), the day-0 originality gate, the consistency gate (computed here, and
    checked against the figure stored at upload) and the concordance stored at upload."""
    scores = final_scores(world, round_)
    names = {world.model(name, LEGACY): name for name in PLAYERS}
    logloss = {names[m]: measured["logloss"] for m, measured in scores.items()}
    gates = upload_gates(world, round_)
    eligible = set()
    for model_id, measured in scores.items():
        name = names[model_id]
        consistent = consistency(world, round_, uploaded[name])
        assert gates[model_id]["consistency"] == pytest.approx(consistent, abs=1e-12)
        concordant = gates[model_id]["concordance"] == 1.0
        if measured["originality_2017"] >= 0.5 and consistent >= 0.75 and concordant:
            eligible.add(name)
    won = {name for name, loss in logloss.items() if exact(loss) < BENCHMARK}
    burned = {
        name: BIDS[name][2] * NMR if exact(loss) > BENCHMARK else 0
        for name, loss in logloss.items()
    }
    winners = sorted((exact(logloss[name]), name) for name in won & eligible)
    ranks = {name: rank for rank, (_, name) in enumerate(winners, start=1)}
    awards = auction(eligible)
    nmr_paid, usd_paid = {}, {}
    for name in PLAYERS:
        prize_usd, prize_nmr = rank_prize(ranks[name]) if name in ranks else (0, 0)
        nmr_paid[name] = prize_nmr - burned[name]
        usd_paid[name] = (awards[name] if name in won else 0) + prize_usd
    return LegacyExpected(logloss, eligible, burned, ranks, awards, nmr_paid, usd_paid)


@pytest.fixture(scope="module")
def legacy_version(tmp_path_factory: pytest.TempPathFactory) -> DatasetVersion:
    """The version the 2017 rounds publish their CSV files from."""
    return build_dataset_version(tmp_path_factory.mktemp("legacy"), version="v2")


def test_2017_round_burns_returns_awards_and_prizes_as_computed(
    sessions: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    legacy_version: DatasetVersion,
) -> None:
    spec = TournamentSpec(LEGACY, Rules.RULES2017, "v2")
    with staked_world(
        sessions, tmp_path, [spec], PLAYERS, GRANT, legacy_version=legacy_version
    ) as world:
        books = Books(wallet=dict.fromkeys(PLAYERS, GRANT))
        number = world.open_round(LEGACY, resolve_after=35 * DAY)
        tournament_data = download_tournament_data(world, "carol", number, tmp_path)
        assert set(tournament_data["data_type"]) == {"validation", "test", "live"}
        uploaded = {name: legacy_predictions(world, tournament_data, name) for name in PLAYERS}
        for name in PLAYERS:
            upload(world, name, LEGACY, uploaded[name])
            model = world.model(name, LEGACY)
            _, _, amount, confidence = BIDS[name]
            with world.rest(name) as client:
                staked = client.put(
                    f"/models/{model}/round-stake",
                    json={"amount": str(amount), "confidence": confidence},
                )
            assert staked.status_code == 200, staked.text
            assert (staked.json()["at_risk"], staked.json()["confidence"]) == (
                str(amount),
                confidence,
            )
            books.increase(name, amount * NMR)
        with transaction(world.sessions) as session:
            tournament = get_tournament(session, LEGACY)
            fund_prize_pool(session, world.ledger, tournament, FUNDED, "prizes-round-1")
            pool = prize_pool(tournament.id)
        check_books(world, books, LEGACY)

        assert f"round {number} of tournament {LEGACY} closed" in world.tick_at(
            START + timedelta(hours=2)
        )
        played = round_id(world, LEGACY, number)
        assert {m: (row.at_risk, row.confidence) for m, row in frozen(world, played).items()} == {
            world.model(name, LEGACY): (bid[2] * NMR, Decimal(bid[3])) for name, bid in BIDS.items()
        }
        resolved_at = START + 35 * DAY + timedelta(minutes=1)
        assert f"round {number} of tournament {LEGACY} resolved" in world.tick_at(resolved_at)

        expected = legacy_expected(world, played, uploaded)
        assert expected.eligible == set(PLAYERS)  # original, consistent and concordant
        assert expected.burned["dave"] == 50 * NMR  # confidently wrong: worse than ln 2
        # the auction by confidence: alice's $400, dave's $100 (lost: never paid), bob takes
        # what is left of the pool, carol's bid comes after it is spent
        assert expected.awards == {"alice": 400_00, "dave": 100_00, "bob": 500_00, "carol": 0}
        assert expected.usd["dave"] == 0
        assert len(expected.ranks) >= 2  # rank prizes go to several winners
        for name in PLAYERS:
            staked, burn, prize = BIDS[name][2] * NMR, expected.burned[name], expected.prize(name)
            books.settle(name, staked, burn, prize[1], expected.usd[name])
        check_books(world, books, LEGACY)
        assert world.balance(pool, Currency.USD) == FUNDED - sum(expected.usd.values())

        names = {world.model(name, LEGACY): name for name in PLAYERS}
        rows = paid(world, played)
        assert {names[m]: (row.nmr, row.usd) for m, row in rows.items()} == {
            name: (expected.nmr[name], expected.usd[name]) for name in PLAYERS
        }
        for model_id, row in rows.items():
            name = names[model_id]
            assert row.rule_version == "legacy2017-v1"
            assert (row.inputs["rank"], row.inputs["auction_award_usd"]) == (
                expected.ranks.get(name),
                expected.awards[name],
            )
            assert row.inputs["prize_usd"] == expected.prize(name)[0]
        result = result_of(world, played)
        assert result is not None
        assert (result.participants, result.stakers) == (4, 4)
        assert result.at_risk == sum(bid[2] for bid in BIDS.values()) * NMR
        assert result.nmr_paid == books.rewarded
        assert result.nmr_burned == books.burned
        assert result.usd_paid == sum(expected.usd.values())
        assert (result.payout_factor, result.scale) == (None, "full")
        assert as_utc(result.resolved_at) == resolved_at

        check_legacy_reads(world, number, expected, books)
        replay_and_audit(world, monkeypatch, LEGACY)


def check_legacy_reads(
    world: StakedWorld, number: int, expected: LegacyExpected, books: Books
) -> None:
    """The REST results and wallet, and numerapi's wallet and payouts, as computed."""
    with world.rest() as client:
        answer = client.get(f"/tournaments/{LEGACY}/rounds/{number}/results")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert (body["rule_version"], body["participants"], body["controlling_capital"]) == (
        "legacy2017-v1",
        4,
        4,
    )
    assert Decimal(body["nmr_burned"]) == nmr(books.burned)
    assert Decimal(body["nmr_paid"]) == nmr(books.rewarded)
    assert Decimal(body["usd_paid"]) == Decimal(sum(expected.usd.values())) / 100
    ranked = [row["model"] for row in body["payouts"]]
    by_rank = sorted(expected.ranks, key=expected.ranks.__getitem__)
    assert ranked[: len(by_rank)] == [model_name(name, LEGACY) for name in by_rank]
    for row in body["payouts"]:
        name = row["model"].removesuffix(f"_{LEGACY}")
        assert (Decimal(row["nmr"]), Decimal(row["usd"])) == (
            nmr(expected.nmr[name]),
            Decimal(expected.usd[name]) / 100,
        )
        assert row["inputs"]["live_logloss"] == expected.logloss[name]
    for name in PLAYERS:
        with world.rest(name) as client:
            mine = client.get("/account/wallet").json()
        assert Decimal(mine["nmr"]) == nmr(books.wallet[name])
        assert Decimal(mine["usd"]) == Decimal(books.usd[name]) / 100
        napi = world.napi(name, LEGACY)
        assert napi.get_account()["availableNmr"] == nmr(books.wallet[name])
        (payout,) = napi.pending_model_payouts()["actual"]
        assert (payout["roundNumber"], payout["payoutNmr"], payout["payoutValue"]) == (
            number,
            nmr(expected.nmr[name]),
            Decimal(expected.usd[name]) / 100,
        )
        kinds = [tx["type"] for tx in napi.wallet_transactions()]
        assert kinds.count("payout") == (0 if name == "dave" else 1), kinds  # dave's burn
