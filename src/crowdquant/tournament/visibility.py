"""What a caller may see: one policy, asked by every read path (GraphQL, REST, files, pages).

- Targets of a live or holdout era are the operator's: they live in storage under
  `OPERATOR_PREFIX` (recorded round targets, meta models) or in the operator's own folder
  (holdout, id map), never in a published dataset. No path serves an operator key, even
  with a valid signature.
- Live features of a closed-live tournament (`tournament.live_mode`) are never served: no
  listing names its versions' live files (`LIVE_FILE_PREFIXES`) and no link opens them.
- Scores exist only after a round closes; a metric in `HIDDEN_METRICS` (feedback on a hidden
  holdout, e.g. the 2017 test-set logloss) is shown to the operator only.
- Another participant's private data (submission files, diagnostics, keys, email, wallet)
  is shown to its owner only; public views of a model are its name, scores and rank.

One function per kind of object: `servable_key` (a stored file), `live_key_closed` (a stored
live file of a closed-live version), `dataset_file_visible`,
`scores_visible` (a round's scores), `meta_model_score_visible` (its meta model's),
`score_visible` (one metric's), `owns` (a model's private data), `submission_visible` and
`diagnostics_visible`.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import PurePosixPath

from crowdquant.db.models import (
    Account,
    DatasetFile,
    Diagnostics,
    Model,
    Round,
    RoundStatus,
    Submission,
)

OPERATOR_PREFIX = "operator/"
"""Storage keys under this prefix are the operator's alone."""

HIDDEN_METRICS = frozenset({"test_logloss"})
"""Scores on data whose feedback would leak a hidden holdout."""

UNPUBLISHED_FILES = frozenset({"holdout.parquet", "id_map.parquet", "targets.parquet"})
"""Names a published dataset never carries (the operator's half of a build)."""

LIVE_FILE_PREFIXES = ("live", "numerai_tournament_data")
"""Published files holding live rows: ``live.parquet``, ``live_<round>.parquet``, the live
example and benchmark predictions, and the 2017 tournament file (validation, test and live)."""


class Role(enum.StrEnum):
    PUBLIC = "public"
    PARTICIPANT = "participant"
    OPERATOR = "operator"


@dataclass(frozen=True)
class Viewer:
    """Who is asking: nobody in particular, a signed-in participant, or the operator."""

    role: Role
    account: Account | None = None

    @classmethod
    def public(cls) -> Viewer:
        return cls(Role.PUBLIC)

    @classmethod
    def participant(cls, account: Account) -> Viewer:
        return cls(Role.PARTICIPANT, account)

    @classmethod
    def operator(cls) -> Viewer:
        return cls(Role.OPERATOR)


def servable_key(key: str) -> bool:
    """Whether a stored file (its storage key) may ever be served to a participant."""
    return not key.startswith(OPERATOR_PREFIX) and not any(
        key.endswith("/" + name) or key == name for name in UNPUBLISHED_FILES
    )


def is_live_file(filename: str) -> bool:
    """Whether a published file's name says it holds live rows."""
    return filename.startswith(LIVE_FILE_PREFIXES)


def live_key_closed(key: str, closed_live: Collection[str]) -> bool:
    """Whether a stored file (its key, ``[prefix]<version>/<file>``) is a live file of one of
    the `closed_live` versions (`live_mode.closed_live_versions`)."""
    path = PurePosixPath(key)
    return path.parent.name in closed_live and is_live_file(path.name)


def dataset_file_visible(file: DatasetFile, closed_live: Collection[str]) -> bool:
    """Whether a published dataset file may be listed or signed for participants: not the
    operator's, and not a live file of a closed-live version (`closed_live`)."""
    return (
        file.filename not in UNPUBLISHED_FILES
        and servable_key(file.storage_key)
        and not (file.version in closed_live and is_live_file(file.filename))
        and not live_key_closed(file.storage_key, closed_live)
    )


def scores_visible(round_: Round) -> bool:
    """A round shows scores once it is closed (an open round has none to show)."""
    return round_.status is not RoundStatus.OPEN


def meta_model_score_visible(round_: Round) -> bool:
    """A round's meta model's score is public once the round is resolved (its files stay
    the operator's)."""
    return round_.status is RoundStatus.RESOLVED


def score_visible(metric: str, viewer: Viewer) -> bool:
    """Whether `viewer` may see a score (or a check figure) of this metric: any but feedback
    on a hidden holdout, which is the operator's."""
    return viewer.role is Role.OPERATOR or metric not in HIDDEN_METRICS


def owns(viewer: Viewer, model: Model) -> bool:
    """Whether `viewer` may see `model`'s private data (files, diagnostics, settings)."""
    if viewer.role is Role.OPERATOR:
        return True
    return viewer.account is not None and model.account_id == viewer.account.id


def submission_visible(viewer: Viewer, submission: Submission) -> bool:
    """Whether `viewer` may see a submission (its file, its status): its model's owner."""
    return owns(viewer, submission.model)


def diagnostics_visible(viewer: Viewer, diagnostics: Diagnostics) -> bool:
    """Whether `viewer` may see a diagnostics report: its model's owner."""
    return owns(viewer, diagnostics.model)
