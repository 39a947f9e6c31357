"""The figures of a 2017 upload: validation log-loss and consistency (the participant's),
originality against the other accounts' uploads of the round, and the test-set log-loss
(the operator's alone: `visibility.HIDDEN_METRICS`).

`rules2017_upload_checks` computes them for a valid upload to a round published with 2017
files (`rules2017_files`), from the stored file and the operator's id map (which holds the
validation and test rows' targets); `check_rows` makes the `SubmissionCheck` rows that
keep them (`submissions.submit_predictions` adds them with the upload), and
`visible_checks` reads them back as a viewer may see them. Concordance compares the
upload's validation, test and live probabilities within the k-means clusters fitted when
the round was published (the id map's `cluster`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from crowdquant.db.models import Model, Submission, SubmissionCheck, SubmissionStatus
from crowdquant.scoring.rules2017 import (
    CONCORDANCE_CLUSTERS,
    SPLITS,
    ConcordanceClusters,
    ConcordanceResult,
    OriginalityResult,
    UploadChecks,
    concordance,
    originality,
    upload_checks,
)
from crowdquant.scoring.validation import validate_2017_submission
from crowdquant.storage import FileStorage
from crowdquant.tournament.rules2017_files import tournament_rows
from crowdquant.tournament.visibility import Viewer, score_visible

CHECK_METRICS = (
    "validation_logloss",
    "consistency",
    "originality",
    "concordance",
    "test_logloss",
)
"""What a 2017 upload is checked for; `originality` and `concordance` are 1 (pass) or 0."""


@dataclass(frozen=True)
class Rules2017Checks:
    checks: UploadChecks
    originality: OriginalityResult
    concordance: ConcordanceResult | None  # None: no cluster has rows of all three types


def _concordance(own: pd.Series, rows: pd.DataFrame) -> ConcordanceResult | None:
    kinds = rows["data_type"].to_numpy()
    labels = rows["cluster"].to_numpy(np.int64)
    parts = [(kinds == split) for split in SPLITS]
    clusters = ConcordanceClusters(
        validation=labels[parts[0]],
        test=labels[parts[1]],
        live=labels[parts[2]],
        centers=np.empty((CONCORDANCE_CLUSTERS, 0)),  # not kept: the labels are
    )
    if not clusters.usable_clusters():
        return None
    values = own.to_numpy(np.float64)
    return concordance(clusters, values[parts[0]], values[parts[1]], values[parts[2]])


def _probabilities(storage: FileStorage, submission: Submission, rows: pd.DataFrame) -> pd.Series:
    with storage.read(submission.file_key) as chunks:
        content = b"".join(chunks)
    validated = validate_2017_submission(
        content, rows["data_type"], filename=submission.filename, max_bytes=2**62
    )
    return validated.predictions.reindex(rows.index)


def rules2017_upload_checks(
    session: Session, storage: FileStorage, submission: Submission
) -> Rules2017Checks | None:
    """The figures of a valid upload to a round with 2017 files; None for any other."""
    if submission.status is not SubmissionStatus.VALID:
        return None
    rows = tournament_rows(session, storage, submission.round)
    if rows is None:
        return None
    own = _probabilities(storage, submission, rows)
    owner = session.scalar(select(Model.account_id).where(Model.id == submission.model_id))
    others = session.scalars(
        select(Submission)
        .join(Model, Model.id == Submission.model_id)
        .where(
            Submission.round_id == submission.round_id,
            Submission.status == SubmissionStatus.VALID,
            Model.account_id != owner,
        )
        .order_by(Submission.created_at)
    ).all()
    matrix = np.empty((len(rows), len(others)), dtype=np.float64)
    for k, other in enumerate(others):
        matrix[:, k] = _probabilities(storage, other, rows).to_numpy(np.float64)
    return Rules2017Checks(
        checks=upload_checks(own, rows),
        originality=originality(own.to_numpy(np.float64), matrix),
        concordance=_concordance(own, rows),
    )


def check_rows(
    found: Rules2017Checks, submission: Submission, now: datetime
) -> list[SubmissionCheck]:
    """The rows keeping an upload's figures."""
    values = {
        "validation_logloss": found.checks.validation_logloss,
        "consistency": found.checks.consistency.consistency,
        "originality": 1.0 if found.originality.original else 0.0,
        "concordance": (
            None if found.concordance is None else 1.0 if found.concordance.concordant else 0.0
        ),
        "test_logloss": found.checks.test_logloss,
    }
    return [
        SubmissionCheck(submission_id=submission.id, metric=metric, value=value, computed_at=now)
        for metric, value in values.items()
    ]


def visible_checks(
    session: Session, submissions: list[Submission], viewer: Viewer
) -> dict[uuid.UUID, dict[str, float | None]]:
    """Per submission id, its stored figures that `viewer` may see (none: an empty dict)."""
    found: dict[uuid.UUID, dict[str, float | None]] = {sub.id: {} for sub in submissions}
    if not submissions:
        return found
    rows = session.scalars(
        select(SubmissionCheck).where(
            SubmissionCheck.submission_id.in_([sub.id for sub in submissions])
        )
    )
    for row in rows:
        if score_visible(row.metric, viewer):
            found[row.submission_id][row.metric] = row.value
    return found
