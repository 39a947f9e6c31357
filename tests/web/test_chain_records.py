"""Stakes and payouts on chain, on the site: each one's transaction hash (on the round,
wallet and model stake pages) and the round's Merkle root, linked to the block explorer the
operator names (`explorer_tx_url`, which must hold `{hash}`), or shown without links when
none is named."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.db.models import EvmTransaction, Round
from crowdquant.db.session import transaction
from crowdquant.settings import Settings
from crowdquant.tournament.accounts import get_account
from crowdquant.tournament.wallet import wallet_statement
from crowdquant.web.leaderboard import Cell
from crowdquant.web.rounds import transaction_cell
from crowdquant.web.templating import templates

from .conftest import served_site
from .site import Site
from .test_leaderboard import Played, by_name, played, table

EXPLORER = "https://explorer.example/tx/{hash}"
ROOT = "ab" * 32
STAKE_TX, PAYOUT_TX, ROOT_TX = "0x" + "1" * 64, "0x" + "2" * 64, "0x" + "3" * 64
SENT = datetime(2026, 3, 1, tzinfo=UTC)
MODELS = ("alice_a", "alice_b")


def _mined(session: Session, business_key: str, tx_hash: str, call_data: str = "0x") -> None:
    session.add(
        EvmTransaction(
            business_key=business_key,
            chain_id=31337,
            sender="0x" + "0" * 40,
            receiver="0x" + "0" * 40,
            call_data=call_data,
            nonce=int(tx_hash[-1], 16),
            tx_hash=tx_hash,
            raw_transaction="0x",
            status="mined",
            block_number=7,
            created_at=SENT,
            updated_at=SENT,
        )
    )


def _on_chain(site: Site) -> Played:
    """Round 1 resolved on chain (its root), alice's stake pulled, alice_b's loss burned."""
    world = played(site)
    with transaction(site.sessions) as session:
        alice = get_account(session, "alice")
        lines = wallet_statement(session, site.ledger, alice).lines
        [stake_key] = [line.event_key for line in lines if line.kind == "stake"][-1:]
        round_ = session.get_one(Round, world.rounds[1])
        _mined(session, stake_key, STAKE_TX)
        _mined(session, f"burn:payout:{round_.id}:{world.models['alice_b']}", PAYOUT_TX)
        resolve = "0x12345678" + f"{1:064x}" + ROOT + f"{0:064x}" * 2
        _mined(session, "round:1:resolve", ROOT_TX, resolve)
    return world


def _explorer(tx_hash: str) -> str:
    return EXPLORER.replace("{hash}", tx_hash)


def test_the_round_and_wallet_pages_link_each_transaction_to_the_explorer(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path / "home", explorer_tx_url=EXPLORER)
    with served_site(sessions, tmp_path, settings) as site:
        world = _on_chain(site)
        page = site.browser().get("/rounds/8/1").text
        assert f"Merkle root of its claims: <code>0x{ROOT}</code>" in page
        assert f'href="{_explorer(ROOT_TX)}"' in page
        headers, rows = table(page, "Payouts of round 1")
        assert headers[-1] == "On chain"
        paid = by_name(headers, rows)
        assert paid["alice_b"]["On chain"].value == PAYOUT_TX
        assert f'<a href="{_explorer(PAYOUT_TX)}">' in page
        assert paid["alice_a"]["On chain"].text == paid["bob_model"]["On chain"].text == ""
        assert "Merkle root" not in site.browser().get("/rounds/8/2").text  # not on chain

        wallet = html.unescape(site.logged_in("alice").get("/wallet").text)
        assert "<th>On chain</th>" in wallet
        assert f'href="{_explorer(STAKE_TX)}" title="{STAKE_TX}"' in wallet
        assert "On chain" not in site.logged_in("bob").get("/wallet").text  # nothing of his
        alice = site.logged_in("alice")
        stake_pages = [alice.get(f"/models/{world.models[name]}/stake").text for name in MODELS]
        linked = [page for page in stake_pages if f'href="{_explorer(STAKE_TX)}"' in page]
        assert len(linked) == 1 and "<th>On chain</th>" in linked[0]


def test_without_an_explorer_the_hashes_show_unlinked() -> None:
    shown = templates.env.from_string('{% from "macros.html" import tx %}{{ tx(h, None) }}')
    assert shown.render(h=ROOT_TX) == f'<code class="tx" title="{ROOT_TX}">0x33333333…3333</code>'
    assert transaction_cell(PAYOUT_TX, None) == Cell("0x22222222…2222", PAYOUT_TX, None)
    assert transaction_cell(None, EXPLORER) == Cell("")


@pytest.mark.parametrize(
    "pattern",
    [
        "https://explorer.example/tx/",
        "https://explorer.example/tx/{hash}/{hash}",
        "https://explorer.example/tx/{txhash}",
        "javascript:alert({hash})",
        "explorer.example/tx/{hash}",
    ],
)
def test_the_explorer_pattern_is_an_http_url_holding_the_hash_once(pattern: str) -> None:
    with pytest.raises(ValidationError, match="CROWDQUANT_EXPLORER_TX_URL"):
        Settings(explorer_tx_url=pattern)
    assert Settings(explorer_tx_url=EXPLORER).explorer_tx_url == EXPLORER
