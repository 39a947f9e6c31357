"""Accounts and the ways to act as one: passwords, web sessions and API keys.

Every function works inside the caller's transaction: it reads and writes through `session`
and flushes, but never commits. Input is checked before anything is written, and a call that
raises leaves the database as it found it (unique clashes are caught in a savepoint).

Secrets are never stored. Passwords, which people choose and attackers can guess, are hashed
with argon2id, a deliberately slow KDF. Web-session tokens and API-key secrets are 32 random
bytes: nothing to guess, so their SHA-256 is stored and a slow KDF would only slow every
request. API-key hashes are compared with `hmac.compare_digest`; a web session is found by
its token's SHA-256, which a guesser cannot steer, so the lookup's timing tells nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, joinedload

from crowdquant.clock import Clock
from crowdquant.db.models import Account, ApiKey, ApiScope, WebSession
from crowdquant.db.session import is_busy
from crowdquant.mail import Message
from crowdquant.tournament.errors import ServiceError

Scope = ApiScope  # what an API key may do: read, upload, stake

NAME_RULE = "3 to 32 characters, each a letter a-z, a digit or an underscore"
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024  # argon2 hashes any length; this bounds the work one request costs
MAX_KEY_NAME_LENGTH = 64
SECRET_BYTES = 32
KEY_USE_RESOLUTION = timedelta(minutes=1)
"""A key's `last_used_at` is recorded at most this often: reads need not write."""

_NAME = re.compile(r"[a-z0-9_]{3,32}")
_EMAIL_LOCAL = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_EMAIL_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_EMAIL = re.compile(rf"{_EMAIL_LOCAL}@(?:{_EMAIL_LABEL}\.)+{_EMAIL_LABEL}")
_TOKEN_HEADER = re.compile(r"\s*token\s+([^\s$]+)\$([^\s$]+)\s*", re.IGNORECASE)


# --- errors (N818 waived: short names read better where raised and caught) -------------------


class AccountError(ServiceError):
    """A refused request about accounts, keys or models."""

    code = "account_error"


class InvalidUsername(AccountError):  # noqa: N818
    code = "invalid_username"
    default_message = f"a username is {NAME_RULE}"


class InvalidEmail(AccountError):  # noqa: N818
    code = "invalid_email"
    default_message = "not an email address of the form name@example.org"


class WeakPassword(AccountError):  # noqa: N818
    code = "weak_password"
    default_message = f"a password needs {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"


class UsernameTaken(AccountError):  # noqa: N818
    code = "username_taken"
    default_message = "that username is taken"


class EmailTaken(AccountError):  # noqa: N818
    code = "email_taken"
    default_message = "an account with that email address exists"


class InvalidCredentials(AccountError):  # noqa: N818
    """The same message whether the account is unknown or the password wrong."""

    code = "invalid_credentials"
    default_message = "wrong username, email or password"


class InvalidWebSession(AccountError):  # noqa: N818
    code = "invalid_web_session"
    default_message = "not signed in"


class WebSessionExpired(InvalidWebSession):
    code = "web_session_expired"
    default_message = "the session has expired: sign in again"


class InvalidApiKey(AccountError):  # noqa: N818
    """Unknown public id or wrong secret (not told apart)."""

    code = "invalid_api_key"
    default_message = "unknown API key or wrong secret"


class MalformedToken(InvalidApiKey):
    code = "malformed_token"
    default_message = 'expected the header "Authorization: Token PUBLIC_ID$SECRET_KEY"'


class KeyRevoked(AccountError):  # noqa: N818
    code = "key_revoked"
    default_message = "this API key has been revoked"


class MissingScope(AccountError):  # noqa: N818
    code = "missing_scope"

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        super().__init__(f"this API key lacks the {scope.value!r} scope")


class InvalidScopes(AccountError):  # noqa: N818
    code = "invalid_scopes"
    default_message = "an API key needs one or more of the scopes: " + ", ".join(Scope)


class InvalidKeyName(AccountError):  # noqa: N818
    code = "invalid_key_name"
    default_message = f"an API key's name has at most {MAX_KEY_NAME_LENGTH} characters"


