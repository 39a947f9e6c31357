from pathlib import Path

import pytest
from pydantic import ValidationError

from crowdquant.settings import Settings


def test_local_mode_has_working_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CROWDQUANT_HOME", raising=False)
    settings = Settings()
    assert settings.mode == "local"
    assert settings.datasets_dir == Path(".crowdquant/datasets")
    assert settings.keyfile.is_relative_to(settings.operator_dir)
    assert not settings.datasets_dir.is_relative_to(settings.operator_dir)


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CROWDQUANT_HOME", str(tmp_path))
    assert Settings().datasets_dir == tmp_path / "datasets"


def test_production_refuses_the_placeholder_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROWDQUANT_MODE", "production")
    with pytest.raises(ValidationError, match="CROWDQUANT_SECRET_KEY"):
        Settings()
    monkeypatch.setenv("CROWDQUANT_SECRET_KEY", "a-real-secret")
    assert Settings().mode == "production"


def test_database_defaults_to_sqlite_in_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CROWDQUANT_HOME", str(tmp_path))
    monkeypatch.delenv("CROWDQUANT_DATABASE_URL", raising=False)
    assert Settings().database == f"sqlite:///{tmp_path / 'crowdquant.db'}"
    monkeypatch.setenv("CROWDQUANT_DATABASE_URL", "postgresql://db.example/cq")
    assert Settings().database == "postgresql://db.example/cq"


def test_input_limits_are_read_and_must_be_positive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROWDQUANT_MAX_REQUEST_BYTES", "4096")
    monkeypatch.setenv("CROWDQUANT_GRAPHQL_MAX_DEPTH", "5")
    settings = Settings()
    assert (settings.max_request_bytes, settings.graphql_max_depth) == (4096, 5)
    monkeypatch.setenv("CROWDQUANT_GRAPHQL_MAX_COST", "0")
    with pytest.raises(ValidationError, match="graphql_max_cost"):
        Settings()
