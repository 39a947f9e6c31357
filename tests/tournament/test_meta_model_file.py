"""`meta_model.parquet` for a version's validation eras: the blend until a resolved round's
live era is a validation era, then that round's real meta model there; on both backends."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.data.release import DatasetVersion
from crowdquant.db.models import Cadence, MetaModel, Round, RoundStatus, Rules
from crowdquant.db.session import transaction
from crowdquant.storage import LocalStorage
from crowdquant.tournament.datasets import get_dataset_file, round_file
from crowdquant.tournament.meta_model_file import (
    PublishedFiles,
    ValidationMetaModel,
    publish_meta_model,
)
from crowdquant.tournament.runtime import TournamentRuntime
from crowdquant.tournament.scheduler import Scheduler
from crowdquant.tournament.tournaments import create_tournament

from .live_market import build_dataset_version, local_storage, read_parquet

T0 = datetime(2026, 1, 6, 13, tzinfo=UTC)


@pytest.fixture(scope="module")
def version(tmp_path_factory: pytest.TempPathFactory) -> DatasetVersion:
    return build_dataset_version(tmp_path_factory.mktemp("meta"))


def _validation(version: DatasetVersion) -> pd.DataFrame:
    id_map = version.id_map()
    rows = id_map[id_map["data_type"] == "validation"]
    return rows.assign(id=rows["id"].astype(str)).set_index("id")


def _resolved_round(
    session: Session,
    storage: LocalStorage,
    tournament_id: object,
    number: int,
    era: str,
    tickers: list[str],
    round_tickers: dict[object, pd.Series],
) -> pd.Series:
    """A resolved round whose live era is `era`, with a stored meta model on ids of its own
    for `tickers` (its id → ticker map kept in `round_tickers`); the meta model by ticker."""
    round_ = Round(
        tournament_id=tournament_id,
        number=number,
        status=RoundStatus.RESOLVED,
        open_time=T0,
        close_staking_time=T0,
        close_time=T0,
        live_era=era,
        dataset_version="v1",
    )
    session.add(round_)
    session.flush()
    ids = [f"r{number}_{i}" for i in range(len(tickers))]
    meta = pd.Series([i / len(ids) for i in range(len(ids))], index=ids)
    buffer = io.BytesIO()
    meta.rename("meta_model").rename_axis("id").to_frame().to_parquet(buffer)
    key = f"operator/meta_{number}.parquet"
    storage.write(key, buffer.getvalue())
    session.add(
        MetaModel(
            round_id=round_.id,
            weighting="stake",
            weights={},
            storage_key=key,
            sha256=hashlib.sha256(buffer.getvalue()).hexdigest(),
            created_at=T0,
        )
    )
    session.flush()
    round_tickers[round_.id] = pd.Series(tickers, index=ids)
    return pd.Series(meta.to_numpy(), index=tickers)


@pytest.mark.parametrize("reused", [False, True], ids=["fresh", "reused"])
def test_meta_model_grows_as_rounds_resolve(
    sessions: sessionmaker[Session], version: DatasetVersion, tmp_path: Path, reused: bool
) -> None:
    """The same files whether each publication starts afresh or reuses what the last left
    (`PublishedFiles`, as the scheduler's publisher does)."""
    kept = PublishedFiles() if reused else None
    clock = ManualClock(T0)
    storage = local_storage(tmp_path / "files")
    validation = _validation(version)
    eras = sorted(validation["era"].unique())
    round_tickers: dict[object, pd.Series] = {}

    def tickers(round_: Round) -> pd.Series:
        return round_tickers[round_.id]

    with transaction(sessions) as session:
        tournament = create_tournament(
            session, clock, 8, "classic", Rules.CLASSIC, Cadence.DAILY, "v1"
        )
        first = publish_meta_model(session, clock, storage, version, tournament, tickers, kept)
    assert first.round_number == 0 and set(first.sources.values()) == {"blend"}
    benchmarks = pd.read_parquet(version.published / "validation_benchmark_models.parquet")
    benchmark_columns = sorted(c for c in benchmarks.columns if c != "era")
    assert benchmark_columns == ["v1_lgbm_ender20", "v1_lgbm_teager2b20"]
    assert first.blend_of == ["example", *benchmark_columns]
    blend = read_parquet(storage, "v1/meta_model_0.parquet")
    assert list(blend.columns) == ["numerai_meta_model"] and blend.index.name == "id"
    assert set(blend.index) == set(validation.index)
    example = version.example_predictions("validation")["prediction"].rename(index=str)
    inputs = [example, *(benchmarks[c].rename(index=str) for c in benchmark_columns)]
    eras_of = validation["era"].rename(index=str)
    ranked = pd.concat(
        [p.reindex(eras_of.index).groupby(eras_of).rank(pct=True) for p in inputs], axis=1
    ).mean(axis=1)
    pd.testing.assert_series_equal(
        blend["numerai_meta_model"].sort_index(), ranked.sort_index(), check_names=False
    )

    clock.advance(timedelta(days=30))
    with transaction(sessions) as session:
        tournament_id = tournament.id
        in_era = sorted(validation.loc[validation["era"] == eras[1], "ticker"])
        real = _resolved_round(session, storage, tournament_id, 3, eras[1], in_era, round_tickers)
        # a round whose live era is not a validation era
        _resolved_round(session, storage, tournament_id, 4, "9999", in_era, round_tickers)
        grown = publish_meta_model(session, clock, storage, version, tournament, tickers, kept)
    assert grown.round_number == 4
    assert grown.sources[eras[1]] == "round 3"
    assert {era: s for era, s in grown.sources.items() if era != eras[1]} == {
        era: "blend" for era in eras if era != eras[1]
    }
    newest = read_parquet(storage, "v1/meta_model_4.parquet")["numerai_meta_model"]
    in_era = validation[validation["era"] == eras[1]]
    expected = in_era["ticker"].map(real)
    pd.testing.assert_series_equal(
        newest.reindex(in_era.index), expected, check_names=False, check_index_type=False
    )
    other = validation.index[validation["era"] == eras[0]]
    pd.testing.assert_series_equal(
        newest.reindex(other), blend["numerai_meta_model"].reindex(other)
    )

    with transaction(sessions) as session:
        assert get_dataset_file(session, "v1", "meta_model.parquet").storage_key == (
            "v1/meta_model_4.parquet"
        )
        assert round_file(session, "v1", "meta_model.parquet", 2, False).storage_key == (
            "v1/meta_model_0.parquet"
        )
        manifest = json.loads(b"".join(storage.read("v1/meta_model_manifest_4.json")).decode())
        assert manifest["eras"][eras[1]] == "round 3" and manifest["blend_of"] == [
            "example",
            *benchmark_columns,
        ]
        # publishing again changes nothing
        again = publish_meta_model(session, clock, storage, version, tournament, tickers, kept)
        assert again == grown
        # a round resolved outside the validation eras: the same values, under its number
        _resolved_round(session, storage, tournament_id, 6, "9998", [], round_tickers)
        later = publish_meta_model(session, clock, storage, version, tournament, tickers, kept)
    assert later.round_number == 6 and later.sources == grown.sources
    assert b"".join(storage.read("v1/meta_model_6.parquet")) == b"".join(
        storage.read("v1/meta_model_4.parquet")
    )


def test_the_scheduler_publishes_it_when_a_round_resolves(
    sessions: sessionmaker[Session], version: DatasetVersion, tmp_path: Path
) -> None:
    clock = ManualClock(T0)
    storage = local_storage(tmp_path / "files")
    with transaction(sessions) as session:
        tournament = create_tournament(
            session, clock, 8, "classic", Rules.CLASSIC, Cadence.DAILY, "v1"
        )
        session.add(
            Round(
                tournament_id=tournament.id,
                number=5,
                status=RoundStatus.OPEN,
                open_time=T0,
                close_staking_time=T0 + timedelta(hours=1),
                close_time=T0 + timedelta(hours=1),
                resolve_time=T0 + timedelta(days=30),
                live_era="0001",
                dataset_version="v1",
            )
        )

    def no_tickers(round_: Round) -> pd.Series:
        raise AssertionError("no round's live era is a validation era here")

    runtime = TournamentRuntime(meta_model=ValidationMetaModel(version, no_tickers))
    scheduler = Scheduler(sessions, clock, {8: runtime}, storage=storage)
    clock.advance(timedelta(days=31))
    happened = [str(event) for event in scheduler.tick()]
    assert "round 5 of tournament 8 resolved" in happened
    assert not any("could not" in event for event in happened), happened
    with transaction(sessions) as session:
        assert get_dataset_file(session, "v1", "meta_model.parquet").storage_key == (
            "v1/meta_model_5.parquet"
        )
