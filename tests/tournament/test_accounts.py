"""Accounts, passwords, web sessions and API keys on both backends.

Every refusal is checked to change nothing: `snapshot` reads every row of every table
(flushing whatever the session holds) before and after the refused call.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.db.base import Base
from crowdquant.db.models import Account, ApiKey, WebSession
from crowdquant.tournament import accounts
from crowdquant.tournament.accounts import (
    AccountError,
    EmailTaken,
    InvalidApiKey,
    InvalidCredentials,
    InvalidEmail,
    InvalidKeyName,
    InvalidScopes,
    InvalidSignUpLink,
    InvalidUsername,
    InvalidWalletAddress,
    InvalidWebSession,
    KeyRevoked,
    MalformedToken,
    MissingScope,
    Scope,
    SignUpClaim,
    UnknownAccount,
    UnknownApiKey,
    UsernameTaken,
    WalletAddressTaken,
    WeakPassword,
    WebSessionExpired,
    account_for_web_session,
    account_of_wallet,
    authenticate,
    authenticate_api_key,
    change_password,
    checksum_address,
    create_api_key,
    end_web_session,
    finish_sign_up,
    get_account,
    list_api_keys,
    normal_email,
    normal_name,
    parse_token_header,
    purge_expired_web_sessions,
    request_sign_up,
    revoke_api_key,
    set_wallet_address,
    sign_up,
    sign_up_mail,
    start_web_session,
)

T0 = datetime(2026, 1, 3, 13, 0, tzinfo=UTC)
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "correct horse battery"
DAY = timedelta(days=1)


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as session:
        yield session


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def alice(session: Session, clock: ManualClock) -> Account:
    return sign_up(session, clock, "Alice", "Alice@Example.org", PASSWORD, hasher=CHEAP)


def snapshot(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    return {
        table.name: [
            tuple(row) for row in session.execute(select(table).order_by(*table.primary_key))
        ]
        for table in Base.metadata.sorted_tables
    }


# --- rules (no database) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("alice", "alice"),
        ("Alice_99", "alice_99"),
        ("abc", "abc"),
        ("a" * 32, "a" * 32),
        ("ab", None),
        ("a" * 33, None),
        ("al ice", None),
        ("alice ", None),
        ("al-ice", None),
        ("alice\n", None),
        ("ålice", None),
        ("\u212aelvin", None),  # KELVIN SIGN lower-cases to an ASCII "k"
        ("", None),
    ],
)
def test_names_are_case_folded_ascii(raw: str, normal: str | None) -> None:
    assert normal_name(raw) == normal


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("Alice@Example.ORG", "alice@example.org"),
        ("a.b+tag@mail.example.co.uk", "a.b+tag@mail.example.co.uk"),
        ("x@a-b.io", "x@a-b.io"),
        ("alice", None),
        ("alice@", None),
        ("@example.org", None),
        ("alice@localhost", None),
        ("a@@example.org", None),
        ("a@b@example.org", None),
        (".alice@example.org", None),
        ("al..ice@example.org", None),
        ("alice@-example.org", None),
        ("alice@example..org", None),
        ("al ice@example.org", None),
        ("alice@example.org\n", None),
        ("älice@example.org", None),
        ("a" * 65 + "@example.org", None),
        ("a@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + "." + "e" * 63, None),  # 255 long
    ],
)
def test_emails_follow_the_documented_rule(raw: str, normal: str | None) -> None:
    assert normal_email(raw) == normal


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        ("Token PUB$SEC", ("PUB", "SEC")),
        ("token  PUB$SEC ", ("PUB", "SEC")),
        ("Token A1b2-_$x.Y", ("A1b2-_", "x.Y")),
    ],
)
def test_token_headers_are_parsed(header: str, parsed: tuple[str, str]) -> None:
    assert parse_token_header(header) == parsed


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Token",
        "Token ",
        "PUB$SEC",
        "Bearer PUB$SEC",
        "TokenPUB$SEC",
        "Token PUB",
        "Token $SEC",
        "Token PUB$",
        "Token PUB$SEC$MORE",
        "Token PUB SEC",
        "Token PUB $SEC",
        "Token PUB$SEC extra",
    ],
)
def test_malformed_token_headers_are_refused_without_echoing_them(header: str) -> None:
    with pytest.raises(MalformedToken) as refused:
        parse_token_header(header)
    assert refused.value.code == "malformed_token"
    assert "Token PUBLIC_ID$SECRET_KEY" in str(refused.value)
    assert "SEC" not in str(refused.value).replace("SECRET", "")
    assert isinstance(refused.value, InvalidApiKey)  # an API answers it like a bad key


def test_every_error_has_its_own_stable_code() -> None:
    errors: list[type[AccountError]] = [AccountError, *_subclasses(AccountError)]
    codes = [error.code for error in errors]
    assert len(codes) == len(set(codes))
    for error in errors:
        if error is not MissingScope:
            assert isinstance(error(), ValueError)
            assert error().message == str(error()) != ""
    assert MissingScope(Scope.STAKE).scope is Scope.STAKE


def _subclasses(cls: type[AccountError]) -> list[type[AccountError]]:
    return [sub for child in cls.__subclasses__() for sub in (child, *_subclasses(child))]


# --- accounts --------------------------------------------------------------------------------


def test_sign_up_stores_lower_case_names_then_signs_in_by_either_in_any_case(
    session: Session, alice: Account
) -> None:
    session.commit()
    stored = session.scalars(select(Account)).one()
    assert (stored.username, stored.email, stored.created_at) == ("alice", "alice@example.org", T0)
    assert stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in stored.password_hash
    assert CHEAP.verify(stored.password_hash, PASSWORD)
    for login in ("alice", "ALICE", "alice@example.org", "Alice@EXAMPLE.org"):
        assert authenticate(session, login, PASSWORD, hasher=CHEAP) is alice


def test_sign_up_refuses_invalid_input_and_writes_nothing(
    session: Session, clock: ManualClock, alice: Account
) -> None:
    refusals: list[tuple[str, str, str, type[AccountError]]] = [
        ("al", "al@example.org", PASSWORD, InvalidUsername),
        ("al ice", "al@example.org", PASSWORD, InvalidUsername),
        ("bob", "bob@example", PASSWORD, InvalidEmail),
        ("bob", "bob example.org", PASSWORD, InvalidEmail),
        ("bob", "bob@example.org", "short", WeakPassword),
        ("bob", "bob@example.org", "x" * 9, WeakPassword),
        ("bob", "bob@example.org", "x" * 1025, WeakPassword),
        ("al", "alice@example.org", "short", InvalidUsername),  # the username is checked first
    ]
    before = snapshot(session)
    for username, email, password, error in refusals:
        with pytest.raises(error):
            sign_up(session, clock, username, email, password, hasher=CHEAP)
        assert snapshot(session) == before, (username, email, password)


def test_usernames_and_emails_are_unique_regardless_of_case(
    session: Session, clock: ManualClock, alice: Account
) -> None:
    session.commit()
    before = snapshot(session)
    with pytest.raises(UsernameTaken):
        sign_up(session, clock, "ALICE", "other@example.org", PASSWORD, hasher=CHEAP)
    assert snapshot(session) == before
    with pytest.raises(EmailTaken):
        sign_up(session, clock, "alice2", "ALICE@example.ORG", PASSWORD, hasher=CHEAP)
    assert snapshot(session) == before
    sign_up(session, clock, "alice2", "alice2@example.org", "x" * 10, hasher=CHEAP)
    session.commit()
    assert len(snapshot(session)["accounts"]) == 2


def test_a_duplicate_that_slips_past_the_check_is_caught_by_the_database(
    session: Session, clock: ManualClock, alice: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As if another request signed up between our check and our insert."""
    session.commit()
    check = accounts._check_free
    calls: list[str] = []

    def late_check(session: Session, username: str, email: str) -> None:
        calls.append(username)
        if len(calls) > 1:
            check(session, username, email)

    monkeypatch.setattr(accounts, "_check_free", late_check)
    before = snapshot(session)
    with pytest.raises(UsernameTaken):
        sign_up(session, clock, "alice", "new@example.org", PASSWORD, hasher=CHEAP)
    assert calls == ["alice", "alice"]
    assert snapshot(session) == before  # the savepoint kept the outer transaction usable
    sign_up(session, clock, "bob", "bob@example.org", PASSWORD, hasher=CHEAP)
    session.commit()


