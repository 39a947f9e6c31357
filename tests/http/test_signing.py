"""Signed URLs: a round trip works, and every change to what was signed is refused."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest

from crowdquant.clock import ManualClock
from crowdquant.http.signing import (
    SignedGrant,
    SignedTokens,
    UrlExpired,
    UrlForged,
    UrlSigner,
    derive_key,
    sign_up_tokens_from_settings,
    signer_from_settings,
)
from crowdquant.settings import PLACEHOLDER_SECRET, Settings

T0 = datetime(2026, 1, 3, 13, 0, tzinfo=UTC)
SECRET = bytes(range(32))
PATH = "/files/v1/train.parquet"
HOUR = timedelta(hours=1)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def signer(clock: ManualClock) -> UrlSigner:
    return UrlSigner(SECRET, clock)


def params(query: str) -> dict[str, str]:
    return dict(parse_qsl(query, keep_blank_values=True))


def test_round_trip(signer: UrlSigner) -> None:
    query = signer.sign("GET", PATH, HOUR)
    grant = signer.verify("GET", PATH, params(query))
    assert grant == SignedGrant("GET", PATH, T0 + HOUR, None)
    assert signer.verify_query("get", PATH, query) == grant
    assert "=" not in params(query)["signature"]  # base64url without padding


def test_round_trip_with_a_size_limit(signer: UrlSigner) -> None:
    query = signer.sign("put", "/uploads/abc.csv", HOUR, max_bytes=1024)
    grant = signer.verify_query("PUT", "/uploads/abc.csv", query)
    assert (grant.method, grant.max_bytes) == ("PUT", 1024)


def test_other_query_parameters_are_ignored(signer: UrlSigner) -> None:
    query = signer.sign("GET", PATH, HOUR) + "&utm=x"
    assert signer.verify_query("GET", PATH, query).path == PATH


def test_expiry(signer: UrlSigner, clock: ManualClock) -> None:
    query = signer.sign("GET", PATH, HOUR)
    clock.advance(HOUR - timedelta(seconds=1))
    signer.verify_query("GET", PATH, query)
    clock.advance(timedelta(seconds=1))
    with pytest.raises(UrlExpired) as refused:
        signer.verify_query("GET", PATH, query)
    assert refused.value.expired_at == T0 + HOUR
    assert refused.value.code == "url_expired"


def _tampered(query: str, **changes: str | None) -> str:
    values = params(query)
    for name, value in changes.items():
        if value is None:
            values.pop(name, None)
        else:
            values[name] = value
    return urlencode(values)


@pytest.mark.parametrize(
    "changes",
    [
        {"expires": str(int((T0 + 2 * HOUR).timestamp()))},  # extended
        {"expires": "0" + str(int((T0 + HOUR).timestamp()))},  # same number, other spelling
        {"expires": "soon"},
        {"expires": None},
        {"signature": None},
        {"signature": ""},
        {"signature": "A" * 43},
        {"signature": "é" * 43},
        {"max_bytes": None},  # limit dropped
        {"max_bytes": "2048"},  # limit raised
        {"max_bytes": "-1"},
    ],
)
def test_tampered_parameters_are_refused(signer: UrlSigner, changes: dict[str, str | None]) -> None:
    query = signer.sign("PUT", PATH, HOUR, max_bytes=1024)
    with pytest.raises(UrlForged) as refused:
        signer.verify_query("PUT", PATH, _tampered(query, **changes))
    assert refused.value.code == "url_forged"


def test_a_limit_cannot_be_added(signer: UrlSigner) -> None:
    query = signer.sign("GET", PATH, HOUR)
    with pytest.raises(UrlForged):
        signer.verify_query("GET", PATH, query + "&max_bytes=10")


def test_a_flipped_signature_character_is_refused(signer: UrlSigner) -> None:
    query = signer.sign("GET", PATH, HOUR)
    signature = params(query)["signature"]
    for position in (0, 21, 42):
        flipped = "B" if signature[position] != "B" else "C"
        forged = signature[:position] + flipped + signature[position + 1 :]
        with pytest.raises(UrlForged):
            signer.verify_query("GET", PATH, _tampered(query, signature=forged))


@pytest.mark.parametrize(
    "path", ["/files/v1/validation.parquet", "/files/v1/train.parquet/", "/files/v2/train.parquet"]
)
def test_another_path_is_refused(signer: UrlSigner, path: str) -> None:
    with pytest.raises(UrlForged):
        signer.verify_query("GET", path, signer.sign("GET", PATH, HOUR))


def test_method_binding(signer: UrlSigner) -> None:
    download = signer.sign("GET", PATH, HOUR)
    for method in ("PUT", "POST", "DELETE", "HEAD", "G ET"):
        with pytest.raises(UrlForged):
            signer.verify_query(method, PATH, download)
    upload = signer.sign("PUT", PATH, HOUR)
    with pytest.raises(UrlForged):
        signer.verify_query("GET", PATH, upload)


def test_another_secret_is_refused(clock: ManualClock, signer: UrlSigner) -> None:
    other = UrlSigner(bytes(range(1, 33)), clock)
    with pytest.raises(UrlForged):
        other.verify_query("GET", PATH, signer.sign("GET", PATH, HOUR))


def test_a_forged_expired_url_reads_as_forged(signer: UrlSigner, clock: ManualClock) -> None:
    query = signer.sign("GET", PATH, HOUR)
    clock.advance(2 * HOUR)
    with pytest.raises(UrlForged):
        signer.verify_query("GET", "/files/v1/live.parquet", query)


def test_repeated_parameters_are_refused(signer: UrlSigner) -> None:
    query = signer.sign("GET", PATH, HOUR)
    with pytest.raises(UrlForged):
        signer.verify_query("GET", PATH, query + "&signature=" + params(query)["signature"])
    with pytest.raises(UrlForged):
        signer.verify_query("GET", PATH, "expires=1&&&")


@pytest.mark.parametrize(
    ("method", "path", "expires_in", "max_bytes"),
    [
        ("GET", PATH, timedelta(0), None),
        ("GET", PATH, -HOUR, None),
        ("GET", "files/v1", HOUR, None),
        ("GET", PATH + "?x=1", HOUR, None),
        ("G ET", PATH, HOUR, None),
        ("PUT", PATH, HOUR, -1),
    ],
)
def test_sign_refuses_bad_input(
    signer: UrlSigner, method: str, path: str, expires_in: timedelta, max_bytes: int | None
) -> None:
    with pytest.raises(ValueError):
        signer.sign(method, path, expires_in, max_bytes=max_bytes)


def test_short_secrets_are_refused(clock: ManualClock) -> None:
    with pytest.raises(ValueError):
        UrlSigner(b"short", clock)


def test_signer_from_settings_derives_a_purpose_key(clock: ManualClock) -> None:
    settings = Settings(secret_key="a-long-enough-operator-secret")
    signer = signer_from_settings(settings, clock)
    query = signer.sign("GET", PATH, HOUR)
    assert UrlSigner(derive_key(settings.secret_key), clock).verify_query("GET", PATH, query)
    # the raw secret and other purposes do not sign URLs
    raw = UrlSigner(settings.secret_key.encode(), clock)
    for other in (raw, UrlSigner(derive_key(settings.secret_key, "sessions"), clock)):
        with pytest.raises(UrlForged):
            other.verify_query("GET", PATH, query)
    rotated = signer_from_settings(Settings(secret_key="another-operator-secret"), clock)
    with pytest.raises(UrlForged):
        rotated.verify_query("GET", PATH, query)


def test_the_default_key_is_not_the_public_placeholder(
    clock: ManualClock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CROWDQUANT_SECRET_KEY", raising=False)
    forger = UrlSigner(derive_key(PLACEHOLDER_SECRET), clock)
    forged = forger.sign("GET", PATH, HOUR)
    server = signer_from_settings(Settings(home=tmp_path / "home"), clock)
    with pytest.raises(UrlForged):
        server.verify_query("GET", PATH, forged)


# --- signed tokens ---------------------------------------------------------------------------


def test_a_signed_token_carries_its_fields_until_it_expires(clock: ManualClock) -> None:
    tokens = SignedTokens(SECRET, clock)
    fields = {"username": "bob", "note": "é ü $ . ="}
    token = tokens.make(fields, HOUR)
    assert tokens.read(token) == fields
    clock.advance(HOUR - timedelta(seconds=1))
    assert tokens.read(token) == fields
    clock.advance(timedelta(seconds=1))
    with pytest.raises(UrlExpired):
        tokens.read(token)


def test_a_changed_or_foreign_token_is_refused(clock: ManualClock, tmp_path: Path) -> None:
    tokens = SignedTokens(SECRET, clock)
    token = tokens.make({"username": "bob"}, HOUR)
    body, signature = token.split(".")
    changed_body = ("B" if body[0] != "B" else "C") + body[1:]
    changed_mac = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    other_key = SignedTokens(bytes(range(1, 33)), clock).make({"username": "bob"}, HOUR)
    for forged in (f"{changed_body}.{signature}", f"{body}.{changed_mac}", other_key,
                   body, "", ".", f"{token}.", "é" * 50, "x" * 5000):  # fmt: skip
        with pytest.raises(UrlForged):
            tokens.read(forged)
    settings = Settings(home=tmp_path, secret_key="k" * 40)
    for_sign_up = sign_up_tokens_from_settings(settings, clock).make({"username": "bob"}, HOUR)
    with pytest.raises(UrlForged):  # the URL signer's key is another purpose's
        SignedTokens(derive_key("k" * 40), clock).read(for_sign_up)


def test_signatures_are_compared_in_constant_time(
    clock: ManualClock, signer: UrlSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[bytes] = []
    original = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append(b)
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    signer.verify("GET", PATH, params(signer.sign("GET", PATH, HOUR)))
    tokens = SignedTokens(SECRET, clock)
    tokens.read(tokens.make({"username": "bob"}, HOUR))
    assert len(compared) == 2
