"""GET /account and /account/api-keys, and how every authenticated route refuses a bad key."""

from __future__ import annotations

import httpx

from .helpers import API, RestWorld, refused


def test_account(world: RestWorld) -> None:
    with world.client("alice") as api:
        account = api.get("/account").json()
    assert set(account) == {"id", "username", "email", "created_at", "wallet_address"}
    assert account["wallet_address"] is None
    assert account["username"] == "alice"
    assert account["email"] == "alice@example.org"
    assert account["created_at"].endswith("Z")


WALLET = "0x52908400098527886E0F7030069857D2E4169EE7"  # EIP-55's own example


def test_a_wallet_address_is_registered_checksummed(world: RestWorld) -> None:
    with world.client("bob_staker") as api:
        answer = api.put("/account/wallet-address", json={"address": WALLET.lower()})
        assert answer.status_code == 200, answer.text
        assert answer.json()["wallet_address"] == WALLET
        for bad, needle in (
            ("0x52908400098527886e0F7030069857D2E4169EE7", "checksum"),
            ("0x" + "0" * 40, "zero address"),
            ("0x1234", "40 hex digits"),
            ("52908400098527886E0F7030069857D2E4169EE7", "40 hex digits"),
        ):
            detail = refused(
                api.put("/account/wallet-address", json={"address": bad}),
                422,
                "invalid_wallet_address",
            )
            assert needle in detail["message"]
    with world.client("bob") as api:  # read and upload: no stake scope
        refused(api.put("/account/wallet-address", json={"address": None}), 403, "missing_scope")
        assert api.get("/account").json()["wallet_address"] == WALLET
    with world.client("bob_staker") as api:
        answer = api.put("/account/wallet-address", json={"address": None})
        assert answer.json()["wallet_address"] is None


def test_api_keys_without_secrets(world: RestWorld) -> None:
    with world.client("reader") as api:
        answer = api.get("/account/api-keys")
    keys = answer.json()
    # oldest first; these were made at the same instant, so in public id order
    assert [key["public_id"] for key in keys] == sorted(key["public_id"] for key in keys)
    assert sorted(key["name"] for key in keys) == ["alice", "reader", "revoked", "uploader"]
    for key in keys:
        assert set(key) == {
            "name",
            "public_id",
            "scopes",
            "created_at",
            "last_used_at",
            "revoked_at",
        }
    by_name = {key["name"]: key for key in keys}
    assert by_name["alice"]["scopes"] == ["read", "upload"]
    assert by_name["uploader"]["scopes"] == ["upload"]
    assert by_name["revoked"]["revoked_at"] is not None
    assert by_name["alice"]["revoked_at"] is None
    assert by_name["reader"]["last_used_at"] is not None  # this very request
    for name in ("alice", "reader", "uploader", "revoked"):
        public_id, secret = world.tokens[name].split("$")
        assert by_name[name]["public_id"] == public_id
        assert secret not in answer.text


def test_missing_or_bad_keys_are_401(world: RestWorld) -> None:
    public_id = world.tokens["alice"].split("$")[0]
    for headers, code in (
        ({}, "malformed_token"),
        ({"Authorization": ""}, "malformed_token"),
        ({"Authorization": "Bearer abc"}, "malformed_token"),
        ({"Authorization": f"Token {public_id}"}, "malformed_token"),
        ({"Authorization": f"Token {public_id}$WRONG"}, "invalid_api_key"),
        ({"Authorization": "Token NOBODY$WRONG"}, "invalid_api_key"),
        ({"Authorization": f"Token {world.tokens['revoked']}"}, "key_revoked"),
    ):
        answer = httpx.get(f"{world.url}{API}/account", headers=headers)
        detail = refused(answer, 401, code)
        assert answer.headers["www-authenticate"] == "Token"
        assert "WRONG" not in detail["message"]


def test_a_key_without_the_scope_is_403(world: RestWorld) -> None:
    with world.client("uploader") as api:
        detail = refused(api.get("/account"), 403, "missing_scope")
        refused(api.get("/account/api-keys"), 403, "missing_scope")
    assert "read" in detail["message"]
