"""Abuse limits on the pages: growing waits after failed sign-ins, and rate limits on
signing in, signing up and making API keys (429 with Retry-After)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.settings import Settings

from .conftest import served_site
from .site import PASSWORD, Site


def limited_site(
    sessions: sessionmaker[Session], tmp_path: Path, **limits: object
) -> Iterator[Site]:
    settings = Settings.model_validate({"home": tmp_path / "home", **limits})
    with served_site(sessions, tmp_path, settings) as found:
        yield found


@pytest.fixture
def guarded(sessions: sessionmaker[Session], tmp_path: Path) -> Iterator[Site]:
    yield from limited_site(
        sessions,
        tmp_path,
        sign_in_free_failures=3,
        sign_in_first_delay_seconds=10,
        sign_in_max_delay_seconds=60,
    )


def test_failed_sign_ins_make_even_the_right_password_wait_longer_each_time(
    guarded: Site,
) -> None:
    browser = guarded.browser()
    for _ in range(3):
        wrong = browser.submit("/login", {"username": "olivia", "password": "wrong password"})
        assert wrong.status_code == 401
    fourth = browser.submit("/login", {"username": "olivia", "password": "wrong password"})
    assert fourth.status_code == 401  # this failure starts a 10 s wait
    right = browser.submit("/login", {"username": "olivia", "password": PASSWORD})
    assert right.status_code == 429 and right.headers["Retry-After"] == "10"
    assert "Log out" not in right.text and "too many failed sign-ins" in right.text

    guarded.clock.advance(timedelta(seconds=11))
    fifth = browser.submit("/login", {"username": "olivia", "password": "wrong password"})
    assert fifth.status_code == 401
    again = browser.submit("/login", {"username": "OLIVIA", "password": PASSWORD})
    assert again.status_code == 429 and again.headers["Retry-After"] == "20"

    guarded.clock.advance(timedelta(seconds=21))
    assert guarded.logged_in("olivia").get("/dashboard").url.path == "/dashboard"


def test_failed_sign_ins_from_one_address_hold_back_its_other_logins(guarded: Site) -> None:
    guarded.signed_up("alice")
    browser = guarded.browser()
    for name in ("a1", "a2", "a3", "a4"):
        browser.submit("/login", {"username": name, "password": "wrong password"})
    refused = browser.submit("/login", {"username": "alice", "password": PASSWORD})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0


@pytest.fixture
def strict(sessions: sessionmaker[Session], tmp_path: Path) -> Iterator[Site]:
    yield from limited_site(
        sessions,
        tmp_path,
        rate_limit_sign_in="3/hour",
        rate_limit_sign_up="2/hour",
        rate_limit_api_key="2/hour",
    )


def test_sign_ins_per_address_are_rate_limited(strict: Site) -> None:
    for _ in range(3):
        assert strict.browser().submit("/login", {"username": "x", "password": "y"}).status_code
    refused = strict.browser().submit("/login", {"username": "olivia", "password": PASSWORD})
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 3600


def test_sign_ups_per_address_are_rate_limited(strict: Site) -> None:
    strict.signed_up("alice")
    strict.signed_up("bob")
    refused = strict.browser().submit(
        "/signup", {"username": "carol", "email": "carol@example.org", "password": PASSWORD}
    )
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert "too many sign-up requests" in refused.text


def test_api_keys_per_account_are_rate_limited(strict: Site) -> None:
    browser = strict.signed_up("alice")
    for name in ("one", "two"):
        made = browser.submit(
            "/settings/keys", {"name": name, "scopes": ["read"]}, page="/settings"
        )
        assert made.status_code == 200
    refused = browser.submit(
        "/settings/keys", {"name": "three", "scopes": ["read"]}, page="/settings"
    )
    assert refused.status_code == 429 and "Retry-After" in refused.headers


def test_by_default_a_burst_of_wrong_passwords_holds_back_the_right_one(site: Site) -> None:
    browser = site.browser()
    for _ in range(8):
        browser.submit("/login", {"username": "olivia", "password": "wrong password"})
    right = browser.submit("/login", {"username": "olivia", "password": PASSWORD})
    assert right.status_code == 429 and int(right.headers["Retry-After"]) > 0
