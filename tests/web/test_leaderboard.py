"""The public leaderboard over real rounds, on both backends: today's columns with their raw
numbers for sorting, the accounts' board, the 2017 columns and marks, the tournament
selector, and no hidden metric anywhere.

`played` / `played_2017` (also used by the profile and round page tests) drive rounds
through the real services: models submit, stakes are frozen at close, daily scores are
stored (with each day's targets recorded, so resolution reads the same final day), and the
rounds resolve through `resolution.resolve_payouts`.
"""

from __future__ import annotations

import html
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from crowdquant.db.models import (
    Account,
    Cadence,
    Model,
    Round,
    RoundPayout,
    RoundScore,
    RoundTargets,
    Rules,
    StakeChangeKind,
)
from crowdquant.db.session import transaction
from crowdquant.money import NMR_UNIT, Currency, format_amount
from crowdquant.scoring import SCORING_VERSION
from crowdquant.tournament.accounts import sign_up
from crowdquant.tournament.funding import fund_prize_pool
from crowdquant.tournament.lifecycle import RoundLifecycle
from crowdquant.tournament.models import create_model
from crowdquant.tournament.rounds import FeedPublisher, current_round, open_round
from crowdquant.tournament.staking import change_stake, grant_nmr, stake_on_round
from crowdquant.tournament.submissions import live_ids_of_round, submit_predictions
from crowdquant.tournament.tournaments import create_tournament, get_tournament

from ..tournament.live_market import market_feed
from .conftest import CHEAP
from .site import PASSWORD, Site

NMR = NMR_UNIT
HIDDEN = 0.31415926
"""The hidden metric's value: neither `test_logloss` nor this number may reach a page."""
DAY = timedelta(days=1)

# round → model → metric → final value (the last day's; day-0 figures stay day 0)
CLASSIC_SCORES: dict[int, dict[str, dict[str, float]]] = {
    1: {
        "alice_a": {"corr": 0.04, "mmc": 0.01},
        "alice_b": {"corr": -0.02, "mmc": -0.005},
        "bob_model": {"corr": 0.01, "mmc": 0.002},
    },
    2: {
        "alice_a": {"corr": 0.03, "mmc": 0.004},
        "bob_model": {"corr": -0.01, "mmc": -0.003},
    },
    3: {"alice_a": {"corr": 0.02, "mmc": 0.001}, "bob_model": {"corr": 0.005, "mmc": 0.0}},
}
STAKES = {"alice_a": 100, "alice_b": 50, "bob_model": 200}
OWNERS = {"alice_a": "alice", "alice_b": "alice", "bob_model": "bob"}
SCORED_DAYS = 3


@dataclass
class Played:
    """What the site holds after the rounds were played."""

    tournament: int
    models: dict[str, uuid.UUID]
    rounds: dict[int, uuid.UUID] = field(default_factory=dict)

    def payouts(self, site: Site) -> dict[tuple[int, str], RoundPayout]:
        """(round, model) → its payout row, as resolution recorded it."""
        numbers = {round_id: number for number, round_id in self.rounds.items()}
        names = {model_id: name for name, model_id in self.models.items()}
        with transaction(site.sessions) as session:
            rows = list(session.scalars(select(RoundPayout)))
            session.expunge_all()
        return {
            (numbers[row.round_id], names[row.model_id]): row
            for row in rows
            if row.round_id in numbers
        }


def upload(site: Site, session: Session, round_: Round, account: Account, model: uuid.UUID) -> None:
    ids = live_ids_of_round(site.storage, round_)
    rng = np.random.default_rng(len(ids) + round_.number)
    values = pd.Series(rng.uniform(0.1, 0.9, len(ids)).round(6), index=ids, name="prediction")
    data = values.rename_axis("id").reset_index().to_csv(index=False).encode()
    submission = submit_predictions(
        session, site.clock, site.storage, account, model, round_, "p.csv", data, live_ids=ids
    )
    assert submission.status.value == "valid", submission.status


