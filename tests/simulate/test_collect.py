"""Reading a simulation's books: each account's holdings, whole, in a few queries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.db.enums import Cadence, Rules
from crowdquant.db.session import transaction
from crowdquant.ledger import AccountId, release, stake, transfer, wallet
from crowdquant.ledger.sql import SqlLedger
from crowdquant.money import NMR_UNIT, Currency
from crowdquant.simulate.collect import holdings
from crowdquant.tournament.accounts import sign_up
from crowdquant.tournament.models import create_model
from crowdquant.tournament.staking import grant_nmr
from crowdquant.tournament.tournaments import create_tournament, get_tournament

from ..tournament.live_market import MONDAY
from ..tournament.scored_round import CHEAP

PLAYED, OTHER = 8, 9


@contextmanager
def statements(session: Session) -> Iterator[list[str]]:
    """The SQL statements `session` sends while the block runs."""
    sent: list[str] = []

    def record(*args: object) -> None:
        sent.append(str(args[2]))

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def book(sessions: sessionmaker[Session], models_of_alice: int) -> None:
    """alice (10 NMR: 3 staked on her first model, 1 pending release on her last, 2 staked
    on a model of another tournament), bob (5, all in the wallet, one model) and carol (7,
    not a player)."""
    clock = ManualClock(MONDAY)
    ledger = SqlLedger(clock)
    with transaction(sessions) as session:
        ledger.genesis(session)
        for number in (PLAYED, OTHER):
            create_tournament(
                session, clock, number, f"t{number}", Rules.CLASSIC, Cadence.DAILY, "v1"
            )
        people = {
            name: sign_up(session, clock, name, f"{name}@example.org", "x" * 10, hasher=CHEAP)
            for name in ("alice", "bob", "carol")
        }
        for name, amount in (("alice", 10), ("bob", 5), ("carol", 7)):
            grant_nmr(session, ledger, people[name], amount * NMR_UNIT, f"grant {name}")
        alices = [
            create_model(session, clock, people["alice"], PLAYED, f"alice_{i}").id
            for i in range(models_of_alice)
        ]
        create_model(session, clock, people["bob"], PLAYED, "bob_1")
        elsewhere = create_model(session, clock, people["alice"], OTHER, "alice_away").id
        moves: list[tuple[AccountId, int]] = [
            (stake(alices[0]), 3),
            (release(alices[-1]), 1),
            (stake(elsewhere), 2),
        ]
        for target, amount in moves:
            ledger.post(
                session,
                f"move {target}",
                Currency.NMR,
                transfer(wallet(people["alice"].id), target, amount * NMR_UNIT),
            )


@pytest.mark.parametrize("models_of_alice", [2, 12])
def test_holdings_are_wallet_stakes_and_releases_in_the_tournament_in_three_queries(
    sessions: sessionmaker[Session], models_of_alice: int
) -> None:
    book(sessions, models_of_alice)
    archetypes = {"alice": "linear", "bob": "spammer"}
    with transaction(sessions) as session:
        tournament = get_tournament(session, PLAYED)
        with statements(session) as sent:
            found = holdings(session, SqlLedger(ManualClock(MONDAY)), tournament, archetypes)
    # alice: 10 less the 2 staked in the other tournament; carol is no player
    assert sorted(found) == [("alice", "linear", 8.0), ("bob", "spammer", 5.0)]
    assert len(sent) == 3  # accounts, their models, their balances: not one per model
