"""Per-round stakes end to end, on both databases: numerapi participants stake on one round
of a `round-stake` tournament (Numerai's 2026 rule), the round resolves, and each stake
comes back less its burn, with round_stake × clip(5·CORR + 10·MMC, ±1) computed here from
the stored scores. A near-duplicate of an account's own model counts once (no weight in the
meta model, its stake returned whole); one across accounts is flagged on the round's table.
numerapi's `list_rounds` reads each round's score configs as recorded when it opened (a
settings change applies from the next round), and `round_model_performances_v2` the
multipliers it paid by; `crowdquant round replay` and
`crowdquant ledger audit` pass on that history.
"""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from crowdquant.cli import app as cli
from crowdquant.db.models import Account, MetaModel, Round, RoundResult, Rules, Submission
from crowdquant.db.session import transaction
from crowdquant.ledger import stake
from crowdquant.tournament.models import create_model
from crowdquant.tournament.tournaments import get_tournament, update_settings

from .staked_world import NMR, START, TournamentSpec, staked_world
from .test_numerapi_payouts import (
    Books,
    check_books,
    classic_predictions,
    download_live,
    exact,
    final_scores,
    paid,
    replay_and_audit,
    round_id,
    upload,
)

PLAYERS = ("alice", "bob", "carol", "dave")
GRANT = 1_000 * NMR
DAY = timedelta(days=1)
ROUND_STAKE = 12
STAKES = {"alice": 100 * NMR, "bob": 50 * NMR, "carol": 20 * NMR, "dave": 10 * NMR}
COPY_STAKE = 30 * NMR


def round_stake_payout(at_risk: int, corr: float, mmc: float, corr_multiplier: int) -> int:
    """at_risk × clip(c·CORR + 10·MMC, ±1), truncated toward zero."""
    score = corr_multiplier * exact(corr) + 10 * exact(mmc)
    return int(at_risk * max(Fraction(-1), min(Fraction(1), score)))