def record_scores(
    site: Site,
    round_id: uuid.UUID,
    finals: dict[str, dict[str, float]],
    models: dict[str, uuid.UUID],
    days: int,
    *,
    day_zero: dict[str, dict[str, float]] | None = None,
) -> None:
    """Store each model's daily scores (growing to `finals` on day `days`), each day's
    targets as recorded, and a hidden `test_logloss` on every day."""
    now = site.clock.now()
    with transaction(site.sessions) as session:
        round_ = session.get_one(Round, round_id)
        submissions = {s.model_id: s.id for s in round_.submissions}
        for name, metrics in finals.items():
            model_id = models[name]

            def add(metric: str, day: int, value: float, model_id: uuid.UUID = model_id) -> None:
                session.add(
                    RoundScore(
                        round_id=round_id,
                        model_id=model_id,
                        submission_id=submissions[model_id],
                        metric=metric,
                        day=day,
                        value=value,
                        late=False,
                        scoring_version=SCORING_VERSION,
                        computed_at=now,
                    )
                )

            for metric, value in (day_zero or {}).get(name, {}).items():
                add(metric, 0, value)
            for day in range(1, days + 1):
                for metric, value in metrics.items():
                    add(metric, day, value if day == days else value * day / (days + 1))
                add("test_logloss", day, HIDDEN)
        for day in range(1, days + 1):
            session.add(
                RoundTargets(
                    round_id=round_id,
                    day=day,
                    storage_key=f"operator/targets/{round_id}/{day}.parquet",
                    sha256="0" * 64,
                    recorded_at=now,
                )
            )


def close(site: Site, round_id: uuid.UUID) -> None:
    """The round closes at its close time (stakes frozen) and starts scoring."""
    lifecycle = RoundLifecycle(site.ledger, site.clock)
    with transaction(site.sessions) as session:
        round_ = session.get_one(Round, round_id)
        site.clock.set(max(site.clock.now(), round_.close_time + timedelta(minutes=1)))
        assert lifecycle.close(session, round_)
        assert lifecycle.start_scoring(session, round_)


def resolve(site: Site, round_id: uuid.UUID) -> None:
    lifecycle = RoundLifecycle(site.ledger, site.clock)
    with transaction(site.sessions) as session:
        assert lifecycle.resolve(session, session.get_one(Round, round_id))


def open_next(site: Site, number: int, at: datetime) -> uuid.UUID:
    site.clock.set(at)
    with transaction(site.sessions) as session:
        tournament = get_tournament(session, number)
        publisher = FeedPublisher(market_feed(), site.storage)
        return open_round(session, site.clock, tournament, publisher).id


def played(site: Site) -> Played:
    """Tournament 8: rounds 1 and 2 resolved, round 3 scoring (day 1), round 4 open.

    alice has alice_a and alice_b, bob has bob_model; each stakes (`STAKES`) before round 1;
    alice_b sits out rounds 2 and 3."""
    clock = site.clock
    with transaction(site.sessions) as session:
        tournament = get_tournament(session, 8)
        accounts = {
            name: sign_up(session, clock, name, f"{name}@example.org", PASSWORD, hasher=CHEAP)
            for name in ("alice", "bob")
        }
        models = {}
        for name, owner in OWNERS.items():
            models[name] = create_model(session, clock, accounts[owner], 8, name).id
        for account in accounts.values():
            grant_nmr(session, site.ledger, account, 1_000 * NMR, f"welcome {account.username}")
        for name, amount in STAKES.items():
            model = session.get_one(Model, models[name])
            change_stake(session, site.ledger, clock, model, StakeChangeKind.INCREASE, amount * NMR)
        first = current_round(session, tournament)
        assert first is not None
        for name in OWNERS:
            upload(site, session, first, accounts[OWNERS[name]], models[name])
        done = Played(8, models, {1: first.id})
        account_ids = {name: account.id for name, account in accounts.items()}
    close(site, done.rounds[1])
    for number in (2, 3):
        start = open_next(site, 8, clock.now().replace(hour=12, minute=5) + DAY)
        done.rounds[number] = start
        with transaction(site.sessions) as session:
            round_ = session.get_one(Round, start)
            for name in ("alice_a", "bob_model"):
                owner = session.get_one(Account, account_ids[OWNERS[name]])
                upload(site, session, round_, owner, models[name])
        close(site, start)
    record_scores(site, done.rounds[1], CLASSIC_SCORES[1], models, SCORED_DAYS)
    record_scores(site, done.rounds[2], CLASSIC_SCORES[2], models, SCORED_DAYS)
    record_scores(site, done.rounds[3], CLASSIC_SCORES[3], models, 1)
    resolve(site, done.rounds[1])
    resolve(site, done.rounds[2])
    done.rounds[4] = open_next(site, 8, clock.now().replace(hour=12, minute=5) + DAY)
    return done


