"""Signed, expiring URLs that the app itself serves: dataset downloads and upload PUTs; and
signed, expiring tokens that links carry (`SignedTokens`: a sign-up link's).

numerapi uses the URLs the server hands out verbatim and sends no auth header on them
(protocol §2.5), so each URL carries its own authorization in the query string::

    /files/v1/train.parquet?expires=1767445200&max_bytes=1048576&signature=<base64url>

The signature is HMAC-SHA256 over the HTTP method, the path, the expiry (Unix seconds) and
the optional limits, encoded as one JSON array so no two grants share a message. Changing any
of them, or using a GET URL to PUT, gives a different MAC: `verify` raises `UrlForged`. A
genuine URL past its expiry raises `UrlExpired`. Signatures are compared in constant time.

The key is never the settings' secret itself but an HMAC of it with a purpose string
(`derive_key`), so a signature made here is useless anywhere else the secret is used.
Sign and verify the same form of the path: the decoded path the server routes on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar
from urllib.parse import parse_qsl, urlencode

from crowdquant.clock import Clock
from crowdquant.settings import Settings, secret_key_of

PURPOSE = "crowdquant/signed-urls/v1"
"""The purpose string the URL-signing key is derived with; change it to void every URL."""

EXPIRES, MAX_BYTES, SIGNATURE = "expires", "max_bytes", "signature"
MIN_SECRET_BYTES = 16

_METHOD = re.compile(r"[A-Z]+")
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,17}")  # canonical form only: no sign, spaces or zeros
_SIGNATURE = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes, base64url without padding

FILES_PATH = "/files/"
"""Where the app serves signed file URLs (`api/files.py`)."""
DOWNLOAD_TTL = timedelta(hours=6)
UPLOAD_TTL = timedelta(hours=1)


class SignedUrlError(ValueError):
    """A signed URL was refused; `code` is stable, the message readable."""

    code: ClassVar[str] = "signed_url_error"


class UrlExpired(SignedUrlError):  # noqa: N818  (short names read better where raised and caught)
    """A genuine URL whose time has passed."""

    code = "url_expired"

    def __init__(self, expired_at: datetime) -> None:
        super().__init__(f"this link expired at {expired_at.isoformat()}")
        self.expired_at = expired_at


class UrlForged(SignedUrlError):  # noqa: N818
    """A URL this server did not sign as presented: bad or missing signature or parameters."""

    code = "url_forged"

    def __init__(self, message: str = "this link is not valid") -> None:
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class SignedGrant:
    """What a verified URL allows: `method` on `path` until `expires_at`, within limits."""

    method: str
    path: str
    expires_at: datetime
    max_bytes: int | None = None


def derive_key(secret_key: str, purpose: str = PURPOSE) -> bytes:
    """A key for one purpose: HMAC-SHA256 of `purpose` keyed with the settings' secret."""
    return hmac.new(secret_key.encode("utf-8"), purpose.encode("utf-8"), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _method(method: str) -> str:
    normal = method.upper()
    if not _METHOD.fullmatch(normal):
        raise ValueError(f"not an HTTP method: {method!r}")
    return normal


def _check_path(path: str) -> str:
    if not path.startswith("/") or "?" in path or "#" in path:
        raise ValueError(f"a signed path is absolute, without query or fragment: {path!r}")
    return path


class _Keyed:
    """One secret (never shown by `repr`) and one clock, for what signs and verifies."""

    def __init__(self, secret: bytes, clock: Clock) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"a signing secret has at least {MIN_SECRET_BYTES} bytes")
        self._secret = bytes(secret)
        self.clock = clock

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<secret>)"


