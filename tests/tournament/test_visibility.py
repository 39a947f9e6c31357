"""What a caller may see: one function per kind of object, each refusing what it must."""

from __future__ import annotations

import uuid

import pytest

from crowdquant.db.models import (
    Account,
    DatasetFile,
    Diagnostics,
    Model,
    Round,
    RoundStatus,
    Submission,
)
from crowdquant.tournament.visibility import (
    Viewer,
    dataset_file_visible,
    diagnostics_visible,
    live_key_closed,
    owns,
    score_visible,
    scores_visible,
    servable_key,
    submission_visible,
)

ALICE = Account(id=uuid.uuid4(), username="alice")
BOB = Account(id=uuid.uuid4(), username="bob")
ALICES_MODEL = Model(id=uuid.uuid4(), account_id=ALICE.id, name="alice_model")

NOBODY, OPERATOR = Viewer.public(), Viewer.operator()
AS_ALICE, AS_BOB = Viewer.participant(ALICE), Viewer.participant(BOB)


def test_only_the_owner_and_the_operator_see_a_models_private_data() -> None:
    assert owns(AS_ALICE, ALICES_MODEL) and owns(OPERATOR, ALICES_MODEL)
    assert not owns(AS_BOB, ALICES_MODEL)
    assert not owns(NOBODY, ALICES_MODEL)


def test_a_participant_never_sees_another_participants_submission() -> None:
    submission = Submission(id=uuid.uuid4(), model=ALICES_MODEL, filename="p.csv")
    assert submission_visible(AS_ALICE, submission)
    assert submission_visible(OPERATOR, submission)
    assert not submission_visible(AS_BOB, submission)
    assert not submission_visible(NOBODY, submission)


def test_a_participant_never_sees_another_participants_diagnostics() -> None:
    report = Diagnostics(id=uuid.uuid4(), model=ALICES_MODEL)
    assert diagnostics_visible(AS_ALICE, report)
    assert diagnostics_visible(OPERATOR, report)
    assert not diagnostics_visible(AS_BOB, report)
    assert not diagnostics_visible(NOBODY, report)


@pytest.mark.parametrize(
    ("filename", "key", "visible"),
    [
        ("train.parquet", "datasets/v1/train.parquet", True),
        ("live_3.parquet", "datasets/v1/live_3.parquet", True),
        ("targets.parquet", "datasets/v1/targets.parquet", False),  # the operator's half
        ("holdout.parquet", "datasets/v1/holdout.parquet", False),
        ("id_map.parquet", "datasets/v1/id_map.parquet", False),
        ("train.parquet", "operator/v1/train.parquet", False),  # kept under the operator's key
        ("train.parquet", "datasets/v1/holdout.parquet", False),  # a name hiding a hidden file
    ],
)
def test_hidden_dataset_files_are_never_listed_or_signed(
    filename: str, key: str, visible: bool
) -> None:
    row = DatasetFile(version="v1", filename=filename, storage_key=key, size=1, sha256="0" * 64)
    assert dataset_file_visible(row, frozenset()) is visible
    assert dataset_file_visible(row, frozenset({"v2"})) is visible  # another version closed


@pytest.mark.parametrize(
    ("filename", "visible"),
    [
        ("train.parquet", True),
        ("validation.parquet", True),
        ("features.json", True),
        ("validation_example_preds.parquet", True),
        ("live.parquet", False),
        ("live_3.parquet", False),
        ("live_example_preds.parquet", False),
        ("live_benchmark_models.parquet", False),
        ("live_benchmark_models_3.parquet", False),
        ("numerai_tournament_data.csv", False),  # 2017: its live rows among the others
        ("numerai_tournament_data_3.csv", False),
    ],
)
def test_a_closed_live_versions_live_files_are_never_listed_or_signed(
    filename: str, visible: bool
) -> None:
    row = DatasetFile(
        version="v1", filename=filename, storage_key=f"v1/{filename}", size=1, sha256="0" * 64
    )
    assert dataset_file_visible(row, frozenset({"v1"})) is visible
    assert live_key_closed(f"v1/{filename}", frozenset({"v1"})) is not visible
    assert live_key_closed(f"prefix/v1/{filename}", frozenset({"v1"})) is not visible
    assert not live_key_closed(f"v2/{filename}", frozenset({"v1"}))


def test_an_operator_key_is_never_served() -> None:
    assert servable_key("datasets/v1/train.parquet")
    assert not servable_key("operator/targets/round_1.parquet")
    assert not servable_key("targets.parquet")
    assert not servable_key("datasets/v1/id_map.parquet")


def test_hidden_holdout_scores_are_the_operators() -> None:
    assert score_visible("corr", NOBODY) and score_visible("corr", AS_ALICE)
    assert not score_visible("test_logloss", NOBODY)
    assert not score_visible("test_logloss", AS_ALICE)
    assert score_visible("test_logloss", OPERATOR)


@pytest.mark.parametrize(
    ("status", "visible"),
    [
        (RoundStatus.OPEN, False),
        (RoundStatus.CLOSED, True),
        (RoundStatus.SCORING, True),
        (RoundStatus.RESOLVED, True),
    ],
)
def test_an_open_round_shows_no_scores(status: RoundStatus, visible: bool) -> None:
    assert scores_visible(Round(number=1, status=status)) is visible
