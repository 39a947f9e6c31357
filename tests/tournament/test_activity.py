"""Some accounts' activity as it happens: their uploads, stakes at risk, scores and payouts,
and nothing of the accounts left out."""

from __future__ import annotations

from sqlalchemy.orm import Session

from crowdquant.db.models import SubmissionStatus
from crowdquant.db.session import transaction
from crowdquant.money import NMR_UNIT
from crowdquant.tournament.activity import Activity, AtRisk, Paid, Scored, Uploaded, activity_since
from crowdquant.tournament.tournaments import get_tournament

from .live_market import TUESDAY_NOON
from .scored_round import DAY, World
from .test_resolution import STAKES, stake_world

ALICE = {"alice_a", "alice_b"}


def _activity(world: World, since_now: bool = False) -> list[Activity]:
    with transaction(world.sessions) as session:
        return _of_alice(session, world, since_now)


def _of_alice(session: Session, world: World, since_now: bool) -> list[Activity]:
    since = world.clock.now() if since_now else TUESDAY_NOON
    return activity_since(session, get_tournament(session, 8), since, leaving_out={"bob"})


def test_an_accounts_uploads_stakes_scores_and_payouts_as_they_come(world: World) -> None:
    staked = stake_world(world, STAKES)
    found = _activity(world)
    assert [record.at for record in found] == sorted(record.at for record in found)
    assert {record.model for record in found} == ALICE  # nothing of bob's
    uploads = [record for record in found if isinstance(record, Uploaded)]
    assert {(r.username, r.model, r.round, r.late, r.status) for r in uploads} == {
        ("alice", name, 1, False, SubmissionStatus.VALID) for name in ALICE
    }
    at_risk = {r.model: r.nmr for r in found if isinstance(r, AtRisk)}
    assert at_risk == {name: STAKES[name] * NMR_UNIT for name in ALICE}
    scored = [record for record in found if isinstance(record, Scored)]
    assert sorted((r.model, r.day) for r in scored) == sorted(
        (name, day)
        for name in ALICE
        for day in range(21)  # day 0: needs no target
    )
    assert all({"corr", "mmc"} <= set(r.values) for r in scored if r.day > 0)
    assert all("cwmm" in r.values for r in scored if r.day == 0)
    assert not any(isinstance(record, Paid) for record in found)  # not resolved yet

    world.clock.advance(DAY)
    staked.resolve()
    paid = _activity(world, since_now=True)  # only what came since: the payouts
    assert all(isinstance(record, Paid) for record in paid)
    paid_nmr = staked.paid()
    assert {(r.model, r.nmr, r.at_risk) for r in paid if isinstance(r, Paid)} == {
        (name, paid_nmr[name], STAKES[name] * NMR_UNIT) for name in ALICE
    }