class UnknownApiKey(AccountError):  # noqa: N818
    code = "unknown_api_key"
    default_message = "you have no API key with that public id"


class InvalidWalletAddress(AccountError):  # noqa: N818
    code = "invalid_wallet_address"
    default_message = (
        "a wallet address is 0x and 40 hex digits (in one case, or checksummed by EIP-55),"
        " not the zero address"
    )


class WalletAddressTaken(AccountError):  # noqa: N818
    code = "wallet_address_taken"
    default_message = "another account has registered that wallet address"


# --- rules -----------------------------------------------------------------------------------


def normal_name(value: str) -> str | None:
    """`value` lower-cased if it is a valid username or model name (`NAME_RULE`), else None."""
    name = value.lower() if value.isascii() else ""  # ASCII first: U+212A KELVIN SIGN lowers to "k"
    return name if _NAME.fullmatch(name) else None


def normal_email(value: str) -> str | None:
    """`value` lower-cased if it is an email address we accept, else None.

    The rule, deliberately simple: ASCII, at most 254 characters, `local@domain`; the local
    part (at most 64) is dot-separated runs of letters, digits and ``!#$%&'*+/=?^_`{|}~-``;
    the domain is two or more dot-separated labels of letters, digits and inner hyphens.
    """
    email = value.lower() if value.isascii() else ""
    if len(email) > 254 or not _EMAIL.fullmatch(email) or email.index("@") > 64:
        return None
    return email


def _check_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise WeakPassword()


def _hasher(hasher: PasswordHasher | None) -> PasswordHasher:
    return PasswordHasher() if hasher is None else hasher  # argon2id, default parameters


