"""Where test mail arrives: a `Mailbox` (a `Mailer` the app can send to directly) and a real
SMTP server (aiosmtpd) on loopback that delivers into one."""

from __future__ import annotations

import queue
import re
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from crowdquant.mail import Message

LINK = re.compile(r"https?://\S+")
WAIT_SECONDS = 15.0


class Mailbox:
    """Messages in the order they arrived; the app may send from any thread."""

    def __init__(self) -> None:
        self._arrived: queue.Queue[Message] = queue.Queue()
        self.raw: list[EmailMessage] = []
        """What an SMTP server delivered, headers included."""

    def send(self, message: Message) -> None:
        self._arrived.put(message)

    def receive(self) -> Message:
        """The next message, waiting for it to arrive (mail is sent after the answer)."""
        try:
            return self._arrived.get(timeout=WAIT_SECONDS)
        except queue.Empty:
            raise AssertionError(f"no mail arrived within {WAIT_SECONDS} s") from None

    def empty(self) -> bool:
        return self._arrived.empty()


def links_in(message: Message) -> list[str]:
    return LINK.findall(message.body)


class _Delivery:
    """aiosmtpd's handler: each message received goes into the mailbox."""

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:  # noqa: N802
        content = envelope.original_content or b""
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.mailbox.raw.append(parsed)
        body = parsed.get_body(preferencelist=("plain",))
        assert body is not None
        text = body.get_content().replace("\r\n", "\n")
        for recipient in envelope.rcpt_tos:
            self.mailbox.send(Message(recipient, str(parsed["Subject"]), text))
        return "250 OK"


@dataclass(frozen=True)
class Login:
    user: str
    password: str

    def __call__(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        good = isinstance(data, LoginPassword) and (data.login, data.password) == (
            self.user.encode(),
            self.password.encode(),
        )
        return AuthResult(success=good, handled=False)  # a refusal is answered 535


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def smtp_server(
    mailbox: Mailbox, *, tls: ssl.SSLContext | None = None, login: Login | None = None
) -> Iterator[int]:
    """A real SMTP server on 127.0.0.1 delivering into `mailbox`; yields its port. With
    `tls` it offers STARTTLS and requires it; with `login` it requires that login."""
    options: dict[str, Any] = {}
    if tls is not None:
        options.update(tls_context=tls, require_starttls=True)
    if login is not None:
        options.update(
            authenticator=login,
            auth_required=True,
            auth_require_tls=tls is not None,
        )
    port = free_port()
    controller = Controller(_Delivery(mailbox), hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()