# --- reading pages -------------------------------------------------------------------------------

ROW = re.compile(r"<tr>(.*?)</tr>", re.S)
CELL = re.compile(r"<td([^>]*)>(.*?)</td>", re.S)
VALUE = re.compile(r'data-value="([^"]*)"')
TAG = re.compile(r"<[^>]+>")
HEADER = re.compile(r"<th data-sort[^>]*>(.*?)</th>", re.S)


@dataclass(frozen=True)
class Cell:
    text: str
    value: str | None


def table(page: str, label: str) -> tuple[list[str], list[list[Cell]]]:
    """The headers and rows of the sortable table labelled `label` on a page."""
    start = page.index(f'<table class="sortable" aria-label="{label}"')
    body = page[start : page.index("</table>", start)]
    headers = [html.unescape(TAG.sub("", h)).strip() for h in HEADER.findall(body)]
    rows = []
    for row in ROW.findall(body.split("<tbody>", 1)[1]):
        cells = []
        for attributes, content in CELL.findall(row):
            value = VALUE.search(attributes)
            cells.append(
                Cell(html.unescape(TAG.sub("", content)).strip(), value[1] if value else None)
            )
        rows.append(cells)
    return headers, rows


def by_name(
    headers: list[str], rows: list[list[Cell]], column: int = 1
) -> dict[str, dict[str, Cell]]:
    return {row[column].text: dict(zip(headers, row, strict=True)) for row in rows}


def assert_nothing_hidden(page: str) -> None:
    text = page.lower()
    assert "test_logloss" not in text and "test logloss" not in text
    assert "0.3141" not in page and "0.314159" not in page


def nmr_text(units: int) -> str:
    """As the pages write NMR: `format_amount`."""
    return format_amount(units, Currency.NMR)


# --- the tests -----------------------------------------------------------------------------------


