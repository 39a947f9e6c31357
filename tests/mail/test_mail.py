"""The mail backends: chosen by settings, refused when half set up, and the SMTP one
against a real SMTP server (aiosmtpd) with STARTTLS and a login."""

from __future__ import annotations

import logging
import ssl
import typing
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trustme
from pydantic import ValidationError
from sqlalchemy.orm import sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.mail import (
    BACKENDS,
    ConsoleMailer,
    MailError,
    MailSettingsError,
    Message,
    mail_backend_of,
    mailer_from_settings,
)
from crowdquant.mail.smtp import SmtpMailer
from crowdquant.server.app import create_app
from crowdquant.settings import Settings
from crowdquant.storage import LocalStorage

from .mailbox import Login, Mailbox, free_port, smtp_server

SECRET = "s" * 40
NOTE = Message("alice@example.org", "Finish signing up", "follow https://crowd.example/x?t=1\n")


def test_every_backend_the_settings_allow_is_registered() -> None:
    allowed = typing.get_args(typing.get_args(Settings.model_fields["mail_backend"].annotation)[0])
    assert set(allowed) == set(BACKENDS)


def test_local_mode_logs_mail_and_other_modes_send_it() -> None:
    assert mail_backend_of(Settings()) == "console"
    assert isinstance(mailer_from_settings(Settings()), ConsoleMailer)
    production = Settings(mode="production", secret_key=SECRET)
    assert mail_backend_of(production) == "smtp"
    with pytest.raises(MailSettingsError, match="CROWDQUANT_SMTP_HOST and CROWDQUANT_MAIL_FROM"):
        mailer_from_settings(production)
    ready = Settings(
        mode="production", secret_key=SECRET, smtp_host="mail.example", mail_from="n@x.example"
    )
    assert isinstance(mailer_from_settings(ready), SmtpMailer)


def test_the_app_is_not_built_on_incomplete_mail_settings(tmp_path: Path) -> None:
    production = Settings(mode="production", home=tmp_path, secret_key=SECRET)
    with pytest.raises(MailSettingsError, match="CROWDQUANT_SMTP_HOST"):
        create_app(
            production,
            clock=ManualClock(datetime(2026, 1, 3, tzinfo=UTC)),
            sessions=sessionmaker(),
            storage=LocalStorage(tmp_path / "files"),
        )


def test_half_done_mail_settings_are_refused() -> None:
    with pytest.raises(ValidationError, match="CROWDQUANT_MAIL_FROM"):
        Settings(mail_from="not an address")
    with pytest.raises(ValidationError, match="CROWDQUANT_MAIL_FROM"):
        Settings(mail_from="a@b.example\r\nBcc: everyone@example.org")
    with pytest.raises(ValidationError, match="CROWDQUANT_SMTP_PASSWORD"):
        Settings(smtp_user="mailer")
    with pytest.raises(ValidationError, match="smtp_port"):
        Settings(smtp_port=70000)
    plain_login = Settings(
        mode="production",
        secret_key=SECRET,
        smtp_host="mail.example",
        mail_from="crowdquant <noreply@crowd.example>",
        smtp_user="mailer",
        smtp_password="pw",
        smtp_starttls=False,
    )
    with pytest.raises(MailSettingsError, match="STARTTLS"):
        mailer_from_settings(plain_login)


def test_the_console_backend_logs_the_whole_message(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="crowdquant.mail"):
        ConsoleMailer().send(NOTE)
    assert "alice@example.org" in caplog.text
    assert "https://crowd.example/x?t=1" in caplog.text


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(authority: trustme.CA) -> Iterator[tuple[int, Mailbox]]:
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_side)
    mailbox = Mailbox()
    with smtp_server(mailbox, tls=server_side, login=Login("mailer", "pw")) as port:
        yield port, mailbox


def _client(authority: trustme.CA, port: int, password: str) -> SmtpMailer:
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)
    return SmtpMailer(
        "127.0.0.1",
        port,
        "crowdquant <noreply@crowd.example>",
        user="mailer",
        password=password,
        ssl_context=trusting,
    )


def test_smtp_sends_over_starttls_with_a_login(
    authority: trustme.CA, tls_server: tuple[int, Mailbox]
) -> None:
    port, mailbox = tls_server
    _client(authority, port, "pw").send(NOTE)
    assert mailbox.receive() == NOTE
    (raw,) = mailbox.raw
    assert raw["From"] == "crowdquant <noreply@crowd.example>" and raw["To"] == NOTE.to
    assert raw["Message-ID"].endswith("@crowd.example>") and raw["Date"]


def test_smtp_failures_are_mail_errors_without_the_password(
    authority: trustme.CA, tls_server: tuple[int, Mailbox]
) -> None:
    port, mailbox = tls_server
    with pytest.raises(MailError, match="SMTPAuthenticationError") as refused:
        _client(authority, port, "wrong password").send(NOTE)
    assert "wrong password" not in str(refused.value)
    untrusting = SmtpMailer("127.0.0.1", port, "noreply@crowd.example")  # the system's CAs
    with pytest.raises(MailError, match="SSL"):
        untrusting.send(NOTE)
    with pytest.raises(MailError, match="ConnectionRefusedError"):
        SmtpMailer("127.0.0.1", free_port(), "noreply@crowd.example", starttls=False).send(NOTE)
    assert mailbox.empty()
    assert "pw" not in repr(_client(authority, port, "pw"))
