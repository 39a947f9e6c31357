"""The web site: pages rendered on the server over the same services as the API.

One module per domain, each with its router and its templates folder:

- `home`: the front page, a tournament at a glance (the open round and its countdown, the
  last results, the leaderboard's top, the meta model's CORR by round);
- `account`: sign up, log in, log out;
- `dashboard`, `models`, `model_uploads`, `webhooks`, `wallet`, `settings`: a participant's
  own pages (the round and its countdown, downloads, uploads; models and their stakes; a
  model's uploaded ``predict`` and its runs; a model's webhook and its deliveries; balances
  and the ledger history; API keys and password);
- `leaderboard`, `profiles`, `rounds`: public pages (leaderboards, a model's profile with
  its charts, rounds and past tournaments with their results);
- `operator`, `fund`: the operator's pages (tournaments, rounds, the meta model, the books;
  the fund's live equity and its backtest reports).

Access rules live in `guards`, one transaction per request in `routing.PageRoute`, forms'
tokens and errors in `forms`, rendering and its filters in `templating`. Every asset is
served by the app itself from `static/` (no CDN): a stylesheet and a small script
(countdowns, sortable tables); charts are SVG drawn on the server.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends

from crowdquant.web import (
    account,
    dashboard,
    fund,
    home,
    leaderboard,
    model_uploads,
    models,
    operator,
    profiles,
    rounds,
    settings,
    wallet,
    webhooks,
)
from crowdquant.web.guards import visitor
from crowdquant.web.routing import PageRoute

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PATH = "/static"

router = APIRouter(route_class=PageRoute, dependencies=[Depends(visitor)], include_in_schema=False)


for module in (
    home,
    account,
    dashboard,
    models,
    model_uploads,
    wallet,
    settings,
    leaderboard,
    profiles,
    rounds,
    operator,
    fund,
    webhooks,
):
    router.include_router(module.router)
