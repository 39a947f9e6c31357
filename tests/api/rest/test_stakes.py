"""Stakes, the wallet and round results over REST, on both databases:
GET/POST /models/{id}/stake, PUT /models/{id}/round-stake, PUT /models/{id}/payout-mode,
GET /account/wallet and GET /tournaments/{n}/rounds/{r}/results. Every answer is checked
against the ledger, and every refusal leaves the books and the stake rows as they were."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.db.models import (
    ApiScope,
    Cadence,
    Model,
    PayoutMode,
    Round,
    RoundScore,
    Rules,
    StakeChangeKind,
)
from crowdquant.db.session import transaction
from crowdquant.ledger import AccountId, release, stake, wallet
from crowdquant.ledger.sql import SqlLedger
from crowdquant.money import NMR_UNIT, Currency
from crowdquant.server.app import create_app
from crowdquant.settings import Settings
from crowdquant.tournament.accounts import create_api_key, get_account
from crowdquant.tournament.lifecycle import RoundLifecycle
from crowdquant.tournament.models import create_model
from crowdquant.tournament.resolution import resolve_payouts, round_result
from crowdquant.tournament.rounds import (
    FeedPublisher,
    get_round,
    open_round,
)
from crowdquant.tournament.scoring import FeedTargets
from crowdquant.tournament.staking import change_stake, freeze_stakes, grant_nmr
from crowdquant.tournament.submissions import live_ids_of_round, submit_predictions
from crowdquant.tournament.tournaments import create_tournament, get_tournament

from ...tournament.live_market import market_feed
from ...tournament.scored_round import DAY, World, scored_world
from ...tournament.scored_round import market_feed as wide_market_feed
from ...tournament.scored_round import score as score_round_days
from ..server import serve
from .helpers import API, RestWorld, predictions_csv, refused

READ, UPLOAD, STAKE = ApiScope.READ, ApiScope.UPLOAD, ApiScope.STAKE


def nmr(amount: str | int) -> int:
    """NMR as a person writes it, in 10^-18 units."""
    return int(Decimal(amount) * NMR_UNIT)


@dataclass
class Staking:
    """The REST world with a ledger: alice holds 100 NMR, bob 50. Tournament 12 plays by the
    2017 rules; its round 1 is open and alice's `alice_legacy` has submitted to it. More
    tokens: alice's `staker` (read, stake) and `stake_only`, bob's `bob_staker`."""

    world: RestWorld
    ledger: SqlLedger
    accounts: dict[str, uuid.UUID]
    legacy_model: str
    bob_legacy_model: str

    def balance(self, account: AccountId) -> int:
        with transaction(self.world.sessions) as session:
            return self.ledger.balance(session, account, Currency.NMR)

    def wallet(self, owner: str) -> int:
        return self.balance(wallet(self.accounts[owner]))

    def stake(self, model_id: str) -> int:
        return self.balance(stake(uuid.UUID(model_id)))

    def written(self) -> tuple[Any, ...]:
        """Everything a stake request could write: the books, the stake rows, the modes."""
        with transaction(self.world.sessions) as session:
            return tuple(
                sorted((tuple(row) for row in session.execute(text(query))), key=repr)
                for query in (
                    "SELECT account, currency, balance FROM ledger_balances",
                    "SELECT sequence, event_key FROM ledger_transactions",
                    "SELECT id, model_id, kind, amount, status FROM stake_changes",
                    "SELECT round_id, model_id, at_risk, confidence FROM round_stakes",
                    "SELECT id, payout_mode FROM models",
                )
            )


@pytest.fixture
def staking(world: RestWorld) -> Staking:
    clock, storage = world.clock, world.storage
    ledger = SqlLedger(clock)
    with transaction(world.sessions) as session:
        ledger.genesis(session)
        alice, bob = get_account(session, "alice"), get_account(session, "bob")
        grant_nmr(session, ledger, alice, nmr(100), "welcome-alice")
        grant_nmr(session, ledger, bob, nmr(50), "welcome-bob")
        for name, account, scopes in (
            ("staker", alice, [READ, STAKE]),
            ("stake_only", alice, [STAKE]),
            ("bob_staker", bob, [READ, STAKE]),
        ):
            world.tokens[name] = create_api_key(session, clock, account, name, scopes).token
        create_tournament(session, clock, 12, "legacy", Rules.RULES2017, Cadence.DAILY, "v3")
        legacy = create_model(session, clock, alice, 12, "alice_legacy")
        bob_legacy = create_model(session, clock, bob, 12, "bob_legacy")
        accounts = {"alice": alice.id, "bob": bob.id}
        legacy_id, bob_legacy_id = legacy.id, bob_legacy.id
    with transaction(world.sessions) as session:
        publisher = FeedPublisher(market_feed(), storage)
        round_ = open_round(session, clock, get_tournament(session, 12), publisher)
        ids = live_ids_of_round(storage, round_)
        owner = session.get_one(Model, legacy_id).account
        submit_predictions(
            session,
            clock,
            storage,
            owner,
            legacy_id,
            round_,
            "predictions.csv",
            predictions_csv(ids),
            live_ids=ids,
        )
    return Staking(world, ledger, accounts, str(legacy_id), str(bob_legacy_id))


# --- reading and changing a stake ----------------------------------------------------------------


def test_a_new_model_has_no_stake(staking: Staking) -> None:
    world = staking.world
    for token in ("reader", "staker"):
        with world.client(token) as api:
            answer = api.get(f"/models/{world.alice_model}/stake")
        assert answer.status_code == 200, answer.text
        assert answer.json() == {
            "model_id": world.alice_model,
            "model": "alice_model",
            "tournament": 8,
            "staked": "0",
            "pending_release": "0",
            "at_risk": [],
            "releases": [],
            "payout_mode": "compound",
        }


def test_increase_and_decrease_move_nmr_between_wallet_and_stake(staking: Staking) -> None:
    world, model = staking.world, staking.world.alice_model
    with world.client("staker") as api:
        answer = api.post(f"/models/{model}/stake", json={"change": "increase", "amount": "12.5"})
        assert answer.status_code == 201, answer.text
        increase = answer.json()
        assert increase["change"] == "increase"
        assert (increase["amount"], increase["status"]) == ("12.5", "done")
        assert (increase["due_round"], increase["due_date"], increase["released"]) == (
            None,
            None,
            None,
        )
        assert increase["model_id"] == model and increase["requested_at"].endswith("Z")
        assert staking.wallet("alice") == nmr("87.5")
        assert staking.stake(model) == nmr("12.5")
        assert api.get(f"/models/{model}/stake").json()["staked"] == "12.5"

        world.clock.advance(timedelta(minutes=1))
        answer = api.post(f"/models/{model}/stake", json={"change": "decrease", "amount": "2.5"})
        assert answer.status_code == 201, answer.text
        decrease = answer.json()
        # round 1 is open: nothing is at risk before it closes, so it goes straight back
        assert (decrease["status"], decrease["released"], decrease["due_round"]) == (
            "released",
            "2.5",
            None,
        )
        assert decrease["released_at"] == decrease["due_date"] == decrease["requested_at"]
        assert staking.wallet("alice") == nmr(90)
        assert staking.stake(model) == nmr(10)
        view = api.get(f"/models/{model}/stake").json()
    assert (view["staked"], view["pending_release"], view["releases"]) == ("10", "0", [])


def test_the_wallet_statement_after_grant_stake_and_unstake(staking: Staking) -> None:
    world, model = staking.world, staking.world.alice_model
    with world.client("staker") as api:
        for change, amount in (("increase", "30"), ("decrease", "7.25")):
            world.clock.advance(timedelta(seconds=1))
            answer = api.post(f"/models/{model}/stake", json={"change": change, "amount": amount})
            assert answer.status_code == 201, answer.text
    with world.client("reader") as api:
        answer = api.get("/account/wallet")
        assert answer.status_code == 200, answer.text
        wallet_now = answer.json()
        page = api.get("/account/wallet", params={"limit": 1, "offset": 1}).json()
        refused(api.get("/account/wallet", params={"limit": 0}), 422, "invalid_request")
    assert (wallet_now["nmr"], wallet_now["usd"], wallet_now["total"]) == ("77.25", "0.00", 3)
    assert Decimal(wallet_now["nmr"]) * NMR_UNIT == staking.wallet("alice")
    lines = wallet_now["statement"]
    assert [line["kind"] for line in lines] == ["stake", "stake", "grant"]
    assert [line["amount"] for line in lines] == ["7.25", "-30", "100"]
    assert [line["balance"] for line in lines] == ["77.25", "70", "100"]
    assert [(line["source"], line["target"]) for line in lines] == [
        ("stake of alice_model", "wallet"),
        ("wallet", "stake of alice_model"),
        ("treasury", "wallet"),
    ]
    assert all(line["currency"] == "NMR" and line["time"].endswith("Z") for line in lines)
    sequences = [line["sequence"] for line in lines]
    assert sequences == sorted(sequences, reverse=True)
    assert page["total"] == 3 and page["statement"] == lines[1:2]
    with world.client("bob") as api:  # bob sees his own wallet only
        bobs = api.get("/account/wallet").json()
    assert (bobs["nmr"], [line["amount"] for line in bobs["statement"]]) == ("50", ["50"])


def test_a_decrease_after_the_close_waits_for_the_round(staking: Staking) -> None:
    world, model = staking.world, staking.world.alice_model
    with world.client("alice") as api:  # a valid on-time submission to round 1
        content = predictions_csv(world.live_ids)
        upload = api.post(f"/models/{model}/submissions", files={"file": ("p.csv", content)})
        assert upload.status_code == 201, upload.text
    with world.client("staker") as api:
        api.post(f"/models/{model}/stake", json={"change": "increase", "amount": "10"})
    with transaction(world.sessions) as session:
        round_ = get_round(session, get_tournament(session, 8), 1)
        world.clock.set(round_.close_time)
        RoundLifecycle(None, world.clock).close(session, round_)
        assert freeze_stakes(session, staking.ledger, world.clock, round_) == 1
        RoundLifecycle(None, world.clock).start_scoring(session, round_)
        resolve_time = round_.resolve_time
    assert resolve_time is not None
    with world.client("staker") as api:
        answer = api.post(f"/models/{model}/stake", json={"change": "decrease", "amount": "4"})
        assert answer.status_code == 201, answer.text
        decrease = answer.json()
        view = api.get(f"/models/{model}/stake").json()
    due = resolve_time.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (decrease["status"], decrease["due_round"], decrease["due_date"]) == ("pending", 1, due)
    assert decrease["released"] is None
    assert staking.wallet("alice") == nmr(90)
    assert staking.balance(release(uuid.UUID(model))) == nmr(4)
    assert (view["staked"], view["pending_release"]) == ("6", "4")
    assert view["at_risk"] == [
        {"round": 1, "at_risk": "10", "confidence": None, "status": "scoring"}
    ]
    assert view["releases"] == [
        {
            "id": decrease["id"],
            "amount": "4",
            "requested_at": decrease["requested_at"],
            "due_round": 1,
            "due_date": due,
        }
    ]


BAD_AMOUNTS: list[object] = [
    *("abc", "-1", "0", "0.0000000000000000001", "1e400", "NaN", "", "11000001"),
    *(1.5, 2, None),  # amounts are strings: a JSON number would lose digits
]


def test_a_bad_amount_is_refused_naming_the_field(staking: Staking) -> None:
    before = staking.written()
    with staking.world.client("staker") as api:
        for amount in BAD_AMOUNTS:
            answer = api.post(
                f"/models/{staking.world.alice_model}/stake",
                json={"change": "increase", "amount": amount},
            )
            assert "body.amount" in refused(answer, 422, "invalid_request")["message"], amount
    assert staking.written() == before


NAMED_PROBLEMS = {
    "1e999999": "without an exponent",
    "1_000": "without underscores",
    "\uff11\uff10": "with the digits 0-9",
    "+1": "without a plus sign",
    "9" * 60: "more NMR than there is",
}


def test_an_amount_is_refused_naming_its_problem(staking: Staking) -> None:
    """Exponents, underscores, digits other than 0-9, a plus sign and overflow are refused
    with a 422 that says which, on both endpoints that take an amount, changing nothing."""
    before = staking.written()
    with staking.world.client("staker") as api:
        for amount, problem in NAMED_PROBLEMS.items():
            answer = api.post(
                f"/models/{staking.world.alice_model}/stake",
                json={"change": "increase", "amount": amount},
            )
            assert problem in refused(answer, 422, "invalid_request")["message"], amount
            answer = api.put(
                f"/models/{staking.legacy_model}/round-stake",
                json={"amount": amount, "confidence": "0.5"},
            )
            assert problem in refused(answer, 422, "invalid_request")["message"], amount
        answer = api.put(
            f"/models/{staking.legacy_model}/round-stake",
            json={"amount": "1", "confidence": "1e999999"},
        )
        assert "body.confidence" in refused(answer, 422, "invalid_request")["message"]
    assert staking.written() == before


def test_stake_refusals_change_nothing(staking: Staking) -> None:
    world, model = staking.world, staking.world.alice_model
    path = f"/models/{model}/stake"
    increase = {"change": "increase", "amount": "1"}
    before = staking.written()
    for token in ("reader", "uploader"):  # no `stake` scope
        with world.client(token) as api:
            refused(api.post(path, json=increase), 403, "missing_scope")
    with world.client("stake_only") as api:  # looking needs `read`
        refused(api.get(path), 403, "missing_scope")
        refused(api.get("/account/wallet"), 403, "missing_scope")
    with world.client(None) as api:
        refused(api.post(path, json=increase), 401, "malformed_token")
    with world.client("bob_staker") as api:  # someone else's model
        refused(api.post(path, json=increase), 403, "not_your_model")
        refused(api.get(path), 403, "not_your_model")
    with world.client("staker") as api:
        refused(api.post(f"/models/{uuid.uuid4()}/stake", json=increase), 404, "unknown_model")
        detail = refused(
            api.post(path, json={"change": "sideways", "amount": "1"}), 422, "invalid_request"
        )
        assert "body.change" in detail["message"]
        refused(api.post(path, json={**increase, "extra": 1}), 422, "invalid_request")
        # more than the wallet holds, by one unit
        too_much = {"change": "increase", "amount": "100.000000000000000001"}
        detail = refused(api.post(path, json=too_much), 409, "insufficient_funds")
        assert "wallet" in detail["message"]
        # more than the stake holds
        detail = refused(
            api.post(path, json={"change": "decrease", "amount": "1"}), 409, "insufficient_funds"
        )
        assert "stake" in detail["message"]
    assert staking.written() == before
    assert staking.wallet("alice") == nmr(100)
    assert staking.stake(model) == 0


def test_before_the_ledger_starts_a_stake_is_refused_by_both_apis(world: RestWorld) -> None:
    """A ledger refusal is answered like a service's: 503 over REST, a GraphQL error."""
    with transaction(world.sessions) as session:
        alice = get_account(session, "alice")
        token = create_api_key(session, world.clock, alice, "staker", [READ, STAKE]).token
    world.tokens["staker"] = token
    path = f"/models/{world.alice_model}/stake"
    with world.client("staker") as api:
        answer = api.post(path, json={"change": "increase", "amount": "1"})
        assert "genesis" in refused(answer, 503, "no_genesis")["message"]
        assert api.get(path).json()["staked"] == "0"
        empty = api.get("/account/wallet").json()
    assert empty == {"nmr": "0", "usd": "0.00", "total": 0, "statement": []}
    mutation = (
        'mutation { v2ChangeStake(value: "1", type: "increase",'
        f' modelId: "{world.alice_model}", tournamentNumber: 8) {{ id }} }}'
    )
    answer = httpx.post(
        world.url + "/", json={"query": mutation}, headers={"Authorization": f"Token {token}"}
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["data"] == {"v2ChangeStake": None}
    assert "genesis" in body["errors"][0]["message"]
    assert body["errors"][0]["message"] != "internal error"


# --- the 2017 rules: a stake on the open round ---------------------------------------------------


def test_a_round_stake_under_the_2017_rules(staking: Staking) -> None:
    model = staking.legacy_model
    path = f"/models/{model}/round-stake"
    with staking.world.client("staker") as api:
        answer = api.put(path, json={"amount": "10", "confidence": "0.5"})
        assert answer.status_code == 200, answer.text
        placed = answer.json()
        assert placed == {
            "model_id": model,
            "tournament": 12,
            "round": 1,
            "at_risk": "10",
            "confidence": "0.5",
            "staked_at": placed["staked_at"],
        }
        assert (staking.wallet("alice"), staking.stake(model)) == (nmr(90), nmr(10))

        lowered = api.put(path, json={"amount": "4", "confidence": "0.25"}).json()
        assert (lowered["at_risk"], lowered["confidence"]) == ("4", "0.25")
        assert (staking.wallet("alice"), staking.stake(model)) == (nmr(96), nmr(4))
        view = api.get(f"/models/{model}/stake").json()
        assert view["at_risk"] == [
            {"round": 1, "at_risk": "4", "confidence": "0.25", "status": "open"}
        ]

        # an increase changes the stake on the open round, at the confidence set
        raised = api.post(f"/models/{model}/stake", json={"change": "increase", "amount": "1"})
        assert raised.status_code == 201, raised.text
        view = api.get(f"/models/{model}/stake").json()
        assert view["at_risk"][0]["at_risk"] == "5"
        assert view["at_risk"][0]["confidence"] == "0.25"

        withdrawn = api.put(path, json={"amount": "0", "confidence": "0.25"}).json()
        assert withdrawn["at_risk"] == "0"
    assert (staking.wallet("alice"), staking.stake(model)) == (nmr(100), 0)


def test_round_stake_refusals_change_nothing(staking: Staking) -> None:
    world = staking.world
    stake_10 = {"amount": "10", "confidence": "0.5"}
    before = staking.written()
    with world.client("staker") as api:
        classic = api.put(f"/models/{world.alice_model}/round-stake", json=stake_10)
        assert "increase or decrease" in refused(classic, 409, "stake_refused")["message"]
        path = f"/models/{staking.legacy_model}/round-stake"
        for confidence in ("1.5", "0", "-0.1", "x", "0.12345678901"):
            answer = api.put(path, json={"amount": "1", "confidence": confidence})
            assert "body.confidence" in refused(answer, 422, "invalid_request")["message"]
        answer = api.put(path, json={"amount": "-1", "confidence": "0.5"})
        assert "body.amount" in refused(answer, 422, "invalid_request")["message"]
        refused(
            api.put(path, json={"amount": "1000", "confidence": "0.5"}), 409, "insufficient_funds"
        )
        refused(
            api.put(f"/models/{staking.bob_legacy_model}/round-stake", json=stake_10),
            403,
            "not_your_model",
        )
    with world.client("reader") as api:
        refused(api.put(path, json=stake_10), 403, "missing_scope")
    with world.client("bob_staker") as api:  # bob has not submitted to the round
        answer = api.put(f"/models/{staking.bob_legacy_model}/round-stake", json=stake_10)
        assert "submission" in refused(answer, 409, "no_round_to_stake")["message"]
    assert staking.written() == before


# --- where rewards go ----------------------------------------------------------------------------


def test_the_payout_mode(staking: Staking) -> None:
    world, model = staking.world, staking.world.alice_model
    path = f"/models/{model}/payout-mode"
    with world.client("staker") as api:
        answer = api.put(path, json={"mode": "wallet"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["payout_mode"] == "wallet"
        assert api.get(f"/models/{model}/stake").json()["payout_mode"] == "wallet"
        before = staking.written()
        detail = refused(api.put(path, json={"mode": "sideways"}), 422, "invalid_request")
        assert "body.mode" in detail["message"]
    with world.client("reader") as api:
        refused(api.put(path, json={"mode": "compound"}), 403, "missing_scope")
    with world.client("bob_staker") as api:
        refused(api.put(path, json={"mode": "compound"}), 403, "not_your_model")
    assert staking.written() == before
    with world.sessions() as session:
        assert session.get_one(Model, uuid.UUID(model)).payout_mode is PayoutMode.WALLET


# --- a round's results ---------------------------------------------------------------------------


@dataclass
class Resolving:
    """The scored round of `tests/tournament/scored_round.py` (five models, one late) with
    stakes frozen at its close: alice_a 10 NMR, alice_b 5, bob 20. Five days scored."""

    world: World
    ledger: SqlLedger
    url: str
    at_risk: dict[str, int]

    def resolve(self) -> None:
        with transaction(self.world.sessions) as session:
            round_ = session.get_one(Round, self.world.round_id)
            RoundLifecycle(None, self.world.clock).resolve(session, round_)
            resolve_payouts(session, self.ledger, self.world.clock, round_)

    def stake(self, name: str) -> int:
        with transaction(self.world.sessions) as session:
            return self.ledger.balance(session, stake(self.world.models[name]), Currency.NMR)


@pytest.fixture
def resolving(sessions: sessionmaker[Session], tmp_path: Path) -> Iterator[Resolving]:
    world = scored_world(sessions, tmp_path)
    ledger = SqlLedger(world.clock)
    at_risk = {"alice_a": nmr(10), "alice_b": nmr(5), "bob": nmr(20)}
    with transaction(sessions) as session:
        ledger.genesis(session)
        for owner in ("alice", "bob"):
            grant_nmr(session, ledger, get_account(session, owner), nmr(100), owner)
        for name, amount in at_risk.items():
            model = session.get_one(Model, world.models[name])
            change_stake(session, ledger, world.clock, model, StakeChangeKind.INCREASE, amount)
        freeze_stakes(session, ledger, world.clock, session.get_one(Round, world.round_id))
    world.clock.advance(5 * DAY)
    score_round_days(world, FeedTargets(wide_market_feed()))
    app = create_app(
        Settings(mode="local", home=tmp_path / "home"),
        clock=world.clock,
        sessions=sessions,
        storage=world.storage,
        ledger=ledger,
    )
    with serve(app) as url:
        yield Resolving(world, ledger, url + API, at_risk)


def _final_corr(resolving: Resolving) -> dict[str, float]:
    names = {model_id: name for name, model_id in resolving.world.models.items()}
    with transaction(resolving.world.sessions) as session:
        last = session.scalar(
            select(RoundScore.day)
            .where(RoundScore.round_id == resolving.world.round_id)
            .order_by(RoundScore.day.desc())
            .limit(1)
        )
        rows = session.execute(
            select(RoundScore.model_id, RoundScore.value).where(
                RoundScore.round_id == resolving.world.round_id,
                RoundScore.metric == "corr",
                RoundScore.day == last,
            )
        ).all()
    return {names[model_id]: value for model_id, value in rows}


def test_round_results_appear_once_the_round_resolves(resolving: Resolving) -> None:
    for ref in ("1", "current", "0"):
        answer = httpx.get(f"{resolving.url}/tournaments/8/rounds/{ref}/results")
        assert "not resolved" in refused(answer, 404, "round_not_resolved")["message"]
    refused(httpx.get(f"{resolving.url}/tournaments/8/rounds/9/results"), 404, "round_not_found")
    refused(
        httpx.get(f"{resolving.url}/tournaments/99/rounds/1/results"), 404, "tournament_not_found"
    )

    resolving.resolve()
    answer = httpx.get(f"{resolving.url}/tournaments/8/rounds/1/results")  # public
    assert answer.status_code == 200, answer.text
    results = answer.json()
    with transaction(resolving.world.sessions) as session:
        recorded = round_result(session, session.get_one(Round, resolving.world.round_id))
        assert recorded is not None
        resolved_at = recorded.resolved_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        factor = recorded.payout_factor
    assert (results["tournament"], results["round"]) == (8, 1)
    assert results["rule_version"].startswith("classic")
    assert results["participants"] == 4  # the latecomer is not one
    assert results["controlling_capital"] == 3
    assert results["at_risk"] == "35"
    assert results["payout_factor"] == factor and results["resolved_at"] == resolved_at
    assert results["scale"] == "full" and results["usd_paid"] == "0.00"

    payouts = results["payouts"]
    assert [row["rank"] for row in payouts] == [1, 2, 3]
    assert {row["model"] for row in payouts} == set(resolving.at_risk)
    corr = _final_corr(resolving)
    assert [row["model"] for row in payouts] == sorted(resolving.at_risk, key=lambda m: -corr[m])
    paid = burned = 0
    for row in payouts:
        name, amount = row["model"], nmr(row["nmr"])
        assert row["at_risk"] == str(resolving.at_risk[name] // NMR_UNIT)
        # compounding: the payout (or burn) moved the model's stake by exactly that much
        assert resolving.stake(name) == resolving.at_risk[name] + amount
        assert set(row["inputs"]) == {"corr", "mmc"}
        assert row["inputs"]["corr"] == pytest.approx(corr[name])
        assert row["usd"] == "0.00"
        paid, burned = paid + max(amount, 0), burned + max(-amount, 0)
    assert (nmr(results["nmr_paid"]), nmr(results["nmr_burned"])) == (paid, burned)

    # the leaderboards show the stakes now and the career payouts
    board = httpx.get(f"{resolving.url}/tournaments/8/leaderboard").json()
    by_name = {row["name"]: row for row in board}
    for row in payouts:
        name = row["model"]
        assert nmr(by_name[name]["stake"]) == resolving.stake(name)
        assert by_name[name]["career_nmr"] == row["nmr"]
    assert by_name["bench"]["stake"] == "0" and by_name["bench"]["career_nmr"] == "0"
