"""Diagnostics: a model's predictions on the validation eras, scored in the background.

A participant uploads predictions for the published validation rows of the tournament's
dataset version and later reads back how they would have scored, era by era.

1. `diagnostics_upload_key` picks a fresh storage key ``uploads/<model>/<nonce>/<name>``
   (the scheme of submission uploads: the API signs a PUT URL for it, `api/files.py` takes
   the bytes there).
2. `request_diagnostics` checks the upload is the caller's model's and is there, moves it
   to ``diagnostics/<model>/<diagnostics id>/<name>`` and records a `pending` `Diagnostics`
   row with the model's next `request_number` and the tournament's dataset version. Nothing
   heavy happens here: this runs in the web request.
3. `run_next_diagnostics` (a worker, `DiagnosticsWorker`, calls it) claims the oldest
   pending row by compare-and-set (pending → running, so two workers never run the same
   one), validates the file against the version's validation ids (in the server's
   validation pool, `tournament.validator`: worker processes with memory and time limits,
   so a file that decodes to gigabytes fails its row, not the server), scores it and stores
   `result` (`done`), or stores a readable `error` (`failed`). A job that crashes is failed
   with ``internal error``; one whose worker died is failed by `fail_stale_diagnostics`.

What is scored, per validation era (`ValidationEras` does CORR, MMC and FNC):

* CORR against the main target, FNC neutral to one feature set of features.json
  (`DEFAULT_FEATURE_SET`, "medium", as Numerai's FNCv3),
* MMC against the version's **example-model validation predictions**: there is no meta model
  on validation eras (nobody staked on them), so the contribution is measured against the
  example model, which is what Numerai calls BMC (benchmark model contribution). MMC and BMC
  are therefore the same number here,
* feature exposure: the largest |Pearson correlation| of the predictions with one feature
  of that set, as Numerai's example scripts compute it,
* the rank (Spearman) correlation of the predictions with the example predictions, and the
  example model's own CORR.

`result` is a `report.DiagnosticsReport` as JSON: the scores per era and their summary.

Modules: `requests` (steps 1 and 2, reading), `validation` (the prepared validation set and
the scoring of one upload), `report` (what the scoring finds), `worker` (step 3 and the
thread). Service functions work in the caller's transaction (flush, never commit), and a
refusal writes nothing. `run_next_diagnostics` and the worker take a session factory and
commit each step themselves.
"""

from crowdquant.tournament.diagnostics.report import DiagnosticsReport
from crowdquant.tournament.diagnostics.requests import (
    DiagnosticsError,
    NoValidationData,
    UnknownDiagnostics,
    diagnostics_upload_key,
    get_diagnostics,
    list_diagnostics,
    request_diagnostics,
)
from crowdquant.tournament.diagnostics.validation import (
    DEFAULT_FEATURE_SET,
    StoredValidationLoader,
    ValidationLoader,
    ValidationSet,
    prepare_validation,
    score_diagnostics,
)
from crowdquant.tournament.diagnostics.worker import (
    INTERNAL_ERROR,
    STALE_ERROR,
    DiagnosticsWorker,
    claim_next_diagnostics,
    fail_stale_diagnostics,
    run_next_diagnostics,
)

__all__ = [
    "DEFAULT_FEATURE_SET",
    "INTERNAL_ERROR",
    "STALE_ERROR",
    "DiagnosticsError",
    "DiagnosticsReport",
    "DiagnosticsWorker",
    "NoValidationData",
    "StoredValidationLoader",
    "UnknownDiagnostics",
    "ValidationLoader",
    "ValidationSet",
    "claim_next_diagnostics",
    "diagnostics_upload_key",
    "fail_stale_diagnostics",
    "get_diagnostics",
    "list_diagnostics",
    "prepare_validation",
    "request_diagnostics",
    "run_next_diagnostics",
    "score_diagnostics",
]
