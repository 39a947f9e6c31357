"""A participant's models and their stakes through the pages: create, rename, stake, unstake,
payout mode, the 2017 rules' stake on a round; refusals next to their field change nothing,
and someone else's model is the 404 page."""

from __future__ import annotations

import html
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from crowdquant.db.models import Cadence, Model, PayoutMode, RoundStake, Rules
from crowdquant.db.session import transaction
from crowdquant.ledger import stake, wallet
from crowdquant.money import NMR_UNIT, Currency
from crowdquant.tournament.accounts import get_account
from crowdquant.tournament.lifecycle import RoundLifecycle
from crowdquant.tournament.rounds import FeedPublisher, current_round, open_round
from crowdquant.tournament.staking import freeze_stakes, grant_nmr
from crowdquant.tournament.tournaments import create_tournament, get_tournament

from ..tournament.live_market import market_feed
from .site import Site, field_errors
from .test_dashboard import live_ids, model_id, new_model, predictions_csv, upload


def nmr(amount: str | int) -> int:
    return int(Decimal(amount) * NMR_UNIT)


def errors(page: httpx.Response) -> list[str]:
    """The errors next to the fields, as a person reads them."""
    return [html.unescape(found) for found in field_errors(page)]


def grant(site: Site, username: str, amount: str | int) -> None:
    """The operator gives `username` NMR from the treasury."""
    with transaction(site.sessions) as session:
        account = get_account(session, username)
        grant_nmr(session, site.ledger, account, nmr(amount), f"welcome-{username}-{amount}")


def balance(site: Site, owner: str | None = None, model: str | None = None) -> int:
    with transaction(site.sessions) as session:
        if owner is not None:
            where = wallet(get_account(session, owner).id)
        else:
            assert model is not None
            where = stake(session.get_one(Model, model_uuid(model)).id)
        return site.ledger.balance(session, where, Currency.NMR)


def model_uuid(model: str) -> uuid.UUID:
    return uuid.UUID(model)


def written(site: Site) -> tuple[Any, ...]:
    """Everything a models or stake form could write."""
    with transaction(site.sessions) as session:
        return tuple(
            sorted((tuple(row) for row in session.execute(text(query))), key=repr)
            for query in (
                "SELECT account, currency, balance FROM ledger_balances",
                "SELECT sequence, event_key FROM ledger_transactions",
                "SELECT id, model_id, kind, amount, status FROM stake_changes",
                "SELECT round_id, model_id, at_risk, confidence FROM round_stakes",
                "SELECT id, name, payout_mode FROM models",
            )
        )


# --- models --------------------------------------------------------------------------------------


def test_create_and_rename_a_model(site: Site) -> None:
    browser = site.signed_up("alice")
    empty = browser.get("/models")
    assert empty.status_code == 200 and "You have no model yet" in empty.text
    made = browser.submit("/models", {"tournament": "8", "name": "Alice_Model"})
    assert made.url.path == "/models" and "Your model is entered" in made.text
    assert "<td>alice_model</td>" in made.text  # names are stored lower-case
    model = model_id(site, "alice_model")

    renamed = browser.submit(f"/models/{model}/rename", {"name": "alice_best"}, page="/models")
    assert renamed.url.path == "/models" and "The model was renamed" in renamed.text
    assert model_id(site, "alice_best") == model


def test_refused_model_forms_show_the_error_next_to_the_name_and_change_nothing(
    site: Site,
) -> None:
    alice, bob = site.signed_up("alice"), site.signed_up("bob")
    new_model(site, bob, "taken")
    model = new_model(site, alice, "alice_model")
    before = written(site)

    bad = alice.submit("/models", {"tournament": "8", "name": "x"})
    assert bad.status_code == 422
    assert errors(bad) == [
        "a model's name is 3 to 32 characters, each a letter a-z, a digit or an underscore"
    ]
    assert 'value="x"' in bad.text
    taken = alice.submit("/models", {"tournament": "8", "name": "TAKEN"})
    assert taken.status_code == 409
    assert errors(taken) == ["a model of that name is already in this tournament"]
    nowhere = alice.submit("/models", {"tournament": "99", "name": "elsewhere"})
    assert nowhere.status_code == 422 and errors(nowhere) == ["there is no tournament 99"]
    huge = alice.submit("/models", {"tournament": "9" * 30, "name": "elsewhere"})
    assert huge.status_code == 422 and errors(huge) == ["choose a tournament"]

    rename = alice.submit(f"/models/{model}/rename", {"name": "taken"}, page="/models")
    assert rename.status_code == 409
    assert errors(rename) == ["a model of that name is already in this tournament"]
    assert written(site) == before


