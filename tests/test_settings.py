import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from crowdquant.settings import MIN_SECRET_LENGTH, Settings, secret_key_of


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


def test_the_first_run_keeps_a_random_secret_key_in_the_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CROWDQUANT_SECRET_KEY", raising=False)
    settings = Settings(home=tmp_path / "home")
    key = secret_key_of(settings)
    kept = tmp_path / "home" / "secret_key"
    assert kept.read_text().strip() == key and len(key) >= MIN_SECRET_LENGTH
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert secret_key_of(Settings(home=tmp_path / "home")) == key  # the same on every run
    assert secret_key_of(Settings(home=tmp_path / "other")) != key
    monkeypatch.setenv("CROWDQUANT_SECRET_KEY", "x" * 40)
    assert secret_key_of(Settings(home=tmp_path / "home")) == "x" * 40


def test_the_public_url_must_be_an_http_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROWDQUANT_PUBLIC_URL", "crowd.example")
    with pytest.raises(ValidationError, match="public_url"):
        Settings()
    monkeypatch.setenv("CROWDQUANT_PUBLIC_URL", "https://crowd.example/")
    assert str(Settings().public_url) == "https://crowd.example/"


def test_input_limits_are_read_and_must_be_positive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROWDQUANT_MAX_REQUEST_BYTES", "4096")
    monkeypatch.setenv("CROWDQUANT_GRAPHQL_MAX_DEPTH", "5")
    settings = Settings()
    assert (settings.max_request_bytes, settings.graphql_max_depth) == (4096, 5)
    monkeypatch.setenv("CROWDQUANT_GRAPHQL_MAX_COST", "0")
    with pytest.raises(ValidationError, match="graphql_max_cost"):
        Settings()


def test_upload_retention_is_read_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (Settings().keep_uploads_per_model, Settings().retention_files_per_sweep) == (5, 500)
    monkeypatch.setenv("CROWDQUANT_KEEP_UPLOADS_PER_MODEL", "0")
    monkeypatch.setenv("CROWDQUANT_RETENTION_FILES_PER_SWEEP", "20")
    assert (Settings().keep_uploads_per_model, Settings().retention_files_per_sweep) == (0, 20)
    monkeypatch.setenv("CROWDQUANT_RETENTION_FILES_PER_SWEEP", "0")
    with pytest.raises(ValidationError, match="retention_files_per_sweep"):
        Settings()
    assert Settings(retention_files_per_sweep=1).retention_scan_per_sweep == 1_000
    monkeypatch.setenv("CROWDQUANT_RETENTION_SCAN_PER_SWEEP", "50")
    assert Settings(retention_files_per_sweep=1).retention_scan_per_sweep == 50
    monkeypatch.setenv("CROWDQUANT_RETENTION_SCAN_PER_SWEEP", "0")
    with pytest.raises(ValidationError, match="retention_scan_per_sweep"):
        Settings(retention_files_per_sweep=1)


def test_webhook_networks_are_read_as_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    denied = {str(network) for network in Settings().webhook_denied_networks}
    assert {"127.0.0.0/8", "10.0.0.0/8", "169.254.0.0/16", "::1/128", "fe80::/10"} <= denied
    assert Settings().webhook_allowed_networks == []
    monkeypatch.setenv("CROWDQUANT_WEBHOOK_ALLOWED_NETWORKS", '["127.0.0.1/32", "fd00::/8"]')
    allowed = [str(network) for network in Settings().webhook_allowed_networks]
    assert allowed == ["127.0.0.1/32", "fd00::/8"]
    monkeypatch.setenv("CROWDQUANT_WEBHOOK_ALLOWED_NETWORKS", '["intranet"]')
    with pytest.raises(ValidationError, match="webhook_allowed_networks"):
        Settings()
