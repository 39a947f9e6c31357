"""Every answer carries the security headers; the pages need nothing the policy forbids."""

from __future__ import annotations

import re

from crowdquant.server.headers import SECURITY_HEADERS

from .site import Site


def test_pages_static_files_and_api_answers_carry_the_security_headers(site: Site) -> None:
    browser = site.signed_up("alice")
    for path in ("/", "/login", "/dashboard", "/leaderboard", "/static/site.css", "/api/v1/x"):
        answer = browser.get(path)
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers.get(name) == value, (path, name)
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp


def test_the_pages_use_no_inline_script_or_style(site: Site) -> None:
    browser = site.signed_up("alice")
    for path in ("/", "/dashboard", "/leaderboard", "/rounds/8/1", "/settings"):
        page = browser.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)", page), path
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=", page), path
