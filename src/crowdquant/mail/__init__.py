"""Outgoing mail behind one small interface; the backend is chosen by settings.

A backend is a module of its own plus one line in `BACKENDS`: the name the settings use
(`Settings.mail_backend`), mapped to a function that opens it. ``console`` (the default in
local mode) logs each message with its links; ``smtp`` (the default in any other mode)
sends through an SMTP server. `mailer_from_settings` checks the chosen backend's settings
and raises `MailSettingsError`, so a server refuses to start on a half-done setup.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from crowdquant.mail.console import ConsoleMailer
from crowdquant.mail.interface import Mailer, MailError, MailSettingsError, Message
from crowdquant.settings import Settings

__all__ = [
    "BACKENDS",
    "ConsoleMailer",
    "MailError",
    "MailSettingsError",
    "Mailer",
    "Message",
    "mail_backend_of",
    "mailer_from_settings",
]

MailerFactory = Callable[[Settings], Mailer]


def _console(settings: Settings) -> Mailer:
    del settings  # the log needs no settings
    return ConsoleMailer()


def _smtp(settings: Settings) -> Mailer:
    from crowdquant.mail.smtp import SmtpMailer

    missing = [
        name
        for name, value in (
            ("CROWDQUANT_SMTP_HOST", settings.smtp_host),
            ("CROWDQUANT_MAIL_FROM", settings.mail_from),
        )
        if not value
    ]
    if missing:
        raise MailSettingsError(f"the smtp mail backend needs {' and '.join(missing)}")
    if settings.smtp_host is None or settings.mail_from is None:  # for type checkers
        raise MailSettingsError("the smtp mail backend needs a host and a sender")
    if settings.mode != "local" and settings.smtp_user is not None and not settings.smtp_starttls:
        raise MailSettingsError(
            "outside local mode the smtp backend sends a password only over STARTTLS: "
            "set CROWDQUANT_SMTP_STARTTLS=true"
        )
    password = settings.smtp_password
    return SmtpMailer(
        settings.smtp_host,
        settings.smtp_port,
        settings.mail_from,
        starttls=settings.smtp_starttls,
        user=settings.smtp_user,
        password=None if password is None else password.get_secret_value(),
    )


BACKENDS: Mapping[str, MailerFactory] = {"console": _console, "smtp": _smtp}


def mail_backend_of(settings: Settings) -> str:
    """The backend's name: the setting, else ``console`` in local mode and ``smtp`` outside."""
    if settings.mail_backend is not None:
        return settings.mail_backend
    return "console" if settings.mode == "local" else "smtp"


def mailer_from_settings(settings: Settings) -> Mailer:
    """The mail backend `settings` choose; `MailSettingsError` if its settings are incomplete."""
    return BACKENDS[mail_backend_of(settings)](settings)