def test_round_stakes_pay_by_the_configs_each_round_recorded_and_numerapi_reads_them(
    sessions: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = TournamentSpec(ROUND_STAKE, Rules.ROUND_STAKE, "v2")
    with staked_world(sessions, tmp_path, [spec], PLAYERS, GRANT) as world:
        books = Books(wallet=dict.fromkeys(PLAYERS, GRANT))
        napi = {name: world.napi(name, ROUND_STAKE) for name in PLAYERS}
        one = world.open_round(ROUND_STAKE, resolve_after=35 * DAY)
        live = download_live(world, "alice", ROUND_STAKE, tmp_path)
        predictions = {name: classic_predictions(live, name) for name in PLAYERS}
        predictions["dave"] = predictions["bob"]  # dave copies bob: flagged, both count
        for name in PLAYERS:
            upload(world, name, ROUND_STAKE, predictions[name])
            napi[name].stake_increase(STAKES[name] // NMR, str(world.model(name, ROUND_STAKE)))
            books.increase(name, STAKES[name])
        # alice's second model nearly duplicates her first: it counts once (the first,
        # staked more, is kept) and its stake comes back whole
        with transaction(world.sessions) as session:
            account = session.get(Account, world.players["alice"].account_id)
            assert account is not None
            copy = create_model(session, world.clock, account, ROUND_STAKE, "alice_copy").id
        nudged = predictions["alice"].copy()
        nudged["prediction"] = (nudged["prediction"] + np.linspace(0, 1e-4, len(nudged))) / 1.01
        napi["alice"].upload_predictions(model_id=str(copy), df=nudged)
        napi["alice"].stake_increase(COPY_STAKE // NMR, str(copy))
        books.wallet["alice"] -= COPY_STAKE
        check_books(world, books, ROUND_STAKE)
        assert world.balance(stake(copy)) == COPY_STAKE

        # the operator changes the rule while round 1 is open: round 2 takes it, 1 keeps its own
        with transaction(world.sessions) as session:
            found = get_tournament(session, ROUND_STAKE)
            update_settings(
                session, found, {"payout_rule": {"corr_multiplier": "3", "hurdle": "0.01"}}
            )
        assert f"round 1 of tournament {ROUND_STAKE} closed" in world.tick_at(
            START + timedelta(hours=2)
        )
        world.clock.set(START + DAY)
        two = world.open_round(ROUND_STAKE, resolve_after=35 * DAY)

        rounds = {row["number"]: row for row in napi["bob"].list_rounds()}
        assert set(rounds) == {one, two}
        paying = {
            number: {
                config["name"]: (
                    config["defaultMultiplier"],
                    config["clipThreshold"],
                    config["payoutFactor"],
                    config["stakeThreshold"],
                )
                for config in row["roundScoreConfigs"]
                if config["isPayout"]
            }
            for number, row in rounds.items()
        }
        assert paying[one] == {"corr": (5.0, 1.0, 1.0, None), "mmc": (10.0, 1.0, 1.0, None)}
        assert paying[two] == {"corr": (3.0, 1.0, 1.0, None), "mmc": (10.0, 1.0, 1.0, None)}
        hurdles = napi["bob"].raw_query(
            "query($t: Int) { rounds(tournament: $t) {"
            " number roundScoreConfigs { name hurdle } } }",
            {"t": ROUND_STAKE},
        )["data"]["rounds"]
        assert {
            (row["number"], config["name"], config["hurdle"])
            for row in hurdles
            for config in row["roundScoreConfigs"]
            if config["name"] in {"corr", "bmc"}
        } == {(one, "corr", None), (one, "bmc", None), (two, "corr", 0.01), (two, "bmc", None)}
        first = rounds[one]["roundScoreConfigs"]
        assert [c["name"] for c in first if c["isCanonScore"]] == ["corr"]
        assert {c["name"] for c in first if not c["isPayout"]} == {"fnc", "bmc"}
        assert {(c["totalScoreDays"], c["returnsLagDays"]) for c in first} == {(20, 2)}
        assert {c["scoringEnd"] for c in first} == {START + 35 * DAY}
        assert napi["bob"].list_rounds(number=one)[0]["roundScoreConfigs"] == first

        resolved = START + 35 * DAY + timedelta(minutes=1)
        assert f"round 1 of tournament {ROUND_STAKE} resolved" in world.tick_at(resolved)
        played = round_id(world, ROUND_STAKE, one)
        scores = final_scores(world, played)
        stored = paid(world, played)
        payouts = {}
        for name in PLAYERS:
            measured = scores[world.model(name, ROUND_STAKE)]
            payouts[name] = round_stake_payout(
                STAKES[name], measured["corr"], measured["mmc"], corr_multiplier=5
            )
            assert stored[world.model(name, ROUND_STAKE)].nmr == payouts[name], name
            books.settle(name, STAKES[name], max(-payouts[name], 0), max(payouts[name], 0), 0)
        assert min(payouts.values()) < 0 < max(payouts.values())
        assert (stored[copy].nmr, stored[copy].at_risk) == (0, 0)
        assert stored[copy].inputs["duplicate_of"] == str(world.model("alice", ROUND_STAKE))
        books.wallet["alice"] += COPY_STAKE
        check_books(world, books, ROUND_STAKE)
        assert world.balance(stake(copy)) == 0
        with transaction(world.sessions) as session:
            blended = session.scalar(select(MetaModel).where(MetaModel.round_id == played))
            assert blended is not None
            weights = {
                model_id: blended.weights[str(submission_id)]
                for submission_id, model_id in session.execute(
                    select(Submission.id, Submission.model_id).where(Submission.round_id == played)
                )
            }
            result = session.scalar(select(RoundResult).where(RoundResult.round_id == played))
            assert result is not None
        assert weights[copy] == 0
        assert weights[world.model("alice", ROUND_STAKE)] == STAKES["alice"] // NMR
        assert (result.stakers, result.at_risk) == (4, sum(STAKES.values()))
        with world.rest() as client:
            board = client.get(f"/tournaments/{ROUND_STAKE}/rounds/{one}/scores").json()
        flags = {row["model"]: row["duplicate"] for row in board["models"]}
        assert flags == {
            "alice_12": None,
            "alice_copy": {"of": "alice_12", "same_account": True},
            "bob_12": {"of": "dave_12", "same_account": False},
            "carol_12": None,
            "dave_12": {"of": "bob_12", "same_account": False},
        }

        performances = napi["carol"].round_model_performances_v2(
            str(world.model("carol", ROUND_STAKE))
        )
        by_round = {row["roundNumber"]: row for row in performances}
        multipliers = {
            (row["name"], row["multiplier"]) for row in by_round[one]["payoutMultipliers"]
        }
        assert multipliers == {("corr", 5.0), ("mmc", 10.0)}
        assert {row["scoreConfigId"] for row in by_round[one]["payoutMultipliers"]} == {
            config["scoreConfigId"] for config in first if config["isPayout"]
        }
        replay_and_audit(world, monkeypatch, ROUND_STAKE)
        replay = ["round", "replay", "--tournament", str(ROUND_STAKE), "--round", str(one)]
        agreed = CliRunner().invoke(cli, replay)
        assert "score configs agree with the round's rule: corr 1.0 × 5, mmc 1.0 × 10" in (
            agreed.output
        )

        # a recorded config that no longer says what the recorded rule pays is reported
        with transaction(world.sessions) as session:
            recorded = session.get(Round, played)
            assert recorded is not None
            configs = [dict(config) for config in recorded.score_configs or []]
            configs[0]["default_multiplier"] = "6"
            recorded.score_configs = configs
        tampered = CliRunner().invoke(cli, replay)
        assert tampered.exit_code == 1
        assert (
            "score config corr-1.0: default_multiplier recorded 6, the round's rule gives 5"
            in tampered.output
        )
        assert "all 5 payouts reproduced exactly" in tampered.output
