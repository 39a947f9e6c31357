"""Forms: the token every form carries, and errors shown next to their fields.

Every POST form carries the browser's form token (`templating.csrf_token`, a cookie
echoed in a hidden `csrf` field); `checked_form` refuses a form without it, so another site
cannot post a form on a signed-in participant's behalf. A refused form is rendered again
with `FormErrors`: field name → the sentence shown next to it.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Form, Request

from crowdquant.web.errors import PageError
from crowdquant.web.templating import CSRF_COOKIE

Text = Annotated[str, Form()]
"""A form field, as typed (empty when missing)."""

FormErrors = dict[str, str]
"""Field name → what is wrong with it; the key `form` for the form as a whole."""


async def checked_form(request: Request) -> None:
    """A POST dependency: the form's `csrf` field matches the browser's cookie."""
    form = await request.form()
    sent = form.get("csrf")
    kept = request.cookies.get(CSRF_COOKIE)
    if not isinstance(sent, str) or not kept or not _same(sent, kept):
        raise PageError(403, "This form has expired: reload the page and try again.")


def _same(sent: str, kept: str) -> bool:
    """Compared in constant time, as bytes: any text may be sent, not only ASCII."""
    return hmac.compare_digest(
        sent.encode("utf-8", "surrogatepass"), kept.encode("utf-8", "surrogatepass")
    )
