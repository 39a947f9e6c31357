"""The access log hides what authorises a request: URL signatures and sign-up tokens."""

from __future__ import annotations

from crowdquant.server.access_log import HIDDEN, hide_signatures


def test_sign_up_tokens_are_hidden_like_signatures() -> None:
    line = '"GET /signup/finish?token=eyJ.abc&x=1 HTTP/1.1" 200'
    assert hide_signatures(line) == f'"GET /signup/finish?token={HIDDEN}&x=1 HTTP/1.1" 200'
    assert hide_signatures("/f?notoken=1&tokens=2") == "/f?notoken=1&tokens=2"
