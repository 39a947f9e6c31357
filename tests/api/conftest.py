"""The scored round fixture (`world`), for the visibility tests of every read path."""

from ..tournament.scored_round import world

__all__ = ["world"]
