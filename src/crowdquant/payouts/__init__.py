"""Tournament payouts as pure functions: rules in, integer amounts out.

Two rule versions: `ClassicRule` (today's stake × clipped CORR/MMC payout) and
`Rules2017Rule` (the seeds' logloss benchmark, confidence auction and rank prizes). A rule is
data: each round records `rule_to_data(rule)` and is paid by `rule_from_data` of that record,
so a rule can change without touching rounds already paid. Amounts are ints (NMR in 10⁻¹⁸
units, USD in cents) computed exactly with Fraction and Decimal; nothing here does I/O, reads
the clock or touches the database.
"""

from crowdquant.payouts.classic import ClassicEntry, ClassicPayouts, classic_payouts, payout_factor
from crowdquant.payouts.prorata import scale_to
from crowdquant.payouts.rules import (
    ClassicRule,
    PayoutRule,
    PayoutRuleError,
    Rules2017Rule,
    default_rule,
    rule_from_data,
    rule_to_data,
    rule_with,
)
from crowdquant.payouts.rules2017 import (
    Rules2017Entry,
    Rules2017Outcome,
    auction_awards,
    passes_gates,
    rank_prizes,
    rules2017_payouts,
)

__all__ = [
    "ClassicEntry",
    "ClassicPayouts",
    "ClassicRule",
    "PayoutRule",
    "PayoutRuleError",
    "Rules2017Entry",
    "Rules2017Outcome",
    "Rules2017Rule",
    "auction_awards",
    "classic_payouts",
    "default_rule",
    "passes_gates",
    "payout_factor",
    "rank_prizes",
    "rule_from_data",
    "rule_to_data",
    "rule_with",
    "rules2017_payouts",
    "scale_to",
]
