"""The real numerapi 3.1.1 client staking, on both backends: `stake_increase`, `stake_decrease`,
`stake_set`, `stake_get`, `stake_drain`, `get_account`, `wallet_transactions`,
`pending_model_payouts`, `round_model_performances_v2` and the leaderboards, through a round
that closes with the stakes frozen, is scored and resolves. Every answer is checked against
the ledger's balances.

The round is the scored round of `tests/tournament/scored_round.py`: alice's `alice_a` and
`alice_b`, bob's `bob` and `bench` submitted on time, `latecomer` late.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from pathlib import Path

import numerapi
import numerapi.base_api
import pytest
from sqlalchemy import select

from crowdquant.db.models import ApiScope, Model, Round, RoundPayout, StakeChangeKind
from crowdquant.db.session import transaction
from crowdquant.ledger import AccountId, release, stake, wallet
from crowdquant.ledger.sql import SqlLedger
from crowdquant.money import NMR_UNIT, Currency
from crowdquant.server.app import create_app
from crowdquant.settings import Settings
from crowdquant.tournament.accounts import create_api_key, get_account
from crowdquant.tournament.lifecycle import RoundLifecycle
from crowdquant.tournament.resolution import resolve_payouts, round_result
from crowdquant.tournament.scoring import FeedTargets
from crowdquant.tournament.staking import change_stake, freeze_stakes, grant_nmr

from ..tournament.scored_round import DAY, World, market_feed, score
from .server import serve

ALL_SCOPES = [ApiScope.READ, ApiScope.UPLOAD, ApiScope.STAKE]


@dataclass
class Served:
    """The scored round served to numerapi; alice and bob hold 100 NMR each, bob's `bob` has
    20 staked. Keys: alice's `alice` (every scope) and `reader` (read)."""

    world: World
    ledger: SqlLedger
    accounts: dict[str, uuid.UUID]
    keys: dict[str, tuple[str, str]]

    def client(self, key: str = "alice") -> numerapi.NumerAPI:
        return numerapi.NumerAPI(*self.keys[key])

    def model(self, name: str) -> str:
        return str(self.world.models[name])

    def balance(self, account: AccountId) -> Decimal:
        with transaction(self.world.sessions) as session:
            units = self.ledger.balance(session, account, Currency.NMR)
        return Decimal(units) / NMR_UNIT

    def wallet(self, owner: str) -> Decimal:
        return self.balance(wallet(self.accounts[owner]))

    def stake(self, name: str) -> Decimal:
        return self.balance(stake(self.world.models[name]))

    def release(self, name: str) -> Decimal:
        return self.balance(release(self.world.models[name]))

    def round_(self) -> Round:
        with transaction(self.world.sessions) as session:
            found = session.get_one(Round, self.world.round_id)
            session.expunge(found)
            return found

    def freeze(self) -> None:
        with transaction(self.world.sessions) as session:
            round_ = session.get_one(Round, self.world.round_id)
            freeze_stakes(session, self.ledger, self.world.clock, round_)

    def score(self) -> None:
        """Five days on: the round's first days are scored."""
        self.world.clock.advance(5 * DAY)
        score(self.world, FeedTargets(market_feed()))

    def resolve(self) -> None:
        with transaction(self.world.sessions) as session:
            round_ = session.get_one(Round, self.world.round_id)
            RoundLifecycle(None, self.world.clock).resolve(session, round_)
            resolve_payouts(session, self.ledger, self.world.clock, round_)

    def payouts(self) -> dict[str, Decimal]:
        names = {model_id: name for name, model_id in self.world.models.items()}
        with transaction(self.world.sessions) as session:
            rows = session.execute(select(RoundPayout.model_id, RoundPayout.nmr)).all()
        return {names[model_id]: Decimal(units) / NMR_UNIT for model_id, units in rows}


@pytest.fixture
def served(world: World, tmp_path: Path) -> Iterator[Served]:
    ledger = SqlLedger(world.clock)
    keys = {}
    with transaction(world.sessions) as session:
        ledger.genesis(session)
        alice, bob = get_account(session, "alice"), get_account(session, "bob")
        for owner in (alice, bob):
            grant_nmr(session, ledger, owner, 100 * NMR_UNIT, f"welcome-{owner.username}")
        bobs = session.get_one(Model, world.models["bob"])
        change_stake(session, ledger, world.clock, bobs, StakeChangeKind.INCREASE, 20 * NMR_UNIT)
        for name, scopes in (("alice", ALL_SCOPES), ("reader", [ApiScope.READ])):
            key = create_api_key(session, world.clock, alice, name, scopes)
            keys[name] = (key.public_id, key.secret)
        accounts = {"alice": alice.id, "bob": bob.id}
    # the app's own ledger: create_app's default, the books in the same database
    app = create_app(
        Settings(mode="local", home=tmp_path / "home"),
        clock=world.clock,
        sessions=world.sessions,
        storage=world.storage,
    )
    previous = numerapi.base_api.API_TOURNAMENT_URL
    with serve(app) as url:
        numerapi.base_api.API_TOURNAMENT_URL = url
        try:
            yield Served(world, ledger, accounts, keys)
        finally:
            numerapi.base_api.API_TOURNAMENT_URL = previous


