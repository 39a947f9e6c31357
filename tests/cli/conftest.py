"""The scored round fixture, for the replay command."""

from ..tournament.scored_round import world

__all__ = ["world"]