# --- signing up by email ----------------------------------------------------------------------


def test_a_sign_up_request_writes_nothing_and_hides_a_taken_email_in_its_mail(
    session: Session, clock: ManualClock, alice: Account
) -> None:
    session.commit()
    before = snapshot(session)
    free = request_sign_up(session, "Bob", "Bob@Example.org", PASSWORD, hasher=CHEAP)
    taken = request_sign_up(session, "bob", "ALICE@example.org", PASSWORD, hasher=CHEAP)
    assert snapshot(session) == before
    assert (free.claim.username, free.claim.email) == ("bob", "bob@example.org")
    assert CHEAP.verify(free.claim.password_hash, PASSWORD) and PASSWORD not in repr(free)
    assert (free.email_taken, taken.email_taken) == (False, True)
    assert "email_taken" not in repr(taken)

    links = {
        "finish_link": "https://crowd.example/f?t=1",
        "sign_in_link": "https://crowd.example/login",
    }
    invitation, notice = sign_up_mail(free, **links), sign_up_mail(taken, **links)
    assert (invitation.to, notice.to) == ("bob@example.org", "alice@example.org")
    assert links["finish_link"] in invitation.body and links["sign_in_link"] not in invitation.body
    assert links["sign_in_link"] in notice.body and links["finish_link"] not in notice.body

    with pytest.raises(UsernameTaken):  # usernames are public: said at once
        request_sign_up(session, "ALICE", "new@example.org", PASSWORD, hasher=CHEAP)
    with pytest.raises(WeakPassword):
        request_sign_up(session, "bob", "bob@example.org", "short", hasher=CHEAP)
    assert snapshot(session) == before