ROUND_MONEY = """
    query {
      rounds(tournament: 8, number: 1) { resolvedGeneral resolvedStaking payoutFactor }
      v3UserProfile(model_name: "alice_a", tournament: 8) {
        roundModelPerformances { roundNumber payout selectedStakeValue roundPayoutFactor }
      }
    }"""


def _round_money(napi: numerapi.NumerAPI) -> tuple[dict[str, object], dict[str, object]]:
    """Round 1 as `rounds` shows it, and alice_a's legacy round performance in it."""
    data = napi.raw_query(ROUND_MONEY)["data"]
    (round_one,) = data["rounds"]
    (performance,) = data["v3UserProfile"]["roundModelPerformances"]
    return round_one, performance


def _net(transactions: list[dict[str, object]]) -> Decimal:
    """What the listed transactions added to the wallet."""
    total = Decimal(0)
    for tx in transactions:
        amount = tx["amount"]
        assert isinstance(amount, Decimal) and amount > 0
        assert "wallet" in (tx["from"], tx["to"])
        total += amount if tx["to"] == "wallet" else -amount
    return total


def test_staking_through_a_round_with_numerapi(served: Served) -> None:
    napi = served.client()
    a, b = served.model("alice_a"), served.model("alice_b")

    account = napi.get_account()
    assert account["availableNmr"] == Decimal(100) == served.wallet("alice")
    assert all(model["v2Stake"] is None for model in account["models"])

    increase = napi.stake_increase(10, a)
    assert increase == {
        "dueDate": None,
        "requestedAmount": Decimal(10),
        "status": "done",
        "type": "increase",
    }
    assert (served.wallet("alice"), served.stake("alice_a")) == (90, 10)
    assert napi.stake_get("alice_a") == Decimal(10)

    decrease = napi.stake_decrease(2.5, a)  # nothing at risk yet: straight back
    assert (decrease["type"], decrease["status"]) == ("decrease", "released")
    assert decrease["requestedAmount"] == Decimal("2.5")
    assert decrease["dueDate"] == served.world.clock.now().astimezone(UTC)
    assert (served.wallet("alice"), served.stake("alice_a")) == (Decimal("92.5"), Decimal("7.5"))

    to_twenty = napi.stake_set(20, a)  # reads the stake, increases by the difference
    assert (to_twenty["type"], to_twenty["requestedAmount"]) == ("increase", Decimal("12.5"))
    assert napi.stake_set(20, a) is None
    assert napi.stake_get("alice_a") == Decimal(20) == served.stake("alice_a")

    tiny = napi.stake_increase(0.00001, a)  # sent as str(1e-05)
    assert tiny["requestedAmount"] == Decimal("0.00001")
    assert served.stake("alice_a") == Decimal("20.00001")
    napi.stake_decrease(Decimal("0.00001"), a)
    with pytest.raises(ValueError, match="no stake to drain"):
        napi.stake_drain(b)
    napi.stake_increase("5", b)
    assert (served.wallet("alice"), served.stake("alice_b")) == (75, 5)

    # the round's close froze the stakes: a drain now waits for its resolution
    served.freeze()
    pending = napi.pending_model_payouts()
    assert pending["actual"] == []
    resolve_time = served.round_().resolve_time
    assert resolve_time is not None
    assert sorted(
        (p["modelName"], p["roundNumber"], p["payoutNmr"], p["payoutValue"], p["roundResolveTime"])
        for p in pending["pending"]
    ) == [
        ("alice_a", 1, Decimal(0), Decimal(0), resolve_time.replace(tzinfo=UTC)),
        ("alice_b", 1, Decimal(0), Decimal(0), resolve_time.replace(tzinfo=UTC)),
    ]
    assert all(p["currencySymbol"] == "NMR" for p in pending["pending"])

    drained = napi.stake_drain(a)  # returned as the server wrote it
    assert drained["drain"] is True
    assert (drained["type"], drained["status"], drained["requestedAmount"]) == (
        "decrease",
        "pending",
        "20",
    )
    assert drained["dueDate"] == resolve_time.strftime("%Y-%m-%dT%H:%M:%SZ")
    uuid.UUID(drained["id"])
    assert (served.stake("alice_a"), served.release("alice_a")) == (0, 20)
    assert napi.stake_get("alice_a") == Decimal(0)
    assert served.wallet("alice") == 75  # a pending release is not back yet

    transactions = napi.wallet_transactions()
    assert [tx["type"] for tx in transactions] == ["stake"] * 6 + ["grant"]
    assert all(tx["status"] == "confirmed" and tx["tournament"] is None for tx in transactions)
    assert all(tx["time"].tzinfo is not None for tx in transactions)
    hashes = [int(tx["txHash"]) for tx in transactions]
    assert hashes == sorted(hashes, reverse=True)  # newest first
    assert _net(transactions) == served.wallet("alice")
    assert (transactions[-1]["from"], transactions[-1]["to"]) == ("treasury", "wallet")
    assert (transactions[0]["from"], transactions[0]["to"]) == ("wallet", "stake of alice_b")

    served.score()  # scored, not resolved: nothing is paid yet
    with pytest.warns(DeprecationWarning):
        (unresolved,) = napi.round_model_performances_v2(a)
    assert (unresolved["atRisk"], unresolved["roundPayoutFactor"]) == (Decimal(20), None)
    assert all(s["payoutSettled"] is None for s in unresolved["submissionScores"])
    assert _round_money(napi) == (
        {"resolvedGeneral": False, "resolvedStaking": False, "payoutFactor": None},
        {"roundNumber": 1, "payout": None, "selectedStakeValue": "20", "roundPayoutFactor": None},
    )

    # resolution: payouts into the stakes (compounding), the drained 20 back to the wallet
    served.resolve()
    paid = served.payouts()
    assert set(paid) == {"alice_a", "alice_b", "bob"}
    burned_a = max(-paid["alice_a"], Decimal(0))
    assert served.release("alice_a") == 0
    assert served.stake("alice_b") == 5 + paid["alice_b"]
    assert served.stake("alice_a") == max(paid["alice_a"], Decimal(0))
    assert served.wallet("alice") == 75 + 20 - burned_a
    assert napi.get_account()["availableNmr"] == served.wallet("alice")

    payouts = napi.pending_model_payouts()
    assert payouts["pending"] == []
    assert sorted(
        (p["modelName"], p["payoutNmr"], p["payoutValue"]) for p in payouts["actual"]
    ) == [
        ("alice_a", paid["alice_a"], Decimal("0.00")),
        ("alice_b", paid["alice_b"], Decimal("0.00")),
    ]

    transactions = napi.wallet_transactions()
    assert (transactions[0]["type"], transactions[0]["amount"]) == ("release", 20 - burned_a)
    assert (transactions[0]["from"], transactions[0]["to"]) == (
        "pending release of alice_a",
        "wallet",
    )
    assert _net(transactions) == served.wallet("alice")

    with transaction(served.world.sessions) as session:
        result = round_result(session, session.get_one(Round, served.world.round_id))
        assert result is not None and result.payout_factor is not None
        factor = Decimal(result.payout_factor)
    with pytest.warns(DeprecationWarning):  # numerapi's own deprecation of this call
        performances = napi.round_model_performances_v2(a)
    (round_one,) = performances
    assert round_one["atRisk"] == Decimal(20)
    assert Decimal(round_one["roundPayoutFactor"]) == factor
    last = max(s["day"] for s in round_one["submissionScores"])
    assert last > 0
    for submission_score in round_one["submissionScores"]:
        settled = paid["alice_a"] if submission_score["day"] == last else None
        assert submission_score["payoutSettled"] == settled
        assert submission_score["payoutPending"] is None
    (current,) = napi.list_rounds()
    assert current["payoutFactor"] == factor
    shown_round, shown_performance = _round_money(napi)
    assert shown_round == {
        "resolvedGeneral": True,
        "resolvedStaking": True,
        "payoutFactor": result.payout_factor,
    }
    assert Decimal(str(shown_performance["payout"])) == paid["alice_a"]
    assert shown_performance["selectedStakeValue"] == "20"
    assert shown_performance["roundPayoutFactor"] == result.payout_factor

    board = {row["username"]: row for row in napi.get_leaderboard()}
    for name in ("alice_a", "alice_b", "bob", "bench"):
        assert board[name]["nmrStaked"] == served.stake(name)
        assert napi.stake_get(name) == served.stake(name)
    accounts = {row["username"]: row for row in napi.get_account_leaderboard()}
    assert accounts["alice"]["nmrStaked"] == served.stake("alice_a") + served.stake("alice_b")
    assert accounts["alice"]["returnAllTimeNmr"] == paid["alice_a"] + paid["alice_b"]
    for window in ("return1yNmr", "return3mNmr"):  # resolved just now: in both windows
        assert accounts["alice"][window] == paid["alice_a"] + paid["alice_b"]
    assert accounts["bob"]["nmrStaked"] == served.stake("bob") == 20 + paid["bob"]
    assert accounts["bob"]["returnAllTimeNmr"] == paid["bob"]
    profile = napi.public_user_profile("bob")
    assert profile["nmrStaked"] == served.stake("bob")