def test_the_leaderboard_ranks_models_with_todays_columns_and_raw_numbers(site: Site) -> None:
    world = played(site)
    payouts = world.payouts(site)
    page = site.browser().get("/leaderboard")
    assert page.status_code == 200
    headers, rows = table(page.text, "Leaderboard of tournament 8")
    assert headers == [
        "#",
        "Model",
        "CORR",
        "MMC",
        "Consistency",
        "Career USD",
        "Career NMR",
        "Stake",
    ]
    assert page.text.count("<th data-sort") == len(headers)
    board = by_name(headers, rows)
    assert [row[1].text for row in rows] == ["alice_a", "bob_model", "alice_b"]  # CORR rep
    assert [row[0].value for row in rows] == ["1", "2", "3"]
    alice_a = board["alice_a"]
    assert float(alice_a["CORR"].value or "nan") == (0.04 + 0.03) / 2
    assert alice_a["CORR"].text == "0.0350"
    assert float(alice_a["MMC"].value or "nan") == (0.01 + 0.004) / 2
    assert alice_a["Consistency"].value == "1.0" and alice_a["Consistency"].text == "100.00%"
    career = payouts[(1, "alice_a")].nmr + payouts[(2, "alice_a")].nmr
    assert payouts[(1, "alice_a")].nmr == 39 * NMR // 10  # 100 NMR × (½·0.04 + 2·0.01 − 0.001)
    assert alice_a["Career NMR"].value == str(career)
    assert alice_a["Career NMR"].text == nmr_text(career)
    assert alice_a["Career USD"].value == "0" and alice_a["Career USD"].text == "$0.00"
    # rewards compound into the stake: the stake now is the staked NMR plus the career NMR
    assert alice_a["Stake"].value == str(STAKES["alice_a"] * NMR + career)
    bob = board["bob_model"]
    assert bob["Consistency"].value == "0.5"  # round 1 above zero, round 2 below
    alice_b = board["alice_b"]
    # 50 NMR × (½·-0.02 + 2·-0.005 − 0.001)
    assert alice_b["Career NMR"].value == str(-105 * NMR // 100)
    assert alice_b["Stake"].value == str(4895 * NMR // 100)
    assert 'href="/profiles/alice_a?tournament=8"' in page.text
    assert '<link rel="stylesheet" href="/static/public.css">' in page.text
    assert site.browser().get("/static/public.css").status_code == 200
    assert_nothing_hidden(page.text)

    accounts = site.browser().get("/leaderboard?tournament=8&by=accounts")
    headers, rows = table(accounts.text, "Leaderboard of tournament 8")
    assert headers[1] == "Account"
    pooled = by_name(headers, rows)
    assert set(pooled) == {"alice", "bob"}
    alice_career = career + payouts[(1, "alice_b")].nmr
    assert pooled["alice"]["Career NMR"].value == str(alice_career)
    assert float(pooled["alice"]["CORR"].value or "nan") == (0.04 - 0.02 + 0.03) / 3
    assert_nothing_hidden(accounts.text)
    assert site.browser().get("/leaderboard?by=nonsense").status_code == 404


def test_a_2017_tournament_shows_the_seeds_columns_and_marks(site: Site) -> None:
    played_2017(site)
    page = site.browser().get("/leaderboard?tournament=11")
    assert page.status_code == 200
    headers, rows = table(page.text, "Leaderboard of tournament 11")
    assert headers == [
        "#",
        "Model",
        "Logloss",
        "Career USD",
        "Consistency",
        "Originality",
        "Concordance",
        "Career NMR",
    ]
    board = by_name(headers, rows)
    assert [row[1].text for row in rows] == ["sharp", "steady", "loser"]  # lowest logloss first
    assert board["sharp"]["Logloss"].text == "0.680000"
    assert (
        board["sharp"]["Originality"].text == "✓" and board["sharp"]["Originality"].value == "1.0"
    )
    assert board["loser"]["Originality"].text == "✗"
    assert board["sharp"]["Concordance"].text == "-"  # no concordance recorded
    assert board["loser"]["Consistency"].text == "0.00%"  # logloss above ln 2
    assert int(board["sharp"]["Career USD"].value or "0") > 0
    assert_nothing_hidden(page.text)
    # the selector offers both tournaments; the default one is 8
    assert 'href="/leaderboard?by=models&amp;tournament=8"' in page.text
    default = site.browser().get("/leaderboard")
    assert (
        "· tournament 8</span>" in default.text and "No models in this tournament" in default.text
    )
    assert site.browser().get("/leaderboard?tournament=99").status_code == 404
    assert site.browser().get("/leaderboard?tournament=x").status_code == 404


# --- the 2017 rules ------------------------------------------------------------------------------

SATURDAY = datetime.fromisoformat("2001-01-13T18:05:00+00:00")
LEGACY = {
    # name: (owner, final logloss, originality gate, stake NMR, confidence)
    "sharp": ("carol", 0.68, 1.0, 300, "0.5"),
    "steady": ("dave", 0.69, 1.0, 200, "0.8"),
    "loser": ("carol", 0.71, 0.0, 100, "0.9"),
}


def played_2017(site: Site) -> Played:
    """Tournament 11 (2017 rules, weekly): round 1 staked with confidences and resolved,
    its prize pool funded."""
    clock = site.clock
    clock.set(max(clock.now(), SATURDAY))
    with transaction(site.sessions) as session:
        tournament = create_tournament(
            session, clock, 11, "legacy", Rules.RULES2017, Cadence.WEEKLY, "v2"
        )
        fund_prize_pool(session, site.ledger, tournament, 10_000_00, "season one")
        accounts = {
            name: sign_up(session, clock, name, f"{name}@example.org", PASSWORD, hasher=CHEAP)
            for name in ("carol", "dave")
        }
        for account in accounts.values():
            grant_nmr(session, site.ledger, account, 1_000 * NMR, f"welcome {account.username}")
        round_ = open_round(session, clock, tournament, FeedPublisher(market_feed(), site.storage))
        models = {}
        for name, (owner, _, _, amount, confidence) in LEGACY.items():
            model = create_model(session, clock, accounts[owner], 11, name)
            models[name] = model.id
            upload(site, session, round_, accounts[owner], model.id)
            stake_on_round(session, site.ledger, clock, model, amount * NMR, Decimal(confidence))
        done = Played(11, models, {1: round_.id})
    close(site, done.rounds[1])
    finals = {
        name: {"logloss": loss, "corr": 0.69 - loss} for name, (_, loss, *_) in LEGACY.items()
    }
    gates = {name: {"originality_2017": gate} for name, (_, _, gate, *_) in LEGACY.items()}
    record_scores(site, done.rounds[1], finals, models, SCORED_DAYS, day_zero=gates)
    resolve(site, done.rounds[1])
    return done
