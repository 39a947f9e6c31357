"""A 2017-rules tournament end to end: three weekly rounds, six players with numerapi and the
REST API. Four stake with different confidences (one confidently wrong on live rows), one
uploads a copy of another's file, one uploads live predictions unlike its validation and test
ones. The gates, the auction, the burns, the rank prizes, the results page and the ledger are
checked against figures this test computes from what it uploaded and the stored scores."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from fractions import Fraction
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.data.release import DatasetVersion
from crowdquant.db.models import Round, Rules, Tournament
from crowdquant.db.session import transaction
from crowdquant.ledger import prize_pool
from crowdquant.money import Currency
from crowdquant.tournament.funding import fund_prize_pool
from crowdquant.tournament.rules2017_files import tournament_rows
from crowdquant.tournament.tournaments import get_tournament

from ..tournament.scored_round import market_feed
from ..web.test_leaderboard import by_name, table
from .staked_world import START, StakedWorld, TournamentSpec, staked_world
from .test_numerapi_payouts import (
    BENCHMARK,
    DAY,
    GRANT,
    HORIZON,
    LEGACY,
    NMR,
    POOL,
    Books,
    asked,
    check_books,
    consistency,
    download_tournament_data,
    exact,
    final_scores,
    legacy_version,
    paid,
    rank_prize,
    result_of,
    round_id,
    upload,
    upload_gates,
)

__all__ = ["legacy_version"]  # the module-scoped fixture, shared

PLAYERS = ("alice", "bob", "carol", "dave", "eve", "frank")
BIDS = {
    # name: (signal towards the target, noise, stake in NMR, confidence)
    "alice": (0.20, 0.10, 200, "0.75"),  # asks $266.66
    "bob": (0.10, 0.05, 150, "0.4"),  # asks $375
    "carol": (0.15, 0.10, 100, "0.2"),  # asks $500: gets what is left
    "dave": (-0.30, 0.02, 50, "0.5"),  # confidently wrong on live rows; asks $100
    "eve": (0.20, 0.10, 100, "0.9"),  # uploads alice's file: not original
    "frank": (0.20, 0.10, 100, "0.8"),  # live rows unlike the others: not concordant
}
ROUNDS = 3
FUNDED = 5_000_00  # USD cents into the prize pool before each round


def predictions(
    world: StakedWorld, number: int, tournament: pd.DataFrame
) -> dict[str, pd.DataFrame]:
    """Each player's probabilities for round `number`'s tournament file."""
    with transaction(world.sessions) as session:
        round_ = session.scalars(
            select(Round)
            .join(Tournament)
            .where(Tournament.number == LEGACY, Round.number == number)
        ).one()
        era, market_date = round_.live_era, round_.market_date
        rows = tournament_rows(session, world.storage, round_)
    assert rows is not None and rows.index.equals(tournament.index)
    feed = market_feed()
    residual = feed.targets(feed.live_era(number, era, pd.Timestamp(market_date)), HORIZON)
    up = 2.0 * (residual["residual_return"] > residual["residual_return"].median()) - 1.0
    live = rows[rows["data_type"] == "live"]
    known = rows[rows["data_type"] != "live"]
    made = {}
    for name in PLAYERS:
        signal, noise, _, _ = BIDS[name]
        rng = np.random.default_rng(PLAYERS.index(name) + 100 * number)
        lean = pd.Series(0.0, index=tournament.index)
        lean[live.index] = signal * up.reindex(live["original_id"]).to_numpy()
        lean[known.index] = abs(signal) * (2.0 * known["target"].astype(np.float64) - 1.0)
        values = (0.5 + lean + rng.normal(0, noise, len(lean))).clip(0.02, 0.98)
        if name == "frank":  # sure of every live row, whatever it is
            values[live.index] = rng.uniform(0.90, 0.98, len(live))
        made[name] = pd.DataFrame({"id": lean.index, "probability": values.round(6).to_numpy()})
    made["eve"] = made["alice"].copy()
    return made


@dataclass(frozen=True)
class Expected:
    eligible: set[str]
    awards: dict[str, int]  # the auction's allocation, in cents (paid only to winners)
    prize_nmr: dict[str, int]
    nmr: dict[str, int]  # rank prize less burn
    usd: dict[str, int]  # auction award if the model won, plus its rank prize
    burned: dict[str, int]
    ranks: dict[str, int]


def expected_round(
    world: StakedWorld, played: uuid.UUID, uploaded: dict[str, pd.DataFrame]
) -> Expected:
    scores = final_scores(world, played)
    gates = upload_gates(world, played)
    names = {world.model(name, LEGACY): name for name in PLAYERS}
    logloss, eligible = {}, set()
    for model_id, measured in scores.items():
        name = names[model_id]
        logloss[name] = exact(measured["logloss"])
        consistent = consistency(world, played, uploaded[name])
        assert gates[model_id]["consistency"] == pytest.approx(consistent, abs=1e-12)
        original = measured["originality_2017"] == 1.0
        concordant = gates[model_id]["concordance"] == 1.0
        assert original == (name != "eve"), name  # the copy of alice's file, and only it
        assert concordant == (name != "frank"), name  # the odd live rows, and only them
        if original and concordant and consistent >= 0.75:
            eligible.add(name)
    won = {name for name, loss in logloss.items() if loss < BENCHMARK}
    burned = {name: BIDS[name][2] * NMR if logloss[name] > BENCHMARK else 0 for name in PLAYERS}
    winners = sorted((logloss[name], name) for name in won & eligible)
    ranks = {name: rank for rank, (_, name) in enumerate(winners, start=1)}
    left, awards = POOL, dict.fromkeys(PLAYERS, 0)
    for name in sorted(eligible, key=lambda n: -Fraction(BIDS[n][3])):
        awards[name] = min(asked(BIDS[name][2], BIDS[name][3]), left)
        left -= awards[name]
    prizes = {name: rank_prize(ranks[name]) if name in ranks else (0, 0) for name in PLAYERS}
    return Expected(
        eligible,
        awards=awards,
        prize_nmr={name: prizes[name][1] for name in PLAYERS},
        nmr={name: prizes[name][1] - burned[name] for name in PLAYERS},
        usd={name: (awards[name] if name in won else 0) + prizes[name][0] for name in PLAYERS},
        burned=burned,
        ranks=ranks,
    )


def test_three_weekly_2017_rounds_gate_auction_burn_and_pay_as_computed(
    sessions: sessionmaker[Session], tmp_path: Path, legacy_version: DatasetVersion
) -> None:
    spec = TournamentSpec(LEGACY, Rules.RULES2017, "v2")
    with staked_world(
        sessions, tmp_path, [spec], PLAYERS, GRANT, legacy_version=legacy_version
    ) as world:
        books = Books(wallet=dict.fromkeys(PLAYERS, GRANT))
        uploads: dict[int, dict[str, pd.DataFrame]] = {}
        for week in range(ROUNDS):
            world.tick_at(START + week * 7 * DAY)
            number = world.open_round(LEGACY, resolve_after=35 * DAY)
            tournament = download_tournament_data(world, "carol", number, tmp_path)
            uploads[number] = predictions(world, number, tournament)
            for name in PLAYERS:
                world.clock.advance(timedelta(seconds=1))  # eve uploads after alice
                upload(world, name, LEGACY, uploads[number][name])
                _, _, amount, confidence = BIDS[name]
                with world.rest(name) as client:
                    staked = client.put(
                        f"/models/{world.model(name, LEGACY)}/round-stake",
                        json={"amount": str(amount), "confidence": confidence},
                    )
                assert staked.status_code == 200, staked.text
                books.increase(name, amount * NMR)
            with transaction(world.sessions) as session:
                tournament_row = get_tournament(session, LEGACY)
                fund_prize_pool(session, world.ledger, tournament_row, FUNDED, f"week-{week}")
            closed = world.tick_at(START + week * 7 * DAY + timedelta(hours=2))
            assert f"round {number} of tournament {LEGACY} closed" in closed
        check_books(world, books, LEGACY)

        resolved = world.tick_at(START + (7 * (ROUNDS - 1) + 35) * DAY + timedelta(minutes=1))
        usd_paid = 0
        for number, uploaded in uploads.items():
            assert f"round {number} of tournament {LEGACY} resolved" in resolved
            played = round_id(world, LEGACY, number)
            expected = expected_round(world, played, uploaded)
            assert expected.eligible == {"alice", "bob", "carol", "dave"}
            assert expected.burned["dave"] == 50 * NMR and expected.burned["frank"] == 100 * NMR
            assert expected.burned["eve"] == 0 and "eve" not in expected.ranks  # won, ineligible
            # the highest bids (eve's, frank's) are out: alice's $266.66, dave's $100 (lost,
            # never paid), bob's $375, and carol takes what is left of the $1,000
            assert expected.awards == {
                "eve": 0,
                "frank": 0,
                "alice": 266_66,
                "dave": 100_00,
                "bob": 375_00,
                "carol": POOL - 266_66 - 100_00 - 375_00,
            }
            for name in PLAYERS:
                staked, burn = BIDS[name][2] * NMR, expected.burned[name]
                books.settle(name, staked, burn, expected.prize_nmr[name], expected.usd[name])
            names = {world.model(name, LEGACY): name for name in PLAYERS}
            rows = paid(world, played)
            assert {names[m]: (row.nmr, row.usd) for m, row in rows.items()} == {
                name: (expected.nmr[name], expected.usd[name]) for name in PLAYERS
            }
            assert {names[m]: row.inputs["auction_award_usd"] for m, row in rows.items()} == (
                expected.awards
            )
            result = result_of(world, played)
            assert result is not None
            assert (result.participants, result.stakers) == (6, 6)
            assert result.nmr_burned == sum(expected.burned.values())
            assert result.usd_paid == sum(expected.usd.values())
            usd_paid += result.usd_paid
            check_results_page(world, number, expected)
        check_books(world, books, LEGACY)
        with transaction(world.sessions) as session:
            pool = prize_pool(get_tournament(session, LEGACY).id)
        assert world.balance(pool, Currency.USD) == ROUNDS * FUNDED - usd_paid


def check_results_page(world: StakedWorld, number: int, expected: Expected) -> None:
    """The public results page lists every model by live logloss (the prize winners in
    their prize order), with its round USD and NMR."""
    page = httpx.get(f"{world.url}/rounds/{LEGACY}/{number}", timeout=30)
    assert page.status_code == 200
    headers, rows = table(page.text, f"Payouts of round {number}")
    assert headers[:7] == [
        "#",
        "Model",
        "Live Logloss",
        "Validation Logloss",
        "Round USD",
        "Round NMR",
        "Consistency",
    ]
    shown = by_name(headers, rows)
    ranked = sorted(expected.ranks, key=expected.ranks.__getitem__)
    listed = [model.removesuffix(f"_{LEGACY}") for model in shown]  # by live logloss
    assert [name for name in listed if name in expected.ranks] == ranked
    for model, cells in shown.items():
        name = model.removesuffix(f"_{LEGACY}")
        assert int(cells["Round USD"].value or "0") == expected.usd[name], name
        assert int(cells["Round NMR"].value or "0") == expected.nmr[name], name