def test_stake_get_reads_the_stake_alone(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """A profile query asking for the stake alone reads no score history and no leaderboard:
    numerapi's `stake_get` costs the same whatever the tournament's history."""
    from crowdquant.api.graphql import scores

    def unread(*_: object, **__: object) -> None:
        raise AssertionError("a stake query read the histories")

    napi = served.client()
    napi.stake_increase(10, served.model("alice_a"))
    monkeypatch.setattr(scores, "model_score_history", unread)
    monkeypatch.setattr(scores, "model_leaderboard", unread)
    assert napi.stake_get("alice_a") == Decimal(10) == served.stake("alice_a")
    assert napi.stake_get("bob") == Decimal(20) == served.stake("bob")


def test_numerapi_stake_refusals_change_nothing(served: Served) -> None:
    napi = served.client()
    a = served.model("alice_a")
    napi.stake_increase(10, a)
    before = (served.wallet("alice"), served.stake("alice_a"), served.stake("alice_b"))

    with pytest.raises(ValueError, match="lacks the 'stake' scope"):
        served.client("reader").stake_increase(1, a)
    with pytest.raises(ValueError, match="wallet holds 90 NMR"):
        napi.stake_increase(91, a)
    with pytest.raises(ValueError, match="stake holds 10 NMR"):
        napi.stake_decrease(11, a)
    for amount in (-1, 0, "abc", "1e-19"):
        with pytest.raises(ValueError, match=r"NMR|decimals"):
            napi.stake_increase(amount, a)
    with pytest.raises(ValueError, match="belongs to another account"):
        napi.stake_increase(1, served.model("bob"))
    with pytest.raises(ValueError, match="several models"):
        napi.stake_change(1, "increase")  # alice has two models in tournament 8
    with pytest.raises(ValueError, match="'increase' or 'decrease'"):
        napi.stake_change(1, "sideways", a)
    with pytest.raises(ValueError, match="not 11"):
        numerapi.SignalsAPI(*served.keys["alice"]).stake_increase(1, a)
    release_one = """
        mutation($drain: bool!, $amount: String, $modelId: String) {
          releaseStake(drain: $drain, modelId: $modelId, amount: $amount) { id status }
        }"""
    with pytest.raises(ValueError, match="NMR"):
        napi.raw_query(
            release_one, {"drain": False, "amount": "abc", "modelId": a}, authorization=True
        )
    partial = napi.raw_query(
        release_one, {"drain": False, "amount": "2", "modelId": a}, authorization=True
    )
    assert partial["data"]["releaseStake"]["status"] == "released"
    assert (served.wallet("alice"), served.stake("alice_a"), served.stake("alice_b")) == (
        before[0] + 2,
        before[1] - 2,
        before[2],
    )


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ("1e999999", "without an exponent"),
        ("1_000", "without underscores"),
        ("\uff11\uff10", "with the digits 0-9"),
        ("+1", "without a plus sign"),
        ("1" * 40, "more NMR than there is"),
    ],
)
def test_numerapi_stake_amounts_are_refused_by_name(
    served: Served, written: str, problem: str
) -> None:
    """Through numerapi and its GraphQL error shape: a stake amount with an exponent,
    underscores, digits other than 0-9, a sign or more than the supply is refused, saying
    why, and changes nothing."""
    napi = served.client()
    a = served.model("alice_a")
    before = (served.wallet("alice"), served.stake("alice_a"))
    with pytest.raises(ValueError, match=problem):
        napi.stake_increase(written, a)  # type: ignore[arg-type]  # numerapi sends str(nmr)
    release_one = """
        mutation($amount: String, $modelId: String) {
          releaseStake(drain: false, modelId: $modelId, amount: $amount) { id }
        }"""
    with pytest.raises(ValueError, match=problem):
        napi.raw_query(release_one, {"amount": written, "modelId": a}, authorization=True)
    assert (served.wallet("alice"), served.stake("alice_a")) == before


def test_numerapi_small_decimal_amounts_arrive_with_an_exponent_and_are_read(
    served: Served,
) -> None:
    """numerapi sends `str(nmr)`: Decimal("0.0000001") arrives as "1E-7", which is read as
    the amount it writes (an exponent a person types is still refused)."""
    napi = served.client()
    a = served.model("alice_a")
    done = napi.stake_increase(Decimal("0.0000001"), a)
    assert done["requestedAmount"] == Decimal("0.0000001")
    assert served.stake("alice_a") == Decimal("0.0000001")
    with pytest.raises(ValueError, match="without an exponent"):
        napi.stake_increase("1e-7", a)  # type: ignore[arg-type]