def test_finishing_a_sign_up_creates_the_claimed_account_once(
    session: Session, clock: ManualClock, alice: Account
) -> None:
    claim = request_sign_up(session, "bob", "bob@example.org", PASSWORD, hasher=CHEAP).claim
    assert SignUpClaim.from_fields(claim.fields()) == claim
    bob = finish_sign_up(session, clock, claim)
    assert authenticate(session, "bob", PASSWORD, hasher=CHEAP) is bob
    session.commit()
    before = snapshot(session)
    with pytest.raises(EmailTaken):  # the same link again
        finish_sign_up(session, clock, claim)
    late = SignUpClaim("bob", "other@example.org", claim.password_hash)
    with pytest.raises(UsernameTaken):
        finish_sign_up(session, clock, late)
    assert snapshot(session) == before


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"username": "Bob", "email": "bob@example.org", "password_hash": "$argon2id$x"},
        {"username": "bob", "email": "Bob@example.org", "password_hash": "$argon2id$x"},
        {"username": "bob", "email": "bob@example.org", "password_hash": "plain"},
    ],
)
def test_a_claim_that_is_not_normal_is_refused(fields: dict[str, str]) -> None:
    with pytest.raises(InvalidSignUpLink):
        SignUpClaim.from_fields(fields)


def test_a_wrong_password_reads_like_an_unknown_account(session: Session, alice: Account) -> None:
    attempts = [
        ("alice", "wrong password"),
        ("alice@example.org", PASSWORD.upper()),
        ("alice", "x" * 2000),
        ("bob", PASSWORD),
        ("bob@example.org", PASSWORD),
        ("not a name", PASSWORD),
        ("not@an@email", PASSWORD),
        ("", ""),
    ]
    before = snapshot(session)
    for login, password in attempts:
        with pytest.raises(InvalidCredentials) as refused:
            authenticate(session, login, password, hasher=CHEAP)
        assert str(refused.value) == "wrong username, email or password"
        assert snapshot(session) == before, (login, password)


def test_hashes_follow_the_hasher_and_are_renewed_when_it_changes(
    session: Session, clock: ManualClock, alice: Account
) -> None:
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    old_hash = alice.password_hash
    assert authenticate(session, "alice", PASSWORD, hasher=stronger) is alice
    session.commit()
    new_hash = session.scalars(select(Account.password_hash)).one()
    assert new_hash.startswith("$argon2id$v=19$m=16,t=2,p=1$")
    assert new_hash != old_hash
    assert not stronger.check_needs_rehash(new_hash)
    authenticate(session, "alice", PASSWORD, hasher=stronger)
    assert alice.password_hash == new_hash  # no needless rehash

    carol = sign_up(session, clock, "carol", "carol@example.org", PASSWORD)  # the default
    assert carol.password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert authenticate(session, "carol", PASSWORD) is carol


