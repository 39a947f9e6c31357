"""Settings through the pages: API keys (the secret shown once), revoking them, and changing
the password (which signs every other browser out and keeps this one signed in), and the
wallet address one stakes from."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import httpx
from sqlalchemy import func, select

from crowdquant.db.models import Account, ApiKey
from crowdquant.db.session import transaction

from .site import PASSWORD, Site, field_errors

SECRET = re.compile(r'id="new-secret">([0-9A-F]+)<')
PUBLIC = re.compile(r'<dt>Public ID</dt><dd><code class="secret">([0-9A-F]+)<')


def keys(site: Site) -> list[tuple[str, str, list[str], bool]]:
    with transaction(site.sessions) as session:
        found = session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.name)).all()
        return [(k.name, k.public_id, sorted(k.scopes), k.revoked_at is not None) for k in found]


def whoami(site: Site, public_id: str, secret: str) -> int:
    """The REST API's answer to the key: 200 if it works."""
    answer = httpx.get(
        f"{site.url}/api/v1/account", headers={"Authorization": f"Token {public_id}${secret}"}
    )
    return answer.status_code


def test_a_new_keys_secret_is_shown_once(site: Site) -> None:
    browser = site.signed_up("alice")
    assert "No API key yet" in browser.get("/settings").text
    site.clock.advance(timedelta(minutes=3))
    made = browser.submit(
        "/settings/keys", {"name": "laptop", "scopes": ["read", "upload"]}, page="/settings"
    )
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    assert "it will not be shown again" in made.text
    secret, public_id = SECRET.search(made.text), PUBLIC.search(made.text)
    assert secret and public_id
    assert keys(site) == [("laptop", public_id[1], ["read", "upload"], False)]
    assert whoami(site, public_id[1], secret[1]) == 200

    later = browser.get("/settings").text
    assert secret[1] not in later and "laptop" in later and public_id[1] in later
    assert "read, upload" in later
    assert f"<td>{site.clock.now():%Y-%m-%d %H:%M} UTC</td>" in later  # last used: just now


def test_a_refused_key_shows_the_error_next_to_the_field_and_makes_nothing(site: Site) -> None:
    browser = site.signed_up("alice")
    none = browser.submit("/settings/keys", {"name": "nothing"}, page="/settings")
    assert none.status_code == 422
    assert field_errors(none) == ["an API key needs one or more of the scopes: read, upload, stake"]
    assert 'value="nothing"' in none.text
    long = browser.submit(
        "/settings/keys", {"name": "k" * 65, "scopes": ["read"]}, page="/settings"
    )
    assert long.status_code == 422
    assert [html.unescape(e) for e in field_errors(long)] == [
        "an API key's name has at most 64 characters"
    ]
    odd = browser.submit("/settings/keys", {"name": "odd", "scopes": ["admin"]}, page="/settings")
    assert odd.status_code == 422
    assert keys(site) == []


def test_revoking_a_key_stops_it_and_only_ones_own_keys_can_be_revoked(site: Site) -> None:
    alice, bob = site.signed_up("alice"), site.signed_up("bob")
    made = alice.submit("/settings/keys", {"name": "script", "scopes": ["read"]}, page="/settings")
    public_id, secret = PUBLIC.search(made.text), SECRET.search(made.text)
    assert public_id and secret

    stolen = bob.submit(f"/settings/keys/{public_id[1]}/revoke", {}, page="/settings")
    assert stolen.status_code == 404
    assert keys(site)[0][3] is False and whoami(site, public_id[1], secret[1]) == 200

    revoked = alice.submit(f"/settings/keys/{public_id[1]}/revoke", {}, page="/settings")
    assert revoked.url.path == "/settings" and "no longer works" in revoked.text
    assert keys(site)[0][3] is True
    assert whoami(site, public_id[1], secret[1]) == 401
    assert "Revoke</button>" not in revoked.text


def test_changing_the_password_signs_other_browsers_out_but_not_this_one(site: Site) -> None:
    site.signed_up("alice")
    other = site.logged_in("alice")
    browser = site.logged_in("alice")

    wrong = browser.submit(
        "/settings/password",
        {"current_password": "not it at all", "new_password": "a brand new password"},
        page="/settings",
    )
    assert wrong.status_code == 422 and field_errors(wrong) == ["wrong current password"]
    weak = browser.submit(
        "/settings/password",
        {"current_password": PASSWORD, "new_password": "short"},
        page="/settings",
    )
    assert weak.status_code == 422
    assert field_errors(weak) == ["a password needs 10 to 1024 characters"]
    assert other.get("/settings").url.path == "/settings"  # nothing changed yet

    changed = browser.submit(
        "/settings/password",
        {"current_password": PASSWORD, "new_password": "a brand new password"},
        page="/settings",
    )
    assert changed.url.path == "/settings" and "Your password was changed" in changed.text
    assert browser.get("/settings").url.path == "/settings"  # still signed in
    assert other.get("/settings").url.path == "/login"  # signed out
    fresh = site.browser()
    old = fresh.submit("/login", {"username": "alice", "password": PASSWORD})
    assert old.status_code == 401
    new = fresh.submit("/login", {"username": "alice", "password": "a brand new password"})
    assert new.status_code == 200 and new.url.path == "/dashboard"
    with transaction(site.sessions) as session:
        assert session.scalar(select(func.count()).select_from(ApiKey)) == 0
    assert html.unescape(changed.text).count("Log out") == 1


WALLET = "0x52908400098527886E0F7030069857D2E4169EE7"  # EIP-55's own example


def test_a_wallet_address_is_saved_checksummed_and_a_bad_one_is_named(site: Site) -> None:
    site.signed_up("alice")
    browser = site.logged_in("alice")
    bad = browser.submit("/settings/wallet-address", {"address": "0x1234"}, page="/settings")
    assert bad.status_code == 422 and "40 hex digits" in field_errors(bad)[0]
    assert 'value="0x1234"' in bad.text  # what was typed comes back
    saved = browser.submit(
        "/settings/wallet-address", {"address": WALLET.lower()}, page="/settings"
    )
    assert saved.url.path == "/settings" and "Your wallet address was saved" in saved.text
    assert f'value="{WALLET}"' in saved.text
    with transaction(site.sessions) as session:
        assert session.scalar(select(Account.wallet_address).filter_by(username="alice")) == WALLET
    cleared = browser.submit("/settings/wallet-address", {"address": ""}, page="/settings")
    assert cleared.url.path == "/settings"
    with transaction(site.sessions) as session:
        assert session.scalar(select(Account.wallet_address).filter_by(username="alice")) is None