class UrlSigner(_Keyed):
    """Signs and verifies URL grants with one secret and one clock."""

    def _mac(self, method: str, path: str, expires: int, max_bytes: int | None) -> str:
        message = json.dumps(["crowdquant-url-v1", method, path, expires, max_bytes])
        return _b64(hmac.new(self._secret, message.encode("utf-8"), hashlib.sha256).digest())

    def sign(
        self, method: str, path: str, expires_in: timedelta, *, max_bytes: int | None = None
    ) -> str:
        """The query string (without '?') granting `method` on `path` for `expires_in`."""
        method, path = _method(method), _check_path(path)
        if expires_in <= timedelta(0):
            raise ValueError("a signed URL must expire in the future")
        if max_bytes is not None and max_bytes < 0:
            raise ValueError("max_bytes cannot be negative")
        expires = int((self.clock.now() + expires_in).timestamp())
        params: dict[str, str | int] = {EXPIRES: expires}
        if max_bytes is not None:
            params[MAX_BYTES] = max_bytes
        params[SIGNATURE] = self._mac(method, path, expires, max_bytes)
        return urlencode(params)

    def verify(self, method: str, path: str, params: Mapping[str, str]) -> SignedGrant:
        """The grant a URL's query parameters carry; `UrlForged` or `UrlExpired` if none.

        Parameters other than the signer's own are ignored (they are not signed).
        """
        given = params.get(SIGNATURE)
        expires_text = params.get(EXPIRES)
        limit_text = params.get(MAX_BYTES)
        if given is None or expires_text is None:
            raise UrlForged("this link is missing its signature or expiry")
        if not _SIGNATURE.fullmatch(given) or not _DECIMAL.fullmatch(expires_text):
            raise UrlForged()
        if limit_text is not None and not _DECIMAL.fullmatch(limit_text):
            raise UrlForged()
        method = method.upper()
        if not _METHOD.fullmatch(method):
            raise UrlForged()
        expires = int(expires_text)
        max_bytes = None if limit_text is None else int(limit_text)
        expected = self._mac(method, path, expires, max_bytes)
        if not hmac.compare_digest(expected.encode("ascii"), given.encode("ascii")):
            raise UrlForged()
        expires_at = datetime.fromtimestamp(expires, UTC)
        if self.clock.now() >= expires_at:
            raise UrlExpired(expires_at)
        return SignedGrant(method, path, expires_at, max_bytes)

    def verify_query(self, method: str, path: str, query: str) -> SignedGrant:
        """`verify` on a raw query string; a repeated signer parameter is refused."""
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
        except ValueError:
            raise UrlForged() from None
        params: dict[str, str] = {}
        for name, value in pairs:
            if name in params and name in (EXPIRES, MAX_BYTES, SIGNATURE):
                raise UrlForged(f"the link repeats its {name!r} parameter")
            params[name] = value
        return self.verify(method, path, params)


def signer_from_settings(settings: Settings, clock: Clock) -> UrlSigner:
    """The URL signer keyed with the settings' secret key, derived for this purpose only."""
    return UrlSigner(derive_key(secret_key_of(settings)), clock)


TOKEN = "token"
"""The query parameter a link carries its signed token in (a sign-up link's)."""
SIGN_UP_PURPOSE = "crowdquant/sign-up-links/v1"
"""The purpose string the sign-up links' key is derived with; change it to void every link."""
MAX_TOKEN_LENGTH = 4096
_TOKEN = re.compile(r"([A-Za-z0-9_-]{1,4000})\.([A-Za-z0-9_-]{43})")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SignedTokens(_Keyed):
    """Signed, expiring sets of text fields that travel inside a link (a sign-up's).

    A token is ``<fields>.<signature>``: the fields and the expiry as base64url JSON, then
    HMAC-SHA256 over that text, compared in constant time. `read` raises `UrlForged` for a
    token this signer did not make as presented, `UrlExpired` for one past its time.
    The fields are signed, not encrypted: put nothing in them the link's reader may not see.
    """

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._secret, body.encode("ascii"), hashlib.sha256).digest())

    def make(self, fields: Mapping[str, str], expires_in: timedelta) -> str:
        """A token carrying `fields` for `expires_in`."""
        if expires_in <= timedelta(0):
            raise ValueError("a signed token must expire in the future")
        expires = int((self.clock.now() + expires_in).timestamp())
        body = _b64(json.dumps({"fields": dict(fields), "expires": expires}).encode("utf-8"))
        token = f"{body}.{self._mac(body)}"
        if len(token) > MAX_TOKEN_LENGTH:
            raise ValueError(f"a signed token has at most {MAX_TOKEN_LENGTH} characters")
        return token

    def read(self, token: str) -> dict[str, str]:
        """The fields `token` carries, if this signer made it and it has not expired."""
        match = _TOKEN.fullmatch(token.strip()) if len(token) <= MAX_TOKEN_LENGTH else None
        if match is None:
            raise UrlForged()
        body, given = match[1], match[2]
        if not hmac.compare_digest(self._mac(body).encode("ascii"), given.encode("ascii")):
            raise UrlForged()
        content = json.loads(_unb64(body))  # signed by us: well-formed
        expires_at = datetime.fromtimestamp(content["expires"], UTC)
        if self.clock.now() >= expires_at:
            raise UrlExpired(expires_at)
        return {str(name): str(value) for name, value in content["fields"].items()}


def sign_up_tokens_from_settings(settings: Settings, clock: Clock) -> SignedTokens:
    """The signer of sign-up links, keyed with the settings' secret key for this purpose."""
    return SignedTokens(derive_key(secret_key_of(settings), SIGN_UP_PURPOSE), clock)
