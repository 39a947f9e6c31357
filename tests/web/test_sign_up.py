"""Signing up takes the email's inbox: the form answers the same for a taken and a free
email, the mail differs, and the account is made only when the mailed link is followed.
Mail goes through a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.db.models import Account
from crowdquant.db.session import transaction
from crowdquant.mail import MailError, Message
from crowdquant.settings import Settings

from ..mail.mailbox import Mailbox, links_in, smtp_server
from .conftest import served_site
from .site import FINISH_PATH, PASSWORD, Browser, Site, field_errors


@pytest.fixture
def mailed_site(sessions: sessionmaker[Session], tmp_path: Path) -> Iterator[Site]:
    """The site with the smtp mail backend, chosen by settings, sending to a real server."""
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        settings = Settings(
            home=tmp_path / "home",
            mail_backend="smtp",
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_starttls=False,
            mail_from="crowdquant <noreply@crowd.example>",
        )
        with served_site(sessions, tmp_path, settings, mailbox=mailbox, mailer=None) as site:
            yield site


def accounts(site: Site) -> list[tuple[str, str]]:
    with transaction(site.sessions) as session:
        rows = session.execute(select(Account.username, Account.email).order_by(Account.username))
        return [(name, email) for name, email in rows]


def sign_up_form(site: Site, username: str, email: str) -> httpx.Response:
    return site.browser().submit(
        "/signup", {"username": username, "email": email, "password": PASSWORD}
    )


def test_the_mailed_link_creates_the_account_and_signs_in(mailed_site: Site) -> None:
    site = mailed_site
    browser = site.browser()
    answer = browser.submit(
        "/signup", {"username": "Alice", "email": "Alice@Example.org", "password": PASSWORD}
    )
    assert answer.status_code == 200 and "Check your inbox to finish signing up" in answer.text
    mail = site.mailbox.receive()
    assert mail.to == "alice@example.org" and mail.subject == "Finish signing up to crowdquant"
    assert site.mailbox.raw[0]["From"] == "crowdquant <noreply@crowd.example>"
    (link,) = links_in(mail)
    assert link.startswith(f"{site.url}{FINISH_PATH}?token=")
    assert accounts(site) == [("olivia", "olivia@example.org")]  # nothing until followed

    shown = browser.get(link)
    assert shown.status_code == 200 and "alice" in shown.text and "Log out" not in shown.text
    assert accounts(site) == [("olivia", "olivia@example.org")]  # opening it creates nothing
    finished = browser.finish_sign_up(link)
    assert finished.url.path == "/dashboard" and "Log out" in finished.text
    assert ("alice", "alice@example.org") in accounts(site)
    assert site.logged_in("alice").get("/dashboard").url.path == "/dashboard"

    again = site.browser().finish_sign_up(link)  # a link works once
    assert again.status_code == 409 and "has an account already" in again.text
    assert len(accounts(site)) == 2


def test_a_taken_email_gets_the_same_answer_a_different_mail_and_nothing_made(
    mailed_site: Site,
) -> None:
    site = mailed_site
    taken = sign_up_form(site, "mallory", "Olivia@Example.org")
    free = sign_up_form(site, "bob", "bob@example.org")
    assert (taken.status_code, taken.headers["content-type"], taken.text) == (
        free.status_code,
        free.headers["content-type"],
        free.text,
    )
    assert taken.status_code == 200 and "Check your inbox" in taken.text

    notice, invitation = site.mailbox.receive(), site.mailbox.receive()
    assert notice.to == "olivia@example.org" and "tried to sign up" in notice.subject
    assert links_in(notice) == [f"{site.url}/login"]
    assert invitation.to == "bob@example.org" and FINISH_PATH in links_in(invitation)[0]
    assert accounts(site) == [("olivia", "olivia@example.org")]
    with transaction(site.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Account)) == 1


def test_a_taken_username_is_said_at_once_and_mails_nothing(site: Site) -> None:
    page = sign_up_form(site, "Olivia", "someone@example.org")
    assert page.status_code == 422 and field_errors(page) == ["that username is taken"]
    free = sign_up_form(site, "dora", "dora@example.org")
    assert site.mailbox.receive().to == "dora@example.org"  # the only mail sent
    assert free.status_code == 200 and site.mailbox.empty()


def _tampered(link: str, mapping: dict[str, str]) -> str:
    parts = urlsplit(link)
    token = parse_qs(parts.query)["token"][0]
    body, signature = token.split(".")
    for old, new in mapping.items():
        body = body.replace(old, new, 1)
    return (
        f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode({'token': f'{body}.{signature}'})}"
    )


def test_a_tampered_or_expired_link_is_refused_and_creates_nothing(site: Site) -> None:
    sign_up_form(site, "erin", "erin@example.org")
    (link,) = links_in(site.mailbox.receive())
    browser = site.browser()
    token = parse_qs(urlsplit(link).query)["token"][0]
    for forged in (_tampered(link, {"A": "B"}), _tampered(link, {"a": "b"}), f"{link}x"):
        refused = browser.get(forged)
        assert refused.status_code == 400 and "This sign-up link is not valid" in refused.text
    posted = browser.submit(FINISH_PATH, {"token": token[:-2] + "AA"}, page="/signup")
    assert posted.status_code == 400 and "not valid" in posted.text
    assert browser.get(FINISH_PATH).status_code == 400

    site.clock.advance(timedelta(hours=24))
    expired = browser.get(link)
    assert expired.status_code == 400 and "This sign-up link has expired" in expired.text
    posted = browser.submit(FINISH_PATH, {"token": token}, page="/signup")
    assert posted.status_code == 400 and "expired" in posted.text
    assert accounts(site) == [("olivia", "olivia@example.org")]


def test_a_username_taken_before_the_link_is_followed_is_refused(site: Site) -> None:
    sign_up_form(site, "frank", "frank@example.org")
    sign_up_form(site, "frank", "other@example.org")  # free too: neither link was followed
    first, second = (links_in(site.mailbox.receive())[0] for _ in range(2))
    assert site.browser().finish_sign_up(first).url.path == "/dashboard"
    late = site.browser().finish_sign_up(second)
    assert late.status_code == 409 and "took that username meanwhile" in late.text
    assert accounts(site) == [("frank", "frank@example.org"), ("olivia", "olivia@example.org")]


def test_a_form_token_in_any_characters_is_refused_not_failed(site: Site) -> None:
    browser = site.browser()
    browser.get("/signup")
    refused = browser.client.post(
        "/signup", data={"csrf": "é", "username": "x", "email": "x@example.org", "password": "p"}
    )
    assert refused.status_code == 403 and "expired" in refused.text


def _browser_from(site: Site, address: str) -> Browser:
    """A browser whose requests come from `address` (any of 127.0.0.0/8 on loopback)."""
    transport = httpx.HTTPTransport(local_address=address)
    client = httpx.Client(base_url=site.url, timeout=30, follow_redirects=True, transport=transport)
    site.browsers.append(client)
    return Browser(client)


def test_sign_ups_per_email_are_rate_limited_whatever_the_address(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path / "home", rate_limit_sign_up="2/hour")
    with served_site(sessions, tmp_path, settings) as site:
        form = {"username": "victim", "email": "victim@example.org", "password": PASSWORD}
        for address in ("127.0.0.2", "127.0.0.3"):
            assert _browser_from(site, address).submit("/signup", form).status_code == 200
        refused = _browser_from(site, "127.0.0.4").submit("/signup", form)
        assert refused.status_code == 429 and "too many sign-up requests" in refused.text
        other = {**form, "email": "someone@example.org"}
        assert _browser_from(site, "127.0.0.4").submit("/signup", other).status_code == 200
        assert [site.mailbox.receive().to for _ in range(3)] == [
            "victim@example.org",
            "victim@example.org",
            "someone@example.org",
        ]


class _Down:
    """A mail server that cannot be reached; says when it was asked."""

    def __init__(self) -> None:
        self.asked = threading.Event()

    def send(self, message: Message) -> None:
        self.asked.set()
        raise MailError("the mail server 127.0.0.1:25 refused: ConnectionRefusedError")


def test_a_mail_server_that_is_down_changes_neither_the_answer_nor_the_accounts(
    sessions: sessionmaker[Session], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    down = _Down()
    with (
        caplog.at_level(logging.ERROR, logger="crowdquant.web.account"),
        served_site(sessions, tmp_path, mailer=down) as site,
    ):
        answer = sign_up_form(site, "gina", "gina@example.org")
        assert answer.status_code == 200 and "Check your inbox" in answer.text
        assert down.asked.wait(15)
        assert accounts(site) == [("olivia", "olivia@example.org")]
    assert "a sign-up mail to gina@example.org was not sent" in caplog.text