def _password_matches(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


# --- accounts --------------------------------------------------------------------------------


def sign_up(
    session: Session,
    clock: Clock,
    username: str,
    email: str,
    password: str,
    *,
    hasher: PasswordHasher | None = None,
) -> Account:
    """A new account at once (the operator's way); username and email are stored lower-case,
    the password argon2id-hashed. People sign themselves up with `request_sign_up`."""
    name, address = _checked_form(username, email, password)
    _check_free(session, name, address)
    return _create_account(session, clock, name, address, _hasher(hasher).hash(password))


def _checked_form(username: str, email: str, password: str) -> tuple[str, str]:
    name, address = normal_name(username), normal_email(email)
    if name is None:
        raise InvalidUsername()
    if address is None:
        raise InvalidEmail()
    _check_password(password)
    return name, address


def _create_account(
    session: Session, clock: Clock, name: str, address: str, password_hash: str
) -> Account:
    account = Account(
        username=name, email=address, password_hash=password_hash, created_at=clock.now()
    )
    try:
        with session.begin_nested():
            session.add(account)
            session.flush()
    except IntegrityError:
        _check_free(session, name, address)  # someone signed up with it since the check
        raise
    return account


# --- signing up by email ---------------------------------------------------------------------
#
# A sign-up form never says whether its email has an account: the answer is always "check
# your inbox". A free email is sent a link that carries the account to create (signed by
# the caller, see `SignUpClaim`); a taken one is sent a notice pointing to the sign-in page.
# The account exists only once the link is followed (`finish_sign_up`). Usernames are
# public (profiles, leaderboards), so a taken one is said at once.

SIGN_UP_LINK_TTL = timedelta(hours=24)
SITE_NAME = "crowdquant"


class InvalidSignUpLink(AccountError):  # noqa: N818
    code = "invalid_sign_up_link"
    default_message = "this sign-up link is not valid: sign up again"


@dataclass(frozen=True)
class SignUpClaim:
    """The account a sign-up link creates once followed: what the link carries, signed."""

    username: str
    email: str
    password_hash: str = field(repr=False)

    def fields(self) -> dict[str, str]:
        return {"username": self.username, "email": self.email, "password_hash": self.password_hash}

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> SignUpClaim:
        """The claim a verified link carries; InvalidSignUpLink if it is not one."""
        username, email = fields.get("username", ""), fields.get("email", "")
        password_hash = fields.get("password_hash", "")
        if normal_name(username) != username or normal_email(email) != email:
            raise InvalidSignUpLink()
        if not password_hash.startswith("$argon2"):
            raise InvalidSignUpLink()
        return cls(username, email, password_hash)


@dataclass(frozen=True)
class SignUpRequest:
    """A checked sign-up form: the claim to send, and whether its email has an account."""

    claim: SignUpClaim
    email_taken: bool = field(repr=False)


def request_sign_up(
    session: Session,
    username: str,
    email: str,
    password: str,
    *,
    hasher: PasswordHasher | None = None,
) -> SignUpRequest:
    """Check a sign-up form and hash its password; nothing is written.

    Raises for bad input and a taken username. A taken email is not an error: the request
    says so only to `sign_up_mail`, and costs the same (the password is hashed either way).
    """
    name, address = _checked_form(username, email, password)
    if session.scalar(select(Account.id).where(Account.username == name)) is not None:
        raise UsernameTaken()
    taken = session.scalar(select(Account.id).where(Account.email == address)) is not None
    claim = SignUpClaim(name, address, _hasher(hasher).hash(password))
    return SignUpRequest(claim, email_taken=taken)


def sign_up_mail(request: SignUpRequest, *, finish_link: str, sign_in_link: str) -> Message:
    """The mail a sign-up sends: the link to finish it, or, for an email that has an account,
    a notice that someone tried, pointing to the sign-in page."""
    to = request.claim.email
    hours = int(SIGN_UP_LINK_TTL.total_seconds() // 3600)
    if request.email_taken:
        return Message(
            to=to,
            subject=f"Someone tried to sign up to {SITE_NAME} with your email",
            body=(
                f"Someone asked to sign up to {SITE_NAME} with this email address, which"
                " already has an account. No new account was made.\n\n"
                f"If it was you, log in instead:\n{sign_in_link}\n\n"
                "If it was not you, ignore this mail: your account is unchanged.\n"
            ),
        )
    return Message(
        to=to,
        subject=f"Finish signing up to {SITE_NAME}",
        body=(
            f"To finish signing up to {SITE_NAME} as {request.claim.username}, follow this"
            f" link within {hours} hours:\n{finish_link}\n\n"
            "If you did not ask for an account, ignore this mail: none is made.\n"
        ),
    )


def finish_sign_up(session: Session, clock: Clock, claim: SignUpClaim) -> Account:
    """Create the account a followed sign-up link claims.

    EmailTaken if the email has an account (the link was followed before; told here, as
    whoever follows the link reads that inbox); UsernameTaken if someone took the name since.
    """
    if session.scalar(select(Account.id).where(Account.email == claim.email)) is not None:
        raise EmailTaken()
    _check_free(session, claim.username, claim.email)
    return _create_account(session, clock, claim.username, claim.email, claim.password_hash)


class UnknownAccount(AccountError):  # noqa: N818
    code = "unknown_account"
    default_message = "there is no such account"


def get_account(session: Session, username: str) -> Account:
    """The account named `username` (any case); raises UnknownAccount."""
    name = normal_name(username)
    found = (
        None if name is None else session.scalar(select(Account).where(Account.username == name))
    )
    if found is None:
        raise UnknownAccount(f"there is no account {username!r}")
    return found


def _check_free(session: Session, username: str, email: str) -> None:
    if session.scalar(select(Account.id).where(Account.username == username)) is not None:
        raise UsernameTaken()
    if session.scalar(select(Account.id).where(Account.email == email)) is not None:
        raise EmailTaken()


def authenticate(
    session: Session, login: str, password: str, *, hasher: PasswordHasher | None = None
) -> Account:
    """The account whose username or email is `login`, if `password` is its password.

    A hash made with other parameters than `hasher`'s is replaced by a fresh one.
    """
    hasher = _hasher(hasher)
    normal = normal_email(login) if "@" in login else normal_name(login)
    account = None
    if normal is not None:
        column = Account.email if "@" in login else Account.username
        account = session.scalar(select(Account).where(column == normal))
    if account is None:
        if len(password) <= MAX_PASSWORD_LENGTH:
            hasher.hash(password)  # as slow as a wrong password: timing hides who has an account
        raise InvalidCredentials()
    if not _password_matches(hasher, account.password_hash, password):
        raise InvalidCredentials()
    if hasher.check_needs_rehash(account.password_hash):
        account.password_hash = hasher.hash(password)
        session.flush()
    return account


def change_password(
    session: Session,
    account: Account,
    current_password: str,
    new_password: str,
    *,
    hasher: PasswordHasher | None = None,
) -> None:
    """Replace the password, given the current one, and sign every browser out.

    A changed password is often a leaked one, so all the account's web sessions end (start a
    new one for the browser that made the change). API keys are separate credentials and stay.
    """
    _check_password(new_password)
    hasher = _hasher(hasher)
    if not _password_matches(hasher, account.password_hash, current_password):
        raise InvalidCredentials("wrong current password")
    account.password_hash = hasher.hash(new_password)
    session.execute(delete(WebSession).where(WebSession.account_id == account.id))
    session.flush()


# --- web sessions ----------------------------------------------------------------------------


def start_web_session(session: Session, clock: Clock, account: Account, ttl: timedelta) -> str:
    """A new signed-in browser for `ttl`: returns the cookie's token (only its hash is kept)."""
    if ttl <= timedelta(0):
        raise ValueError(f"a web session lasts a positive time, not {ttl}")
    token = secrets.token_urlsafe(SECRET_BYTES)
    now = clock.now()
    session.add(
        WebSession(
            account_id=account.id, token_hash=_sha256(token), created_at=now, expires_at=now + ttl
        )
    )
    session.flush()
    return token


def account_for_web_session(session: Session, clock: Clock, token: str) -> Account:
    """Who is signed in with `token`; unknown or ended → InvalidWebSession, or expired."""
    found = session.scalar(select(WebSession).where(WebSession.token_hash == _sha256(token)))
    if found is None:
        raise InvalidWebSession()
    if clock.now() >= found.expires_at:
        raise WebSessionExpired()
    return found.account


def end_web_session(session: Session, token: str) -> None:
    """Sign out; ending an unknown or already ended session does nothing."""
    session.execute(delete(WebSession).where(WebSession.token_hash == _sha256(token)))


def purge_expired_web_sessions(session: Session, clock: Clock) -> int:
    """Delete the web sessions that have expired; returns how many."""
    expired = delete(WebSession).where(WebSession.expires_at <= clock.now())
    return len(session.scalars(expired.returning(WebSession.id)).all())


# --- API keys --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewApiKey:
    """A key just made, the only time its secret is known: show it once, then forget it."""

    public_id: str
    secret: str = field(repr=False)
    scopes: frozenset[Scope]

    @property
    def token(self) -> str:
        """What numerapi sends after "Authorization: Token "."""
        return f"{self.public_id}${self.secret}"


def create_api_key(
    session: Session, clock: Clock, account: Account, name: str, scopes: Iterable[Scope | str]
) -> NewApiKey:
    """A new key for `account` with `scopes` (at least one); its secret is returned only here."""
    name = name.strip()
    if len(name) > MAX_KEY_NAME_LENGTH:
        raise InvalidKeyName()
    try:
        granted = frozenset(Scope(scope) for scope in scopes)
    except ValueError:
        raise InvalidScopes() from None
    if not granted:
        raise InvalidScopes()
    public_id = secrets.token_hex(16).upper()
    secret = secrets.token_hex(SECRET_BYTES).upper()
    session.add(
        ApiKey(
            account_id=account.id,
            name=name,
            public_id=public_id,
            secret_hash=_sha256(secret),
            scopes=[scope.value for scope in granted],
            created_at=clock.now(),
        )
    )
    session.flush()
    return NewApiKey(public_id=public_id, secret=secret, scopes=granted)


def parse_token_header(value: str) -> tuple[str, str]:
    """`(public_id, secret)` from an Authorization header `Token PUBLIC_ID$SECRET_KEY`.

    The error never repeats the header, which may hold a secret.
    """
    match = _TOKEN_HEADER.fullmatch(value)
    if match is None:
        raise MalformedToken()
    return match[1], match[2]


def authenticate_api_key(
    session: Session, clock: Clock, public_id: str, secret: str, needs: Scope
) -> Account:
    """The key's account, if the secret is right, the key live and allowed `needs`.

    Revocation and scopes are told only to someone who knows the secret. Success records the
    time in `last_used_at` when the recorded one is `KEY_USE_RESOLUTION` old or more, so
    that most reads write nothing.
    """
    key = session.scalar(  # the account with it: every caller goes on to use it
        select(ApiKey).options(joinedload(ApiKey.account)).where(ApiKey.public_id == public_id)
    )
    if key is None or not hmac.compare_digest(key.secret_hash, _sha256(secret)):
        raise InvalidApiKey()
    if key.revoked_at is not None:
        raise KeyRevoked()
    if Scope(needs).value not in key.scopes:
        raise MissingScope(Scope(needs))
    now = clock.now()
    if key.last_used_at is None or now - key.last_used_at >= KEY_USE_RESOLUTION:
        _record_use(session, key, now)
    return key.account


def _record_use(session: Session, key: ApiKey, now: datetime) -> None:
    """Set the key's `last_used_at`, unless the database is busy: in a reading request on
    SQLite another writer may have come first, and a use left unrecorded is harmless (the
    next one records it), where failing the request is not."""
    try:
        with session.begin_nested():
            session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
    except OperationalError as error:
        if not is_busy(error):
            raise


def revoke_api_key(session: Session, clock: Clock, account: Account, public_id: str) -> ApiKey:
    """Revoke one of `account`'s keys for good; revoking it again changes nothing."""
    key = session.scalar(
        select(ApiKey).where(ApiKey.public_id == public_id, ApiKey.account_id == account.id)
    )
    if key is None:
        raise UnknownApiKey()
    if key.revoked_at is None:
        key.revoked_at = clock.now()
        session.flush()
    return key


def list_api_keys(session: Session, account: Account) -> list[ApiKey]:
    """`account`'s keys, revoked ones included, oldest first (they hold hashes, no secrets)."""
    query = (
        select(ApiKey)
        .where(ApiKey.account_id == account.id)
        .order_by(ApiKey.created_at, ApiKey.public_id)
    )
    return list(session.scalars(query))


# --- wallet addresses ------------------------------------------------------------------------

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_ZERO_ADDRESS = "0x" + "0" * 40


def checksum_address(value: str) -> str:
    """`value` as an EIP-55 checksummed address; `InvalidWalletAddress` for anything else: a
    malformed address, a mixed-case one whose checksum is wrong, the zero address."""
    from eth_utils.address import is_checksum_address, to_checksum_address

    text = value.strip() if isinstance(value, str) else ""
    if not _ADDRESS.fullmatch(text) or text.lower() == _ZERO_ADDRESS:
        raise InvalidWalletAddress()
    digits = text[2:]
    if digits != digits.lower() and digits != digits.upper() and not is_checksum_address(text):
        raise InvalidWalletAddress(f"{text} is mixed-case but its EIP-55 checksum is wrong")
    return str(to_checksum_address(text))


def set_wallet_address(session: Session, account: Account, address: str | None) -> Account:
    """Register the EVM address `account` stakes from (None: forget it); one account per
    address."""
    wanted = None if address is None else checksum_address(address)

    def check_free() -> None:
        holder = session.scalar(select(Account.id).where(Account.wallet_address == wanted))
        if holder is not None and holder != account.id:
            raise WalletAddressTaken()

    if wanted is not None:
        check_free()
    try:
        with session.begin_nested():
            account.wallet_address = wanted
            session.flush()
    except IntegrityError:  # registered concurrently since the check above
        check_free()
        raise
    return account


def account_of_wallet(session: Session, address: str) -> Account | None:
    """The account that registered `address` (any case), if any."""
    try:
        wanted = checksum_address(address)
    except InvalidWalletAddress:
        return None
    return session.scalar(select(Account).where(Account.wallet_address == wanted))
