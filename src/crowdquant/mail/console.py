"""The local backend: every message is written to the server's log, links included, so an
operator on one machine can follow them (and nothing leaves the machine)."""

from __future__ import annotations

import logging

from crowdquant.mail.interface import Message

log = logging.getLogger("crowdquant.mail")


class ConsoleMailer:
    """Logs each message at WARNING, so the server's default log level shows it."""

    def __init__(self, logger: logging.Logger = log) -> None:
        self.logger = logger

    def send(self, message: Message) -> None:
        self.logger.warning(
            "mail to %s\nSubject: %s\n\n%s", message.to, message.subject, message.body
        )
