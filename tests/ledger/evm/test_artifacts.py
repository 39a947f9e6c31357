"""The checked-in ABI and bytecode are what the pinned compiler makes of the sources."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from crowdquant.cli import app
from crowdquant.ledger.evm.artifacts import BUILD, CONTRACTS, load_artifact

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["ledger", "compile-contracts", *args])
    return result.exit_code, " ".join(result.output.split())


def test_the_checked_in_contracts_match_a_fresh_compile(tmp_path: Path) -> None:
    code, output = _run("--build", str(tmp_path))
    assert code == 0, output
    for name in CONTRACTS:
        assert (tmp_path / f"{name}.json").read_text() == (BUILD / f"{name}.json").read_text()
        artifact = load_artifact(name)
        assert artifact.compiler == "vyper 0.4.3"
        assert artifact.bytecode.startswith("0x") and len(artifact.bytecode) > 1000
    assert _run("--check") == (0, f"the contracts in {BUILD} match their sources")


def test_check_names_a_stale_or_missing_contract(tmp_path: Path) -> None:
    token = tmp_path / "Token.json"
    token.write_text((BUILD / "Token.json").read_text().replace('"0x', '"0x00'))
    code, output = _run("--check", "--build", str(tmp_path))
    assert code == 1
    assert "stale or missing" in output and "Token, Tournament" in output
    assert not (tmp_path / "Tournament.json").exists()  # --check writes nothing
