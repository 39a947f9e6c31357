"""A web site over real HTTP for the page tests: tournament 8 with round 1 open, an operator,
a mailbox, and browsers (httpx clients keeping cookies) that sign up (following the mailed
link), log in and post forms."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.ledger.sql import SqlLedger
from crowdquant.storage import LocalStorage

from ..mail.mailbox import Mailbox, links_in

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
TOKEN = re.compile(r'name="token" value="([^"]+)"')
FINISH_PATH = "/signup/finish"
FIELD_ERROR = re.compile(r'class="field-error"[^>]*>([^<]*)<')
PASSWORD = "correct horse battery"


@dataclass
class Site:
    url: str
    clock: ManualClock
    storage: LocalStorage
    sessions: sessionmaker[Session]
    ledger: SqlLedger
    mailbox: Mailbox
    """Where the site's mail arrives."""
    operator: str = "olivia"  # an operator account's username (password PASSWORD)
    browsers: list[httpx.Client] = field(default_factory=list)

    def browser(self) -> Browser:
        client = httpx.Client(base_url=self.url, timeout=30, follow_redirects=True)
        self.browsers.append(client)
        return Browser(client)

    def signed_up(self, username: str) -> Browser:
        """A browser of a new participant, signed in: the sign-up form, then the link that
        the site mails."""
        browser = self.browser()
        email = f"{username}@example.org"
        answer = browser.submit(
            "/signup", {"username": username, "email": email, "password": PASSWORD}
        )
        assert answer.status_code == 200 and "Check your inbox" in answer.text, answer.text
        mail = self.mailbox.receive()
        assert mail.to == email, mail
        (link,) = links_in(mail)
        finished = browser.finish_sign_up(link)
        assert finished.status_code == 200 and finished.url.path == "/dashboard", finished.text
        return browser

    def logged_in(self, username: str) -> Browser:
        browser = self.browser()
        answer = browser.submit("/login", {"username": username, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        return browser


@dataclass
class Browser:
    """A person's browser: cookies kept, forms posted with the page's token."""

    client: httpx.Client

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path)

    def token(self, path: str = "/login") -> str:
        """The form token of a page (the browser's cookie, echoed by every form)."""
        found = CSRF.search(self.client.get(path).text)
        assert found, f"no form token on {path}"
        return found[1]

    def submit(
        self,
        path: str,
        data: dict[str, Any],
        *,
        files: dict[str, Any] | None = None,
        page: str | None = None,
    ) -> httpx.Response:
        """Post a form as the page `page` (default: `path`) would, token included."""
        token = self.token(page or path)
        return self.client.post(path, data={**data, "csrf": token}, files=files)

    def finish_sign_up(self, link: str) -> httpx.Response:
        """Follow a sign-up mail's link and press its button."""
        page = self.client.get(link)
        assert page.status_code == 200, page.text
        found = TOKEN.search(page.text)
        assert found, "no sign-up token on the page"
        return self.submit(FINISH_PATH, {"token": html.unescape(found[1])}, page=link)


def field_errors(page: httpx.Response) -> list[str]:
    """The errors shown next to fields."""
    return FIELD_ERROR.findall(page.text)