def test_change_password_signs_every_browser_out_and_keeps_api_keys(
    session: Session, clock: ManualClock, alice: Account
) -> None:
    start_web_session(session, clock, alice, DAY)
    key = create_api_key(session, clock, alice, "laptop", {Scope.READ})
    change_password(session, alice, PASSWORD, "a new long password", hasher=CHEAP)
    session.commit()
    assert authenticate(session, "alice", "a new long password", hasher=CHEAP) is alice
    with pytest.raises(InvalidCredentials):
        authenticate(session, "alice", PASSWORD, hasher=CHEAP)
    assert session.scalars(select(WebSession)).all() == []
    assert authenticate_api_key(session, clock, key.public_id, key.secret, Scope.READ) is alice


def test_change_password_refusals_change_nothing(
    session: Session, clock: ManualClock, alice: Account
) -> None:
    start_web_session(session, clock, alice, DAY)
    refusals: list[tuple[str, str, type[AccountError]]] = [
        ("wrong password", "a new long password", InvalidCredentials),
        (PASSWORD, "too short", WeakPassword),
        ("wrong password", "too short", WeakPassword),  # checked before the (slow) verify
    ]
    before = snapshot(session)
    for current, new, error in refusals:
        with pytest.raises(error):
            change_password(session, alice, current, new, hasher=CHEAP)
        assert snapshot(session) == before, (current, new)


# --- web sessions ----------------------------------------------------------------------------


def test_a_web_session_lasts_its_ttl_and_only_its_hash_is_stored(
    session: Session, clock: ManualClock, alice: Account
) -> None:
    token = start_web_session(session, clock, alice, timedelta(hours=2))
    session.commit()
    assert len(token) >= 43  # 32 random bytes, URL-safe base64
    row = session.scalars(select(WebSession)).one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(snapshot(session))
    assert (row.created_at, row.expires_at) == (T0, T0 + timedelta(hours=2))

    clock.advance(timedelta(hours=2) - timedelta(microseconds=1))
    assert account_for_web_session(session, clock, token) is alice
    clock.advance(timedelta(microseconds=1))
    before = snapshot(session)
    with pytest.raises(WebSessionExpired) as refused:
        account_for_web_session(session, clock, token)
    assert isinstance(refused.value, InvalidWebSession)
    assert snapshot(session) == before

    live = start_web_session(session, clock, alice, DAY)
    assert purge_expired_web_sessions(session, clock) == 1
    with pytest.raises(InvalidWebSession):
        account_for_web_session(session, clock, token)
    assert account_for_web_session(session, clock, live) is alice


