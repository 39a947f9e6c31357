"""What every mail backend offers: send one plain-text message to one address."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Message:
    """A plain-text mail to one recipient."""

    to: str
    subject: str
    body: str


class MailError(RuntimeError):
    """A message could not be handed to the mail server; the message says why (no secrets)."""


class MailSettingsError(ValueError):
    """The settings do not describe a usable mail backend."""


class Mailer(Protocol):
    def send(self, message: Message) -> None:
        """Deliver `message` or raise `MailError`."""
