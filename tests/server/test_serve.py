"""`serve` beyond this machine refuses a weak secret; its access log hides signatures."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from crowdquant.cli import app
from crowdquant.server.access_log import HIDDEN, HideSignatures
from crowdquant.server.serve import build_server, loopback
from crowdquant.settings import PLACEHOLDER_SECRET, Settings

STRONG = "k" * 40


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("CROWDQUANT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CROWDQUANT_SECRET_KEY", raising=False)
    monkeypatch.delenv("CROWDQUANT_DATABASE_URL", raising=False)
    return tmp_path / "home"


@pytest.mark.parametrize("secret", [PLACEHOLDER_SECRET, "short-but-not-empty"])
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7", "crowd.example"])
def test_a_public_bind_refuses_a_weak_secret(
    home: Path, monkeypatch: pytest.MonkeyPatch, host: str, secret: str
) -> None:
    monkeypatch.setenv("CROWDQUANT_SECRET_KEY", secret)
    with pytest.raises(ValueError, match="CROWDQUANT_SECRET_KEY"):
        build_server(Settings(), host=host, port=0, warn=print)
    assert not (home / "crowdquant.db").exists()  # refused before anything is set up


def test_serve_on_a_public_address_with_the_placeholder_exits_1(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROWDQUANT_SECRET_KEY", PLACEHOLDER_SECRET)
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 1
    assert "CROWDQUANT_SECRET_KEY" in result.output


def test_loopback_hosts() -> None:
    assert loopback("127.0.0.1") and loopback("::1") and loopback("localhost")
    assert not loopback("0.0.0.0") and not loopback("") and not loopback("10.0.0.1")


def test_the_access_log_never_shows_a_signature(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CROWDQUANT_SECRET_KEY", STRONG)
    server = build_server(Settings(), host="127.0.0.1", port=0, warn=print)
    with server.serving() as url:
        signed = f"{url}files/datasets/v1/live.parquet?expires=1&signature=SeCrEtSiGnAtUrE"
        httpx.get(signed, timeout=30)
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).splitlines()
    assert any("/files/datasets/v1/live.parquet" in line for line in lines), lines
    assert all("SeCrEtSiGnAtUrE" not in line for line in lines)
    assert any(f"signature={HIDDEN}" in line for line in lines)


@pytest.mark.usefixtures("home")
def test_serve_runs_uploaded_models_and_sends_webhooks_itself_by_default() -> None:
    server = build_server(Settings(webhook_max_attempts=7), host="127.0.0.1", port=0, warn=print)
    with server.serving():
        running = {thread.name for thread in threading.enumerate()}
    assert {"crowdquant-compute", "crowdquant-webhooks"} <= running
    assert server.compute is not None and server.compute.limits.wall_seconds == 600
    assert server.webhooks is not None and server.webhooks.policy.max_attempts == 7


def test_the_filter_hides_every_signature_and_nothing_else() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/f?signature=abc&x=1&signature=def", "1.1", 200),
        None,
    )
    assert HideSignatures().filter(record)
    assert record.getMessage() == (
        f'127.0.0.1:5 - "GET /f?signature={HIDDEN}&x=1&signature={HIDDEN} HTTP/1.1" 200'
    )


@pytest.mark.usefixtures("home")
def test_a_caller_that_polls_diagnostics_itself_gets_no_diagnostics_thread() -> None:
    """The simulator polls the diagnostics worker at moments of its simulated clock: no
    thread polls on real time beside it; a server left to itself runs the thread."""
    for background in (False, True):
        server = build_server(Settings(), host="127.0.0.1", port=0, warn=print)
        with server.in_process(diagnostics_thread=background):
            assert server.diagnostics.is_alive() is background
            assert server.diagnostics.poll() == 0  # nothing pending
        assert not server.diagnostics.is_alive()
