"""Daily scoring of closed rounds, kept so that every number can be replayed.

Once a round is closed, the market reveals its live era's targets day by day. For each new
day, `score_round` scores every submission of the round in one batch (`PreparedRound`) and
stores one `RoundScore` per (model, metric, day) with the scoring version. The inputs are
kept beside the scores, in storage under the operator-only prefix: the meta model fixed when
scoring starts, and the targets of each day as first seen. `replay_round` recomputes every
stored score from those inputs and the stored submission files and lists what differs.

Which submission a model is scored by: its counting one (newest valid, on time) or, if it
has none, its first valid late one, scored and marked late. Every score of a submission
depends only on it and on inputs fixed at close (meta model, benchmark, the on-time set for
originality), so a late arrival changes no stored figure. The meta model blends the
counting submissions weighted by their models' stakes at risk (frozen at close), or with
equal weights when nobody staked. BMC is
measured against the blend of the tournament's benchmark models (the `benchmark_models`
setting: model names), when they submitted, or else against the blend of the dataset
version's benchmark models' predictions the round published with its live era. FNC
neutralises against the version's `fncv3_features`.

Metrics, by the tournament's ruleset (`crowdquant.tournament.rules`: its `daily_metrics` and
`closing_metrics`):

- classic: day 0 (needs no target) `cwmm`, and `max_corr_others` / `mean_corr_others`
  (originality, against the on-time submissions); each day
  `corr`, `mmc`, `fnc` and `bmc` (the last two with features and benchmarks);
- rules2017: day 0 the same similarity figures and `originality_2017` (the seeds' gate: 1
  original, 0 not); each day `logloss` on the binary target (residual return above the
  era's median) and `corr`.

Modules: `targets` (where targets come from), `inputs` (what is kept and read), `daily`
(the batch computation), `service` (`score_round`, `replay_round`), `progress` (what each
scoring round's stored scores rest on, counted in one query, and what the last pass left).
Functions work inside the caller's transaction: they flush, never commit.
"""

from crowdquant.tournament.scoring.daily import DailyScorer, ScoreValue, similarity_scores
from crowdquant.tournament.scoring.inputs import (
    InputsCache,
    RoundInputs,
    ScoredSubmission,
    days_recorded,
    round_inputs,
    scored_submissions,
    stored_meta_model,
    stored_targets,
)
from crowdquant.tournament.scoring.progress import (
    Complete,
    ScoringMemory,
    ScoringProgress,
    scoring_rounds,
)
from crowdquant.tournament.scoring.service import (
    Difference,
    ScoringPass,
    ScoringUpdate,
    compute_round,
    replay_round,
    round_scores,
    score_round,
    write_scores,
)
from crowdquant.tournament.scoring.targets import FeedTargets, ScoringError, TargetSource

__all__ = [
    "Complete",
    "DailyScorer",
    "Difference",
    "FeedTargets",
    "InputsCache",
    "RoundInputs",
    "ScoreValue",
    "ScoredSubmission",
    "ScoringError",
    "ScoringMemory",
    "ScoringPass",
    "ScoringProgress",
    "ScoringUpdate",
    "TargetSource",
    "compute_round",
    "days_recorded",
    "replay_round",
    "round_inputs",
    "round_scores",
    "score_round",
    "scored_submissions",
    "scoring_rounds",
    "similarity_scores",
    "stored_meta_model",
    "stored_targets",
    "write_scores",
]
