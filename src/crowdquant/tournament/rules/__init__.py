"""The rule families a tournament plays by, one `Ruleset` each.

A new family is one module here and one line in `RULESETS`.
"""

from crowdquant.db.models import Rules, Tournament
from crowdquant.payouts import PayoutRule
from crowdquant.tournament.rules.base import PlannedPayout, Ruleset
from crowdquant.tournament.rules.classic import Classic
from crowdquant.tournament.rules.round_stake import RoundStakes
from crowdquant.tournament.rules.rules2017 import Rules2017

RULESETS: dict[Rules, Ruleset] = {
    ruleset.rules: ruleset for ruleset in (Classic(), Rules2017(), RoundStakes())
}


def ruleset_for(rules: Rules) -> Ruleset:
    return RULESETS[rules]


def ruleset_of(tournament: Tournament) -> Ruleset:
    return RULESETS[tournament.rules]


def ruleset_paying(rule: PayoutRule) -> Ruleset:
    """The ruleset whose payouts `rule` plans (a payout rule's kind names its family)."""
    return RULESETS[Rules(rule.kind)]


__all__ = ["RULESETS", "PlannedPayout", "Ruleset", "ruleset_for", "ruleset_of", "ruleset_paying"]