def test_api_key_secrets_are_compared_in_constant_time(
    session: Session, clock: ManualClock, alice: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = create_api_key(session, clock, alice, "laptop", [Scope.READ])
    compared: list[object] = []
    original = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        compared.append(b)
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert authenticate_api_key(session, clock, key.public_id, key.secret, Scope.READ) is alice
    with pytest.raises(InvalidApiKey):
        authenticate_api_key(session, clock, key.public_id, "0" * 64, Scope.READ)
    assert len(compared) == 2


def test_unknown_and_ended_web_sessions_are_refused(
    session: Session, clock: ManualClock, alice: Account
) -> None:
    token = start_web_session(session, clock, alice, DAY)
    other = start_web_session(session, clock, alice, DAY)
    assert token != other
    with pytest.raises(InvalidWebSession):
        account_for_web_session(session, clock, "not a token")
    end_web_session(session, token)
    end_web_session(session, token)  # signing out twice is fine
    with pytest.raises(InvalidWebSession):
        account_for_web_session(session, clock, token)
    assert account_for_web_session(session, clock, other) is alice
    before = snapshot(session)
    with pytest.raises(ValueError, match="positive"):
        start_web_session(session, clock, alice, timedelta(0))
    assert snapshot(session) == before


# --- API keys --------------------------------------------------------------------------------


def test_an_api_key_is_shown_once_stored_hashed_and_works_from_its_header(
    session: Session, clock: ManualClock, alice: Account
) -> None:
    new = create_api_key(session, clock, alice, " laptop ", {Scope.READ, "upload"})
    session.commit()
    assert new.scopes == {Scope.READ, Scope.UPLOAD}
    assert new.token == f"{new.public_id}${new.secret}"
    assert len(new.secret) == 64  # 32 random bytes, hex
    assert new.secret not in repr(new)

    everything = repr(snapshot(session))
    assert new.public_id in everything
    assert new.secret not in everything
    assert new.secret.lower() not in everything
    row = session.scalars(select(ApiKey)).one()
    assert row.secret_hash == hashlib.sha256(new.secret.encode()).hexdigest()
    assert (row.name, row.scopes, row.created_at) == ("laptop", ["read", "upload"], T0)
    assert (row.revoked_at, row.last_used_at) == (None, None)

    clock.advance(DAY)
    public_id, secret = parse_token_header(f"Token {new.token}")
    for scope in (Scope.READ, Scope.UPLOAD):
        assert authenticate_api_key(session, clock, public_id, secret, scope) is alice
    session.commit()
    assert row.last_used_at == T0 + DAY


def test_scopes_are_enforced(session: Session, clock: ManualClock, alice: Account) -> None:
    new = create_api_key(session, clock, alice, "read only", {Scope.READ})
    assert authenticate_api_key(session, clock, new.public_id, new.secret, Scope.READ) is alice
    clock.advance(DAY)
    before = snapshot(session)
    for scope in (Scope.UPLOAD, Scope.STAKE):
        with pytest.raises(MissingScope) as refused:
            authenticate_api_key(session, clock, new.public_id, new.secret, scope)
        assert refused.value.scope is scope
        assert repr(scope.value) in str(refused.value)
    assert snapshot(session) == before  # last_used_at not moved by a refusal


def test_a_wrong_secret_reads_like_an_unknown_key(
    session: Session, clock: ManualClock, alice: Account
) -> None:
    new = create_api_key(session, clock, alice, "", {Scope.READ})
    other = create_api_key(session, clock, alice, "", {Scope.READ})
    before = snapshot(session)
    attempts = [
        (new.public_id, other.secret),
        (new.public_id, new.secret.lower()),
        (new.public_id, ""),
        ("UNKNOWN", new.secret),
        (new.secret, new.public_id),
    ]
    for public_id, secret in attempts:
        with pytest.raises(InvalidApiKey) as refused:
            authenticate_api_key(session, clock, public_id, secret, Scope.READ)
        assert str(refused.value) == "unknown API key or wrong secret"
    assert snapshot(session) == before


def test_a_revoked_key_is_refused_for_good(
    session: Session, clock: ManualClock, alice: Account
) -> None:
    new = create_api_key(session, clock, alice, "", {Scope.READ})
    clock.advance(DAY)
    revoked = revoke_api_key(session, clock, alice, new.public_id)
    assert revoked.revoked_at == T0 + DAY
    clock.advance(DAY)
    before = snapshot(session)
    assert revoke_api_key(session, clock, alice, new.public_id).revoked_at == T0 + DAY
    with pytest.raises(KeyRevoked):
        authenticate_api_key(session, clock, new.public_id, new.secret, Scope.READ)
    with pytest.raises(InvalidApiKey):  # revocation is told only to who knows the secret
        authenticate_api_key(session, clock, new.public_id, "wrong", Scope.READ)
    assert snapshot(session) == before


def test_only_the_owner_may_revoke_a_key(
    session: Session, clock: ManualClock, alice: Account
) -> None:
    bob = sign_up(session, clock, "bob", "bob@example.org", PASSWORD, hasher=CHEAP)
    new = create_api_key(session, clock, alice, "", {Scope.READ})
    before = snapshot(session)
    for public_id in (new.public_id, "UNKNOWN"):
        with pytest.raises(UnknownApiKey):
            revoke_api_key(session, clock, bob, public_id)
    assert snapshot(session) == before
    assert authenticate_api_key(session, clock, new.public_id, new.secret, Scope.READ) is alice


def test_create_api_key_refusals_change_nothing(
    session: Session, clock: ManualClock, alice: Account
) -> None:
    refusals: list[tuple[str, set[Scope | str], type[AccountError]]] = [
        ("", set(), InvalidScopes),
        ("", {"read", "admin"}, InvalidScopes),
        ("x" * 65, {Scope.READ}, InvalidKeyName),
    ]
    before = snapshot(session)
    for name, scopes, error in refusals:
        with pytest.raises(error):
            create_api_key(session, clock, alice, name, scopes)
        assert snapshot(session) == before, (name, scopes)


def test_list_api_keys_shows_ones_own_oldest_first(
    session: Session, clock: ManualClock, alice: Account
) -> None:
    bob = sign_up(session, clock, "bob", "bob@example.org", PASSWORD, hasher=CHEAP)
    first = create_api_key(session, clock, alice, "first", {Scope.READ})
    create_api_key(session, clock, bob, "bob's", {Scope.READ})
    clock.advance(DAY)
    second = create_api_key(session, clock, alice, "second", {Scope.STAKE})
    revoke_api_key(session, clock, alice, first.public_id)
    session.commit()
    listed = list_api_keys(session, alice)
    assert [key.public_id for key in listed] == [first.public_id, second.public_id]
    assert [key.revoked_at for key in listed] == [T0 + DAY, None]
    assert [key.name for key in list_api_keys(session, bob)] == ["bob's"]


def test_get_account_finds_any_case_and_names_the_missing(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        sign_up(
            session,
            ManualClock(datetime(2026, 1, 6, tzinfo=UTC)),
            "Alice_1",
            "a@example.org",
            "a long password",
            hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
        )
        assert get_account(session, "ALICE_1").username == "alice_1"
        with pytest.raises(UnknownAccount, match="'bob'"):
            get_account(session, "bob")


# --- wallet addresses ------------------------------------------------------------------------

WALLET = "0x52908400098527886E0F7030069857D2E4169EE7"  # EIP-55's own example


def test_a_wallet_address_belongs_to_one_account(
    session: Session, clock: ManualClock, alice: Account
) -> None:
    bob = sign_up(session, clock, "bob", "bob@example.org", PASSWORD, hasher=CHEAP)
    assert set_wallet_address(session, alice, WALLET.upper().replace("0X", "0x")) is alice
    assert alice.wallet_address == WALLET
    before = snapshot(session)
    with pytest.raises(WalletAddressTaken):
        set_wallet_address(session, bob, WALLET.lower())
    assert snapshot(session) == before and bob.wallet_address is None
    assert account_of_wallet(session, WALLET.lower()) is alice
    assert account_of_wallet(session, "not an address") is None
    set_wallet_address(session, alice, WALLET)  # the same address again: no change
    set_wallet_address(session, alice, None)
    set_wallet_address(session, bob, WALLET)
    assert (alice.wallet_address, bob.wallet_address) == (None, WALLET)
    assert account_of_wallet(session, WALLET) is bob


@pytest.mark.parametrize(
    "bad",
    [
        "0x52908400098527886e0F7030069857D2E4169EE7",  # one letter's case off
        "0x" + "0" * 40,
        "0x" + "g" * 40,
        "0x" + "a" * 39,
        "52908400098527886E0F7030069857D2E4169EE7",
        "",
    ],
)
def test_malformed_wallet_addresses_are_refused(bad: str) -> None:
    with pytest.raises(InvalidWalletAddress):
        checksum_address(bad)


def test_a_wallet_address_registered_since_the_check_is_refused_by_name(
    session: Session, clock: ManualClock, alice: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    bob = sign_up(session, clock, "bob", "bob@example.org", PASSWORD, hasher=CHEAP)
    set_wallet_address(session, alice, WALLET)
    looked_up = session.scalar
    calls = []

    def first_check_misses(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return None if len(calls) == 1 else looked_up(*args, **kwargs)  # alice's, not yet seen

    monkeypatch.setattr(session, "scalar", first_check_misses)
    with pytest.raises(WalletAddressTaken):
        set_wallet_address(session, bob, WALLET)
    monkeypatch.undo()
    assert len(calls) == 2  # the unique constraint refused it, and the check ran again
    session.refresh(bob)
    assert (alice.wallet_address, bob.wallet_address) == (WALLET, None)
