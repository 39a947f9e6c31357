"""The 2017 rounds: each round's numerai_training_data.csv and numerai_tournament_data.csv,
re-keyed per round; full tournament uploads checked per data type; live rows scored."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from argon2 import PasswordHasher
from sklearn.metrics import log_loss
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.data.release import DatasetVersion
from crowdquant.db.models import (
    Account,
    Cadence,
    DatasetFile,
    Model,
    Round,
    RoundScore,
    Rules,
    Submission,
    SubmissionCheck,
    SubmissionStatus,
)
from crowdquant.storage import LocalStorage, StorageError
from crowdquant.storage.interface import Content, StoredFile
from crowdquant.tournament.accounts import sign_up
from crowdquant.tournament.lifecycle import RoundLifecycle
from crowdquant.tournament.models import create_model
from crowdquant.tournament.rounds import (
    FeedPublisher,
    PublishFailed,
    open_round_now,
)
from crowdquant.tournament.rules2017_checks import rules2017_upload_checks
from crowdquant.tournament.rules2017_files import Rules2017Rounds, ids_key, tournament_rows
from crowdquant.tournament.scoring import FeedTargets, score_round
from crowdquant.tournament.submissions import counting_submission, submit_predictions
from crowdquant.tournament.tournaments import create_tournament, get_tournament
from crowdquant.tournament.visibility import servable_key

from .live_market import (
    KEYS,
    TUESDAY_NOON,
    build_dataset_version,
    local_storage,
    market_feed,
    stored_bytes,
)

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
WEEK, DAY = timedelta(weeks=1), timedelta(days=1)
LEGACY = 11


@pytest.fixture(scope="module")
def version(tmp_path_factory: pytest.TempPathFactory) -> DatasetVersion:
    return build_dataset_version(tmp_path_factory.mktemp("legacy"), version="v2")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(TUESDAY_NOON + timedelta(minutes=5))


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return local_storage(tmp_path / "files")


@pytest.fixture
def publisher(storage: LocalStorage, version: DatasetVersion) -> FeedPublisher:
    return FeedPublisher(market_feed(), storage, files_2017=Rules2017Rounds(version, KEYS))


@pytest.fixture
def session(sessions: sessionmaker[Session], clock: ManualClock) -> Iterator[Session]:
    with sessions() as session:
        create_tournament(session, clock, LEGACY, "legacy", Rules.RULES2017, Cadence.WEEKLY, "v2")
        session.commit()
        yield session


def open_next(session: Session, clock: ManualClock, publisher: FeedPublisher) -> Round:
    opened = open_round_now(session, clock, get_tournament(session, LEGACY), publisher)
    session.commit()
    return opened


def read_csv(storage: LocalStorage, key: str) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(stored_bytes(storage, key)), dtype={"id": str}, index_col="id")


def round_file(session: Session, storage: LocalStorage, filename: str) -> pd.DataFrame:
    row = session.scalar(
        select(DatasetFile).where(DatasetFile.version == "v2", DatasetFile.filename == filename)
    )
    assert row is not None, filename
    return read_csv(storage, row.storage_key)


# --- publishing ------------------------------------------------------------------------------


def test_each_round_publishes_its_2017_files(
    session: Session,
    clock: ManualClock,
    storage: LocalStorage,
    publisher: FeedPublisher,
    version: DatasetVersion,
) -> None:
    first = open_next(session, clock, publisher)
    training = round_file(session, storage, "numerai_training_data_1.csv")
    tournament = round_file(session, storage, "numerai_tournament_data_1.csv")
    n_features = len(version.features_json()["feature_sets"]["all"])
    columns = ["era", "data_type", *(f"feature{i}" for i in range(1, n_features + 1)), "target"]
    assert list(training.columns) == list(tournament.columns) == columns
    assert set(training["data_type"]) == {"train"}
    assert set(tournament["data_type"]) == {"validation", "test", "live"}
    features = pd.concat([training, tournament]).filter(like="feature")
    assert features.min().min() >= 0 and features.max().max() <= 1
    # the binary target on train and validation rows only
    known = pd.concat([training, tournament[tournament["data_type"] == "validation"]])
    assert set(known["target"].unique()) == {0, 1}
    assert tournament.loc[tournament["data_type"].isin(["test", "live"]), "target"].isna().all()
    # the rows: the version's train, validation and holdout, and the round's live era
    rows = tournament_rows(session, storage, first)
    assert rows is not None and rows.index.equals(tournament.index)
    assert len(training) == len(version.frame("train"))
    test_rows = rows[rows["data_type"] == "test"]
    assert set(test_rows["original_id"]) == set(version.frame("holdout").index)
    live = pd.read_parquet(io.BytesIO(stored_bytes(storage, "v2/live_1.parquet")))
    assert set(rows.loc[rows["data_type"] == "live", "original_id"]) == set(live.index)
    assert len(tournament[tournament["data_type"] == "live"]) == len(live)
    # every id re-keyed: none is a published id
    assert not set(tournament.index) & set(live.index)
    assert not set(rows["original_id"]) & set(tournament.index)
    # the id map is the operator's
    assert not servable_key(ids_key("v2", 1))
    assert storage.exists(ids_key("v2", 1))


def test_ids_are_fresh_each_round_and_not_linkable(
    session: Session, clock: ManualClock, storage: LocalStorage, publisher: FeedPublisher
) -> None:
    first = open_next(session, clock, publisher)
    clock.advance(WEEK)
    second = open_next(session, clock, publisher)
    assert second.number == 2
    files = {
        (kind, number): round_file(session, storage, f"numerai_{kind}_data_{number}.csv")
        for kind in ("training", "tournament")
        for number in (1, 2)
    }
    for kind in ("training", "tournament"):
        assert not set(files[kind, 1].index) & set(files[kind, 2].index), kind
    # the moving names point at the newest round's files
    assert round_file(session, storage, "numerai_tournament_data.csv").index.equals(
        files["tournament", 2].index
    )
    # the same version rows in both rounds: neither their ids nor their order link them
    maps = [tournament_rows(session, storage, found) for found in (first, second)]
    assert maps[0] is not None and maps[1] is not None
    fixed = [m[m["data_type"] != "live"].reset_index().set_index("original_id") for m in maps]
    paired = fixed[0].merge(fixed[1], left_index=True, right_index=True, suffixes=("_1", "_2"))
    assert len(paired) == len(fixed[0])
    assert abs(paired["id_1"].rank().corr(paired["id_2"].rank())) < 0.1
    # within an era the rows are ordered by id: a row's place there is drawn afresh too
    for n in (1, 2):
        place = files["tournament", n].index.get_indexer(paired[f"id_{n}"])
        paired[f"place_{n}"] = place
        within = paired.groupby("era_1")[f"place_{n}"].rank()
        assert within.equals(paired.groupby("era_1")[f"id_{n}"].rank())
    within = paired.groupby("era_1")[["place_1", "place_2"]].rank()
    assert abs(within["place_1"].corr(within["place_2"])) < 0.1


class FailingStorage(LocalStorage):
    """Fails writing the file named `failing`."""

    failing = "numerai_tournament_data_1.csv"

    def write(self, key: str, content: Content, *, max_bytes: int | None = None) -> StoredFile:
        if key.endswith("/" + self.failing):
            raise StorageError("the disk is full")
        return super().write(key, content, max_bytes=max_bytes)


@pytest.mark.parametrize("failing", ["numerai_tournament_data_1.csv", "live_1.parquet"])
def test_a_refused_publication_leaves_no_file(
    session: Session,
    clock: ManualClock,
    tmp_path: Path,
    version: DatasetVersion,
    failing: str,
) -> None:
    storage = FailingStorage(tmp_path / "failing", fsync=False)
    storage.failing = failing
    publisher = FeedPublisher(market_feed(), storage, files_2017=Rules2017Rounds(version, KEYS))
    with pytest.raises(PublishFailed, match="the disk is full"):
        open_next(session, clock, publisher)
    session.rollback()
    assert storage.list() == []
    assert session.scalars(select(DatasetFile)).all() == []
    assert session.scalars(select(Round)).all() == []


def test_files_of_another_dataset_version_are_refused(
    session: Session, clock: ManualClock, storage: LocalStorage, publisher: FeedPublisher
) -> None:
    create_tournament(session, clock, 12, "other", Rules.RULES2017, Cadence.WEEKLY, "v3")
    with pytest.raises(PublishFailed, match="from dataset version 'v2', not the tournament's"):
        open_round_now(session, clock, get_tournament(session, 12), publisher)
    session.rollback()
    assert storage.list() == []


def test_a_classic_tournament_publishes_no_2017_files(
    session: Session, clock: ManualClock, storage: LocalStorage, publisher: FeedPublisher
) -> None:
    create_tournament(session, clock, 8, "classic", Rules.CLASSIC, Cadence.DAILY, "v1")
    open_round_now(session, clock, get_tournament(session, 8), publisher)
    session.commit()
    assert sorted(f.key for f in storage.list()) == ["v1/live_1.parquet"]


# --- uploads ---------------------------------------------------------------------------------


def full_upload(rows: pd.DataFrame, seed: int = 0) -> pd.Series:
    """A probability for every tournament row, in (0, 1)."""
    rng = np.random.default_rng(seed)
    return pd.Series(rng.uniform(0.3, 0.7, len(rows)).round(6), index=rows.index)


def as_csv(values: pd.Series, column: str = "probability") -> bytes:
    frame = values.rename(column).rename_axis("id").reset_index()
    return frame.to_csv(index=False).encode()


def new_account(session: Session, clock: ManualClock, name: str) -> tuple[Account, Model]:
    account = sign_up(session, clock, name, f"{name}@example.org", "x" * 10, hasher=CHEAP)
    model = create_model(session, clock, account, LEGACY, f"{name}_model")
    session.commit()
    return account, model


def upload(
    session: Session,
    clock: ManualClock,
    storage: LocalStorage,
    account: Account,
    model: Model,
    round_: Round,
    data: bytes,
) -> Submission:
    submission = submit_predictions(
        session,
        clock,
        storage,
        account,
        model.id,
        round_,
        "predictions.csv",
        data,
        live_ids=pd.Index(["unused"]),
    )
    session.commit()
    return submission


def with_probability(values: pd.Series, position: int, value: float) -> pd.Series:
    changed = values.copy()
    changed.iloc[position] = value
    return changed


def test_a_full_upload_is_accepted_and_wrong_ones_refused_with_what_is_wrong(
    session: Session, clock: ManualClock, storage: LocalStorage, publisher: FeedPublisher
) -> None:
    round_ = open_next(session, clock, publisher)
    rows = tournament_rows(session, storage, round_)
    assert rows is not None
    alice, model = new_account(session, clock, "alice")
    values = full_upload(rows)
    accepted = upload(session, clock, storage, alice, model, round_, as_csv(values))
    assert accepted.status is SubmissionStatus.VALID
    assert accepted.n_rows == len(rows)

    types = rows["data_type"]
    test_ids = types.index[types == "test"]
    live_ids = types.index[types == "live"]
    n_validation = int((types == "validation").sum())
    assert n_validation > 1000 and len(test_ids) > 500
    dropped = values.drop([*test_ids[:12], *live_ids[:3]])
    first_live = int(np.flatnonzero(types.to_numpy() == "live")[0])
    first_id = values.sort_index().index[0]
    train_id = round_file(session, storage, "numerai_training_data_1.csv").index[0]
    refusals = {
        "missing 12 test rows, 3 live rows": as_csv(dropped),
        "missing 1 live row": as_csv(values.drop(live_ids[-1:])),
        # a live-only file, as a classic round takes
        f"missing {n_validation} validation rows, {len(test_ids)} test rows": as_csv(
            values[live_ids]
        ),
        f"probability 1.2 at id '{values.index[first_live]}' is outside (0, 1); 1 live row": as_csv(
            with_probability(values, first_live, 1.2)
        ),
        f"probability 0 at id '{first_id}' is outside (0, 1)": as_csv(
            with_probability(values.sort_index(), 0, 0.0)
        ),
        "not rows of this round's tournament file": as_csv(
            pd.concat([values, pd.Series([0.5], index=[train_id])])
        ),
        "appear more than once": as_csv(pd.concat([values, values.iloc[:2]])),
        "have no probability": as_csv(with_probability(values, 0, np.nan)),
        "a 2017 round takes columns ['id', 'probability']": as_csv(values, "prediction"),
    }
    for expected, data in refusals.items():
        refused = upload(session, clock, storage, alice, model, round_, data)
        assert refused.status is SubmissionStatus.INVALID, expected
        assert refused.error is not None and expected in refused.error, refused.error
        # the accepted upload still counts
        found = counting_submission(session, round_, model)
        assert found is not None and found.id == accepted.id
    # only the accepted upload has figures
    checked = {row.submission_id for row in session.scalars(select(SubmissionCheck))}
    assert checked == {accepted.id}


def test_an_accepted_full_upload_is_scored_on_its_live_rows(
    session: Session, clock: ManualClock, storage: LocalStorage, publisher: FeedPublisher
) -> None:
    round_ = open_next(session, clock, publisher)
    rows = tournament_rows(session, storage, round_)
    assert rows is not None
    uploaded: dict[uuid.UUID, pd.Series] = {}
    for seed, name in enumerate(["alice", "bob"]):
        account, model = new_account(session, clock, name)
        values = full_upload(rows, seed)
        upload(session, clock, storage, account, model, round_, as_csv(values))
        uploaded[model.id] = values
    clock.set(round_.close_time + timedelta(minutes=1))
    RoundLifecycle(None, clock).close(session, round_)
    RoundLifecycle(None, clock).start_scoring(session, round_)
    session.commit()
    clock.advance(8 * DAY)
    assert score_round(session, clock, storage, round_, FeedTargets(market_feed())) is not None
    session.commit()

    stored = session.scalars(
        select(RoundScore).where(RoundScore.round_id == round_.id, RoundScore.metric == "logloss")
    ).all()
    day = max(row.day for row in stored)
    assert round_.market_date is not None
    era = market_feed().live_era(round_.number, round_.live_era, pd.Timestamp(round_.market_date))
    residual = market_feed().targets(era, day)["residual_return"].astype(np.float64)
    binary = (residual > residual.median()).astype(int)
    live = rows[rows["data_type"] == "live"]
    for row in (row for row in stored if row.day == day):
        values = uploaded[row.model_id].reindex(live.index)
        by_live_id = pd.Series(values.to_numpy(), index=live["original_id"].to_numpy())
        expected = log_loss(binary, by_live_id.reindex(binary.index))
        assert row.value == pytest.approx(expected, abs=1e-9)
    # the benchmark models' log-loss on the same day, kept beside each submission's
    models = pd.Series(live["benchmark"].to_numpy(), index=live["original_id"].to_numpy())
    benchmark = session.scalars(
        select(RoundScore).where(
            RoundScore.round_id == round_.id,
            RoundScore.metric == "benchmark_logloss",
            RoundScore.day == day,
        )
    ).all()
    assert {row.model_id for row in benchmark} == set(uploaded)
    for row in benchmark:
        assert row.value == pytest.approx(log_loss(binary, models.reindex(binary.index)))
    assert all(0.0 < value < 1.0 for value in models)


# --- the figures of an upload ------------------------------------------------------------------


def test_an_uploads_figures_are_computed_from_the_operators_targets(
    session: Session, clock: ManualClock, storage: LocalStorage, publisher: FeedPublisher
) -> None:
    round_ = open_next(session, clock, publisher)
    rows = tournament_rows(session, storage, round_)
    assert rows is not None
    alice, alice_model = new_account(session, clock, "alice")
    bob, bob_model = new_account(session, clock, "bob")
    carol, carol_model = new_account(session, clock, "carol")
    # alice leans towards the validation and test targets; bob copies her; carol is noise
    lean = rows["target"].astype("float64").fillna(0.5) - 0.5
    values = (0.5 + 0.2 * lean + full_upload(rows, 1) - 0.5).clip(0.05, 0.95).round(6)
    first = upload(session, clock, storage, alice, alice_model, round_, as_csv(values))
    copy = upload(session, clock, storage, bob, bob_model, round_, as_csv(values))
    noise = upload(
        session, clock, storage, carol, carol_model, round_, as_csv(full_upload(rows, 2))
    )

    found = rules2017_upload_checks(session, storage, first)
    assert found is not None
    validation = rows[rows["data_type"] == "validation"]
    expected = log_loss(validation["target"].astype(int), values[validation.index])
    assert found.checks.validation_logloss == pytest.approx(expected, abs=1e-9)
    by_era = pd.Series(
        {
            era: log_loss(group["target"].astype(int), values[group.index], labels=[0, 1])
            for era, group in validation.groupby("era")
        }
    )
    assert found.checks.consistency.n_eras == len(by_era)
    # each era is compared with the benchmark models' log-loss in that era
    benchmark = pd.Series(
        {
            era: log_loss(group["target"].astype(int), group["benchmark"], labels=[0, 1])
            for era, group in validation.groupby("era")
        }
    )
    assert found.checks.consistency.benchmark == pytest.approx(tuple(benchmark))
    assert found.checks.consistency.consistency == pytest.approx((by_era < benchmark).mean())
    test = rows[rows["data_type"] == "test"]
    assert found.checks.test_logloss == pytest.approx(
        log_loss(test["target"].astype(int), values[test.index]), abs=1e-9
    )
    assert found.checks.validation_logloss < np.log(2)
    # against the other accounts' uploads: the copy is not original, the noise is
    assert not found.originality.original  # bob's copy counts against alice too
    copied = rules2017_upload_checks(session, storage, copy)
    assert copied is not None and not copied.originality.original
    own = rules2017_upload_checks(session, storage, noise)
    assert own is not None and own.originality.original
    assert own.originality.compared_with == 2

    # what each upload was told (and the operator kept) when it arrived
    stored = {
        (row.submission_id, row.metric): row.value
        for row in session.scalars(select(SubmissionCheck))
    }
    assert stored[first.id, "originality"] == 1.0  # the first: nobody to copy
    assert stored[copy.id, "originality"] == 0.0
    assert stored[noise.id, "originality"] == 1.0
    assert stored[first.id, "test_logloss"] == pytest.approx(found.checks.test_logloss)
    assert stored[first.id, "validation_logloss"] == pytest.approx(expected, abs=1e-9)
    assert stored[first.id, "consistency"] == found.checks.consistency.consistency
    assert stored[first.id, "concordance"] in (0.0, 1.0)
    assert found.concordance is not None
    assert stored[first.id, "concordance"] == float(found.concordance.concordant)


def test_an_upload_unlike_itself_across_data_types_is_not_concordant(
    session: Session, clock: ManualClock, storage: LocalStorage, publisher: FeedPublisher
) -> None:
    round_ = open_next(session, clock, publisher)
    rows = tournament_rows(session, storage, round_)
    assert rows is not None
    assert set(rows["cluster"]) <= set(range(5)) and rows["cluster"].nunique() > 1
    dave, model = new_account(session, clock, "dave")
    values = full_upload(rows, 3)
    live = rows["data_type"] == "live"
    values[live.to_numpy()] = (values[live.to_numpy()] + 0.25).round(6)  # live far above
    submission = upload(session, clock, storage, dave, model, round_, as_csv(values))
    found = rules2017_upload_checks(session, storage, submission)
    assert found is not None and found.concordance is not None
    assert not found.concordance.concordant and found.concordance.score > 0.5
    stored = session.scalar(
        select(SubmissionCheck.value).where(
            SubmissionCheck.submission_id == submission.id, SubmissionCheck.metric == "concordance"
        )
    )
    assert stored == 0.0
