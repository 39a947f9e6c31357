"""A participant's wallet: balances (NMR and USD) and the ledger history, newest first.

The statement comes from `tournament.wallet` (the same lines both APIs show): each line says in
plain words where the amount came from and where it went, and the wallet's balance after.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from crowdquant.money import Currency
from crowdquant.tournament.chain_records import transaction_hashes
from crowdquant.tournament.wallet import WALLET, wallet_balances, wallet_statement
from crowdquant.web.deps import PageSession, ServicesDep
from crowdquant.web.errors import PageError
from crowdquant.web.guards import SignedIn
from crowdquant.web.routing import PageRoute
from crowdquant.web.templating import render

router = APIRouter(route_class=PageRoute)
PAGE_SIZE = 50
MAX_PAGE = 1_000_000


def page_number(text: str) -> int:
    """A page of a listing, from 1; anything else is the 404 page."""
    if not (text.isascii() and text.isdigit() and len(text) <= 7) or not 1 <= int(text) <= MAX_PAGE:
        raise PageError(404, "There is no such page.")
    return int(text)


@router.get("/wallet")
def wallet_page(
    request: Request,
    account: SignedIn,
    session: PageSession,
    services: ServicesDep,
    page: str = "1",
) -> Response:
    number = page_number(page)
    balances = wallet_balances(session, services.ledger, account)
    statement = wallet_statement(
        session, services.ledger, account, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    pages = max(1, -(-statement.total // PAGE_SIZE))
    if number > pages:
        raise PageError(404, "There is no such page.")
    context = {
        "nmr_balance": balances[Currency.NMR],
        "usd_balance": balances[Currency.USD],
        "statement": statement,
        "page": number,
        "pages": pages,
        "wallet": WALLET,
        "transactions": transaction_hashes(session, (line.event_key for line in statement.lines)),
    }
    return render(request, "participant/wallet.html", context)
