"""Mail through an SMTP server (stdlib `smtplib`): plain or STARTTLS, with an optional login.

One connection per message: sign-ups are rare, and a connection kept open would go stale.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from crowdquant.mail.interface import MailError, Message

TIMEOUT_SECONDS = 20.0


class SmtpMailer:
    """Sends from `sender` through `host`:`port`; `starttls` upgrades the connection before
    anything else is said (the certificate is checked against `ssl_context`)."""

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool = True,
        user: str | None = None,
        password: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.starttls = starttls
        self.user = user
        self._password = password
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"SmtpMailer({self.host!r}, {self.port}, user={self.user!r}, password=<hidden>)"

    def send(self, message: Message) -> None:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(localtime=False, usegmt=True)
        mail["Message-ID"] = make_msgid(domain=parseaddr(self.sender)[1].rpartition("@")[2] or None)
        mail.set_content(message.body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as server:
                if self.starttls:
                    server.starttls(context=self.ssl_context)
                if self.user is not None:
                    server.login(self.user, self._password or "")
                server.send_message(mail)
        except (OSError, smtplib.SMTPException) as exc:
            reason = type(exc).__name__
            raise MailError(f"the mail server {self.host}:{self.port} refused: {reason}") from exc
