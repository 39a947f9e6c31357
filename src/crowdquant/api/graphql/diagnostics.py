"""Diagnostics (protocol §5.6): the three-step upload, then polling for the result.

1. `diagnosticsUploadAuth` answers a fresh upload key of the model (`filename`) and a signed
   PUT URL for it; numerapi sends ``modelId: ""`` when none is given, meaning "my only
   model in this tournament".
2. The client PUTs the file (`api/files.py`).
3. `createDiagnostics(filename: <that key>)` queues it (`request_diagnostics`) and answers
   its id at once; a background worker scores it (`tournament.diagnostics`).

`diagnostics(id, modelId)` shows one of the caller's own model's diagnostics (the newest
when `id` is null): `status` is ``pending``, ``running``, ``done`` or ``failed`` (then
`message` says why). Numbers are filled once done. MMC is measured against the example
model's validation predictions (there is no meta model on validation eras), so
`validationMmc*` and `validationBmc*` are the same numbers. Fields we do not compute (the
ratings, APY, the V4/IC/RIC/alpha variants, churn) are null. `requestNumber` (ours) says how
many diagnostics the model has asked for, this one included.
"""

from __future__ import annotations

from typing import Any

from ariadne import MutationType, QueryType
from graphql import GraphQLResolveInfo

from crowdquant.api.graphql.context import context_of, iso, required
from crowdquant.api.graphql.uploads import resolve_upload_auth, uploader
from crowdquant.db.models import ApiScope, Diagnostics, DiagnosticsStatus
from crowdquant.http.throttle import Action
from crowdquant.tournament.diagnostics import (
    get_diagnostics,
    request_diagnostics,
)
from crowdquant.tournament.diagnostics.report import DiagnosticsReport, DiagnosticsSummary

query = QueryType()
mutation = MutationType()

# Our summary's names → the schema's top-level fields.
SUMMARY_FIELDS = {
    "validationCorrMean": "corr_mean",
    "validationCorrStd": "corr_std",
    "validationCorrSharpe": "corr_sharpe",
    "validationMaxDrawdown": "corr_max_drawdown",
    "validationCorrMaxDrawdown": "corr_max_drawdown",
    "validationMmcMean": "mmc_mean",
    "validationMmcStd": "mmc_std",
    "validationMmcSharpe": "mmc_sharpe",
    "validationBmcMean": "mmc_mean",
    "validationCorrPlusMmcMean": "corr_plus_mmc_mean",
    "validationCorrPlusMmcStd": "corr_plus_mmc_std",
    "validationCorrPlusMmcSharpe": "corr_plus_mmc_sharpe",
    "validationFeatureNeutralCorrMean": "fnc_mean",
    "validationFeatureCorrMax": "max_feature_exposure",
    "examplePredsCorrMean": "corr_with_example_preds",
    "validationCorrCorrWExamplePreds": "corr_corr_with_example",
}

# Our per-era names → the schema's `PerEraDiagnostic` fields.
PER_ERA_FIELDS = {
    "validationCorr": "corr",
    "validationMmc": "mmc",
    "validationBmc": "mmc",
    "validationFeatureNeutralCorr": "fnc",
    "validationFeatureCorrMax": "feature_exposure",
    "examplePredsCorr": "corr_with_example_preds",
}


query.set_field("diagnosticsUploadAuth", resolve_upload_auth)


@mutation.field("createDiagnostics")
def resolve_create_diagnostics(
    _obj: Any,
    info: GraphQLResolveInfo[Any],
    filename: str | None = None,
    tournament: int | None = None,
    modelId: str | None = None,
) -> dict[str, str]:
    context, account, model = uploader(info, tournament, modelId)
    context.throttle.hit(Action.DIAGNOSTICS, context.address, account.id)
    row = request_diagnostics(
        context.session,
        context.clock,
        context.storage,
        account,
        model.id,
        str(required(filename, "filename")),
        max_bytes=context.max_upload_bytes,
    )
    return {"id": str(row.id)}


@query.field("diagnostics")
def resolve_diagnostics(
    _obj: Any,
    info: GraphQLResolveInfo[Any],
    id: str | None = None,
    modelId: str | None = None,
) -> dict[str, Any]:
    context = context_of(info)
    account = context.account(ApiScope.READ)
    row = get_diagnostics(context.session, account, required(modelId, "modelId"), id)
    return render_diagnostics(row)


def render_diagnostics(row: Diagnostics) -> dict[str, Any]:
    """The schema's `Diagnostics` object; fields not listed here resolve to null."""
    report = (
        DiagnosticsReport.model_validate(row.result)
        if row.status is DiagnosticsStatus.DONE and row.result is not None
        else None
    )
    summary = None if report is None else report.summary
    rendered: dict[str, Any] = {
        "id": str(row.id),
        "status": row.status.value,
        "message": _message(row, summary),
        "updatedAt": iso(row.finished_at or row.started_at or row.created_at),
        "requestNumber": row.request_number,
        "datasetVersion": row.dataset_version,
        "trainedOnVal": None,
        "erasAcceptedCount": None if summary is None else summary.n_eras,
        "perEraDiagnostics": [
            {
                "era": era.era,
                **{field: getattr(era, ours) for field, ours in PER_ERA_FIELDS.items()},
            }
            for era in ([] if report is None else report.per_era)
        ],
    }
    rendered.update(
        {
            field: None if summary is None else getattr(summary, ours)
            for field, ours in SUMMARY_FIELDS.items()
        }
    )
    return rendered


def _message(row: Diagnostics, summary: DiagnosticsSummary | None) -> str:
    look = f"request {row.request_number} for this model"
    if row.status is DiagnosticsStatus.PENDING:
        return f"waiting to be scored ({look})"
    if row.status is DiagnosticsStatus.RUNNING:
        return f"being scored ({look})"
    if row.status is DiagnosticsStatus.FAILED:
        return row.error or "failed"
    eras = 0 if summary is None else summary.n_eras
    return (
        f"scored on {eras} validation eras of dataset version {row.dataset_version} ({look}:"
        " the more often the validation data is looked at, the less it tells)"
    )
