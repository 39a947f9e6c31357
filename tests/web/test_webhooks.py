"""A model's webhook through the pages: set (a URL into the server's networks refused next
to the field, changing nothing), its signing secret shown and renewed, a delivery sent by
hand listed, removed; someone else's model is the 404 page."""

from __future__ import annotations

import html

from sqlalchemy import select

from crowdquant.db.models import ModelWebhook, WebhookDelivery

from .site import Site
from .test_dashboard import new_model
from .test_models import errors


def _stored(site: Site) -> list[tuple[str, str]]:
    with site.sessions() as session:
        return [(w.url, w.secret) for w in session.scalars(select(ModelWebhook))]


def test_a_webhook_is_set_shown_triggered_and_removed_on_the_models_page(site: Site) -> None:
    alice, bob = site.signed_up("alice"), site.signed_up("bob")
    model = new_model(site, alice, "alice_model")
    page = f"/models/{model}/webhook"
    assert f'href="{page}"' in alice.get("/models").text
    empty = alice.get(page)
    assert empty.status_code == 200 and "No delivery yet" in empty.text

    for url, message in [
        ("http://10.0.0.1/hook", "10.0.0.1 is in the denied network 10.0.0.0/8"),
        ("http://127.0.0.1:8000/", "127.0.0.1 is in the denied network 127.0.0.0/8"),
        ("http://169.254.169.254/", "169.254.169.254 is in the denied network"),
        ("ftp://93.184.216.34/", "must start with http:// or https://"),
        ("  ", "enter the webhook's URL"),
    ]:
        refused = alice.submit(page, {"url": url})
        assert refused.status_code == 422
        [shown] = errors(refused)
        assert message in shown
    assert _stored(site) == []

    saved = alice.submit(page, {"url": "http://93.184.216.34/hook"})
    assert saved.status_code == 200 and "The webhook was saved" in saved.text
    [(url, secret)] = _stored(site)
    assert url == "http://93.184.216.34/hook" and secret in html.unescape(saved.text)

    renewed = alice.submit(f"{page}/secret", {}, page=page)
    [(_, new_secret)] = _stored(site)
    assert new_secret != secret and new_secret in html.unescape(renewed.text)

    sent = alice.submit(f"{page}/trigger", {}, page=page)
    assert "A delivery was queued" in sent.text
    with site.sessions() as session:
        [delivery] = session.scalars(select(WebhookDelivery)).all()
    assert delivery.trigger_id in sent.text and "by hand" in sent.text

    for path in (page, f"{page}/clear"):
        other = bob.get(path) if path == page else bob.submit(path, {}, page="/models")
        assert other.status_code == 404
    assert len(_stored(site)) == 1

    cleared = alice.submit(f"{page}/clear", {}, page=page)
    assert "The webhook was removed" in cleared.text
    assert _stored(site) == []