def test_someone_elses_model_is_not_found(site: Site) -> None:
    alice, bob = site.signed_up("alice"), site.signed_up("bob")
    bobs = new_model(site, bob, "bob_model")
    grant(site, "alice", 10)
    before = written(site)
    for path in (f"/models/{bobs}/stake", "/models/not-a-model/stake"):
        page = alice.get(path)
        assert page.status_code == 404 and "You have no model with that id" in page.text
    for path, data in (
        (f"/models/{bobs}/rename", {"name": "stolen"}),
        (f"/models/{bobs}/stake", {"change": "increase", "amount": "1"}),
        (f"/models/{bobs}/payout-mode", {"mode": "wallet"}),
        (f"/models/{bobs}/round-stake", {"amount": "1", "confidence": "0.5"}),
    ):
        answer = alice.submit(path, data, page="/models")
        assert answer.status_code == 404, path
        assert "bob_model" not in answer.text
    assert written(site) == before


# --- stakes --------------------------------------------------------------------------------------


def test_stake_unstake_and_a_pending_release_after_the_round_closes(site: Site) -> None:
    browser = site.signed_up("alice")
    model = new_model(site, browser, "alice_model")
    stake_page = f"/models/{model}/stake"
    fresh = browser.get(stake_page)
    assert fresh.status_code == 200 and "No stake request yet" in fresh.text
    grant(site, "alice", 100)

    staked = browser.submit(stake_page, {"change": "increase", "amount": "12.5"})
    assert staked.url.path == stake_page and "Your stake was changed" in staked.text
    assert "12.5 NMR" in staked.text and "87.5 NMR" in staked.text
    assert (balance(site, "alice"), balance(site, model=model)) == (nmr("87.5"), nmr("12.5"))

    site.clock.advance(timedelta(minutes=1))
    back = browser.submit(stake_page, {"change": "decrease", "amount": "2.5"})
    assert back.status_code == 200  # nothing is at risk yet: straight back to the wallet
    assert (balance(site, "alice"), balance(site, model=model)) == (nmr(90), nmr(10))

    upload(browser, model, predictions_csv(live_ids(site)))
    with transaction(site.sessions) as session:
        round_ = current_round(session, get_tournament(session, 8))
        assert round_ is not None and round_.resolve_time is not None
        site.clock.set(round_.close_time)
        RoundLifecycle(None, site.clock).close(session, round_)
        freeze_stakes(session, site.ledger, site.clock, round_)
        resolves = round_.resolve_time
    pending = browser.submit(stake_page, {"change": "decrease", "amount": "4"})
    page = html.unescape(pending.text)
    assert "Pending release" in page and "4 NMR" in page and "6 NMR" in page
    releases = page[page.index("<h2>Pending releases</h2>") : page.index("Change the stake")]
    assert f"{resolves:%Y-%m-%d %H:%M} UTC" in releases  # free when round 1 resolves
    at_risk = page[page.index("<h2>At risk</h2>") : page.index("Pending releases")]
    assert "10 NMR" in at_risk and "state-closed" in at_risk
    assert page.count("<td>decrease</td>") == 2 and page.count("<td>increase</td>") == 1
    assert balance(site, "alice") == nmr(90)


def test_refused_stake_changes_show_the_error_next_to_the_amount_and_change_nothing(
    site: Site,
) -> None:
    browser = site.signed_up("alice")
    model = new_model(site, browser, "alice_model")
    grant(site, "alice", 10)
    stake_page = f"/models/{model}/stake"
    before = written(site)
    for amount, status, error in (
        ("abc", 422, "'abc' is not an amount of NMR"),
        ("-1", 422, "'-1' is not a positive amount of NMR"),
        ("11", 409, "the wallet holds 10 NMR: it cannot give 11 NMR"),
    ):
        answer = browser.submit(stake_page, {"change": "increase", "amount": amount})
        assert answer.status_code == status, answer.text
        assert errors(answer) == [error]
        assert f'name="amount" value="{amount}"' in answer.text
    taken_back = browser.submit(stake_page, {"change": "decrease", "amount": "1"})
    assert taken_back.status_code == 409
    assert errors(taken_back) == ["the stake holds 0 NMR: it cannot give 1 NMR"]
    odd = browser.submit(stake_page, {"change": "double", "amount": "1"})
    assert odd.status_code == 422
    assert errors(odd) == ["choose to increase or to decrease the stake"]
    mode = browser.submit(f"/models/{model}/payout-mode", {"mode": "lottery"}, page=stake_page)
    assert mode.status_code == 422 and errors(mode) == ["choose where the model's rewards go"]
    classic = browser.submit(
        f"/models/{model}/round-stake", {"amount": "1", "confidence": "0.5"}, page=stake_page
    )
    assert classic.status_code == 409 and "stakes continuously" in classic.text
    assert written(site) == before


