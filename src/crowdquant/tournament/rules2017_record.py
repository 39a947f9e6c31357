"""The figures of the uploads that count in 2017 rounds, read back per round and per model.

`counting_checks` gives, per model, the stored figures (`rules2017_checks`) of its counting
upload to a round (its newest valid, on-time one, as `submissions.counting_submission`
picks it), as a viewer may see them: the round's results page shows the validation
log-loss and consistency. `holdout_record` is the operator's test-set record of a 2017
tournament: each model's test-set log-loss per round and its mean. The test-set log-loss is
a hidden metric (`visibility.HIDDEN_METRICS`): no participant sees it; the meta model may
weigh stakes by it (`scoring.metamodel`, the tournament setting
``"meta_model": {"weights": "stake_x_test"}``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from crowdquant.db.models import Model, Round, Submission, SubmissionStatus, Tournament
from crowdquant.tournament.rules2017_checks import visible_checks
from crowdquant.tournament.visibility import Viewer

TEST_LOGLOSS = "test_logloss"


def counting_checks(
    session: Session, round_: Round, viewer: Viewer
) -> dict[uuid.UUID, dict[str, float | None]]:
    """Per model id, the figures `viewer` may see of its counting upload to `round_`."""
    uploads = session.scalars(
        select(Submission)
        .where(
            Submission.round_id == round_.id,
            Submission.status == SubmissionStatus.VALID,
            Submission.late.is_(False),
        )
        .order_by(Submission.created_at.desc())
    )
    counting: dict[uuid.UUID, Submission] = {}
    for upload in uploads:
        counting.setdefault(upload.model_id, upload)
    found = visible_checks(session, list(counting.values()), viewer)
    return {model_id: found[upload.id] for model_id, upload in counting.items()}


@dataclass(frozen=True)
class HoldoutLine:
    """One model's test-set log-loss per round number (None: no figure that round)."""

    model: str
    by_round: dict[int, float | None]
    mean: float | None


@dataclass(frozen=True)
class HoldoutRecord:
    rounds: list[int]  # newest first: the rounds with a counting upload
    lines: list[HoldoutLine]  # by mean test-set log-loss, best first; no figure last


def holdout_record(session: Session, tournament: Tournament) -> HoldoutRecord:
    """The operator's test-set record of `tournament`: for every round with counting uploads,
    each model's test-set log-loss (its counting upload's figure), and each model's mean over
    the rounds it has one. For the operator's pages only."""
    rounds = session.scalars(
        select(Round).where(Round.tournament_id == tournament.id).order_by(Round.number.desc())
    ).all()
    names: dict[uuid.UUID, str] = {
        model_id: name
        for model_id, name in session.execute(
            select(Model.id, Model.name).where(Model.tournament_id == tournament.id)
        )
    }
    by_model: dict[uuid.UUID, dict[int, float | None]] = {}
    shown: list[int] = []
    for round_ in rounds:
        found = counting_checks(session, round_, Viewer.operator())
        if not found:
            continue
        shown.append(round_.number)
        for model_id, figures in found.items():
            by_model.setdefault(model_id, {})[round_.number] = figures.get(TEST_LOGLOSS)
    lines = []
    for model_id, values in by_model.items():
        present = [value for value in values.values() if value is not None]
        mean = float(np.mean(present)) if present else None
        lines.append(HoldoutLine(names.get(model_id, str(model_id)), values, mean))
    lines.sort(key=lambda line: (line.mean is None, line.mean or 0.0, line.model))
    return HoldoutRecord(shown, lines)
