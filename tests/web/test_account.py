"""Signing up, in and out through the pages; forms refuse bad input next to the field."""

from __future__ import annotations

from .site import PASSWORD, Site, field_errors


def test_sign_up_signs_in_and_log_out_signs_out(site: Site) -> None:
    browser = site.signed_up("alice")
    assert "Log out" in browser.get("/leaderboard").text
    token = browser.token("/leaderboard")
    out = browser.client.post("/logout", data={"csrf": token})
    assert out.status_code == 200 and "Log in" in out.text
    again = browser.get("/dashboard")  # a participant's page sends a visitor to sign in
    assert again.url.path == "/login" and again.url.params["next"] == "/dashboard"


def test_a_bad_sign_up_shows_the_error_next_to_the_field_and_creates_nothing(
    site: Site,
) -> None:
    browser = site.browser()
    page = browser.submit(
        "/signup", {"username": "x", "email": "x@example.org", "password": PASSWORD}
    )
    assert page.status_code == 422
    assert field_errors(page) == [
        "a username is 3 to 32 characters, each a letter a-z, a digit or an underscore"
    ]
    assert 'value="x@example.org"' in page.text  # what was typed is kept
    refused = browser.submit("/login", {"username": "x", "password": PASSWORD})
    assert refused.status_code == 401


def test_log_in_goes_back_to_the_page_asked_for_and_never_to_another_site(site: Site) -> None:
    site.signed_up("bob")
    browser = site.browser()
    asked = browser.get("/settings")
    assert asked.url.path == "/login"
    token = browser.token("/login")
    landed = browser.client.post(
        "/login",
        data={"csrf": token, "username": "bob", "password": PASSWORD, "next": "/settings"},
    )
    assert landed.url.path == "/settings"
    other = site.browser()
    token = other.token("/login")
    away = other.client.post(
        "/login",
        data={"csrf": token, "username": "bob", "password": PASSWORD, "next": "//evil.example/"},
    )
    assert away.url.path == "/dashboard"


def test_a_form_without_its_token_is_refused(site: Site) -> None:
    browser = site.browser()
    browser.get("/login")
    forged = browser.client.post("/login", data={"username": "olivia", "password": PASSWORD})
    assert forged.status_code == 403 and "expired" in forged.text
    assert "Log out" not in forged.text


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(site: Site) -> None:
    browser = site.browser()
    page = browser.submit("/login", {"username": "olivia", "password": "not the password"})
    assert page.status_code == 401 and "Log out" not in page.text


def test_static_files_are_served_by_the_app(site: Site) -> None:
    browser = site.browser()
    assert browser.get("/static/site.css").status_code == 200
    script = browser.get("/static/site.js")
    assert script.status_code == 200 and "REMAIN" in script.text


def test_a_malformed_address_is_a_missing_page_not_a_failure(site: Site) -> None:
    browser = site.logged_in("olivia")
    page = browser.get("/operator/tournaments/abc")
    assert page.status_code == 404 and "no such page" in page.text
