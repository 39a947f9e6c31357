"""Answers are read from the services' objects; amounts become decimal strings."""

from __future__ import annotations

from types import SimpleNamespace

from crowdquant.api.rest.schemas.base import Overlay
from crowdquant.api.rest.schemas.scores import StandingOut


def test_an_overlay_adds_and_replaces_attributes() -> None:
    source = SimpleNamespace(rank=1, name="alice")
    overlaid = Overlay(source, rank=2, extra="x")
    assert (overlaid.rank, overlaid.name, overlaid.extra) == (2, "alice", "x")


def test_amounts_are_read_from_their_smallest_unit() -> None:
    row = SimpleNamespace(
        rank=1,
        name="alice",
        account=None,
        reputation={},
        consistency=None,
        rounds=0,
        latest_round=None,
        latest={},
        stake=1_500_000_000_000_000_000,
        career_nmr=-(10**17),
        career_usd=1234,
    )
    answer = StandingOut.model_validate(row).model_dump(mode="json")
    assert (answer["stake"], answer["career_nmr"], answer["career_usd"]) == ("1.5", "-0.1", "12.34")