@pytest.mark.parametrize(
    ("amount", "problem"),
    [
        ("1e999999", "write amounts without an exponent"),
        ("1_000", "write amounts without underscores"),
        ("\uff11\uff10", "write amounts with the digits 0-9"),
        ("+1", "write amounts without a plus sign"),
    ],
)
def test_the_stake_form_names_what_is_wrong_with_an_amount(
    site: Site, amount: str, problem: str
) -> None:
    browser = site.signed_up("alice")
    model = new_model(site, browser, "alice_model")
    grant(site, "alice", 10)
    before = written(site)
    answer = browser.submit(f"/models/{model}/stake", {"change": "increase", "amount": amount})
    assert answer.status_code == 422, answer.text
    assert errors(answer) == [f"{amount!r} is not an amount of NMR: {problem}"]
    assert written(site) == before


def test_the_payout_mode_goes_to_the_wallet_and_back(site: Site) -> None:
    browser = site.signed_up("alice")
    model = new_model(site, browser, "alice_model")
    stake_page = f"/models/{model}/stake"
    answer = browser.submit(f"/models/{model}/payout-mode", {"mode": "wallet"}, page=stake_page)
    assert answer.url.path == stake_page and "rewards go was changed" in answer.text
    with transaction(site.sessions) as session:
        assert session.get_one(Model, model_uuid(model)).payout_mode is PayoutMode.WALLET
    browser.submit(f"/models/{model}/payout-mode", {"mode": "compound"}, page=stake_page)
    with transaction(site.sessions) as session:
        assert session.get_one(Model, model_uuid(model)).payout_mode is PayoutMode.COMPOUND


def test_a_2017_rules_model_stakes_on_the_open_round_with_a_confidence(site: Site) -> None:
    with transaction(site.sessions) as session:
        create_tournament(session, site.clock, 12, "legacy", Rules.RULES2017, Cadence.DAILY, "v3")
    with transaction(site.sessions) as session:
        publisher = FeedPublisher(market_feed(), site.storage)
        open_round(session, site.clock, get_tournament(session, 12), publisher)
    browser = site.signed_up("alice")
    grant(site, "alice", 20)
    model = new_model(site, browser, "alice_legacy", tournament=12)
    stake_page = f"/models/{model}/stake"
    assert "Stake on round 1" in browser.get(stake_page).text
    round_stake = f"/models/{model}/round-stake"

    before = written(site)
    early = browser.submit(round_stake, {"amount": "5", "confidence": "0.5"}, page=stake_page)
    assert early.status_code == 409 and "upload first" in early.text
    bad = browser.submit(round_stake, {"amount": "5", "confidence": "2"}, page=stake_page)
    assert bad.status_code == 422
    assert errors(bad) == ["a confidence is a number in (0, 1] with at most 10 decimals"]
    for odd in ("5e-1", "0.5_0", "\uff10.\uff15", "+0.5", "1e999999"):
        refused = browser.submit(round_stake, {"amount": "5", "confidence": odd}, page=stake_page)
        assert refused.status_code == 422 and "a confidence is a number" in errors(refused)[0]
    assert written(site) == before

    upload(browser, model, predictions_csv(live_ids(site, 12)))
    done = browser.submit(round_stake, {"amount": "5", "confidence": "0.5"}, page=stake_page)
    assert done.url.path == stake_page and "Your stake on the round was set" in done.text
    with transaction(site.sessions) as session:
        row = session.scalars(select(RoundStake)).one()
        assert (row.at_risk, row.confidence) == (nmr(5), Decimal("0.5"))
    assert balance(site, "alice") == nmr(15)
    too_much = browser.submit(round_stake, {"amount": "21", "confidence": "0.5"}, page=stake_page)
    assert too_much.status_code == 409
    assert errors(too_much) == ["the wallet holds 15 NMR: it cannot give 16 NMR"]
    back = browser.submit(round_stake, {"amount": "0", "confidence": "0.5"}, page=stake_page)
    assert back.status_code == 200 and balance(site, "alice") == nmr(20)
