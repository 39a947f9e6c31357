"""Tournament payouts as pure functions: rules in, integer amounts out.

Three kinds of rule: `ClassicRule` (stake × clipped CORR/MMC payout, less a hurdle; rounds
recorded before it pay by `ClassicV1Rule`, which has none), `RoundStakeRule`
(Numerai's 2026 rule: a stake per round, clip 1, payout factor 1, 5×CORR + 10×MMC) and
`Rules2017Rule` (the seeds' logloss benchmark, confidence auction and rank prizes). Each
round also records its rule as the versioned score configs numerapi reads
(`score_configs`). A rule is
data: each round records `rule_to_data(rule)` and is paid by `rule_from_data` of that record,
so a rule can change without touching rounds already paid. Amounts are ints (NMR in 10⁻¹⁸
units, USD in cents) computed exactly with Fraction and Decimal; nothing here does I/O, reads
the clock or touches the database.
"""

from crowdquant.payouts.classic import ClassicEntry, ClassicPayouts, classic_payouts, payout_factor
from crowdquant.payouts.prorata import scale_to
from crowdquant.payouts.rules import (
    ClassicRule,
    ClassicV1Rule,
    PayoutRule,
    PayoutRuleError,
    RoundStakeRule,
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
    benchmark_of,
    passes_gates,
    rank_prizes,
    rules2017_payouts,
)
from crowdquant.payouts.score_configs import (
    ScoreConfig,
    ScoringWindow,
    configs_from_data,
    configs_to_data,
    payout_multipliers,
    score_configs,
)

__all__ = [
    "ClassicEntry",
    "ClassicPayouts",
    "ClassicRule",
    "ClassicV1Rule",
    "PayoutRule",
    "PayoutRuleError",
    "RoundStakeRule",
    "Rules2017Entry",
    "Rules2017Outcome",
    "Rules2017Rule",
    "ScoreConfig",
    "ScoringWindow",
    "auction_awards",
    "benchmark_of",
    "classic_payouts",
    "configs_from_data",
    "configs_to_data",
    "default_rule",
    "passes_gates",
    "payout_factor",
    "payout_multipliers",
    "rank_prizes",
    "rule_from_data",
    "rule_to_data",
    "rule_with",
    "rules2017_payouts",
    "scale_to",
    "score_configs",
]
