"""`scripts/check`, the README's test command: it installs the system packages the tests
need and the machine lacks (with apt, as root or through sudo; anvil with npm), then runs the
whole check. Run here with stand-ins for `apt-get`, `sudo`, `id`, `uv` and `npm` (and the real
`env`) on a PATH that has no Chromium; anvil is taken as installed unless a test says not."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / "scripts" / "check"
STAND_IN = '#!/bin/bash\necho "${0##*/} $*" >> "$CALLS"\n'


def _check(
    tmp_path: Path,
    *,
    user: int,
    sudo: bool = True,
    apt: bool = True,
    npm: bool = False,
    check: Path = CHECK,
    bwrap: bool = True,
    **env: str,
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run the script with a PATH of stand-ins only; what it answered and what it ran."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tools = {"uv": STAND_IN, "id": f"#!/bin/bash\necho {user}\n"}
    if npm:
        tools["npm"] = STAND_IN
    if bwrap:
        tools["bwrap"] = STAND_IN
    if apt:
        tools["apt-get"] = STAND_IN
    if sudo:  # runs what it is given, as a real sudo would once the password is right
        tools["sudo"] = STAND_IN + '"$@"\n'
    for name, text in tools.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (bin_dir / "env").symlink_to("/usr/bin/env")
    calls = tmp_path / "calls"
    done = subprocess.run(
        ["/bin/bash", str(check), "-k", "demo"],
        env={
            "PATH": str(bin_dir),
            "CALLS": str(calls),
            "CROWDQUANT_TEST_ANVIL": "/opt/anvil",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, calls.read_text().splitlines() if calls.exists() else []


POSTGRES = {"CROWDQUANT_TEST_POSTGRES_URL": "postgresql://tests@localhost/tests"}
RUN = [  # the environment, its libraries compiled once, then the check in it
    "uv sync --locked --compile-bytecode --quiet",
    "uv run --locked scripts/test -k demo",
]


def test_as_root_it_installs_the_missing_chromium_then_runs_the_check(tmp_path: Path) -> None:
    done, calls = _check(tmp_path, user=0, **POSTGRES)
    assert done.returncode == 0, done.stderr
    assert calls == [
        "apt-get update",
        "apt-get install -y chromium",
        *RUN,
    ]


def test_it_installs_bubblewrap_for_the_model_sandbox_when_missing(tmp_path: Path) -> None:
    done, calls = _check(tmp_path, user=0, bwrap=False, CROWDQUANT_TEST_CHROMIUM="/c", **POSTGRES)
    assert done.returncode == 0, done.stderr
    assert calls == [
        "apt-get update",
        "apt-get install -y bubblewrap",
        *RUN,
    ]


def test_as_a_user_it_installs_through_sudo(tmp_path: Path) -> None:
    done, calls = _check(tmp_path, user=1000, **POSTGRES)
    assert done.returncode == 0, done.stderr
    assert calls[0] == "sudo apt-get update" and calls[-1] == "uv run --locked scripts/test -k demo"
    assert "sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium" in calls


@pytest.mark.parametrize("user", [0, 1000])
def test_nothing_is_installed_when_nothing_is_missing(tmp_path: Path, user: int) -> None:
    done, calls = _check(tmp_path, user=user, CROWDQUANT_TEST_CHROMIUM="/opt/chrome", **POSTGRES)
    assert done.returncode == 0, done.stderr
    assert calls == RUN


def test_without_root_or_sudo_it_names_what_to_install_and_runs_nothing(tmp_path: Path) -> None:
    done, calls = _check(tmp_path, user=1000, sudo=False, **POSTGRES)
    assert done.returncode == 1
    assert "the tests need chromium: as root, apt-get install chromium" in done.stderr
    assert calls == []


def test_without_apt_it_names_the_packages_and_runs_nothing(tmp_path: Path) -> None:
    done, calls = _check(tmp_path, user=0, apt=False, **POSTGRES)
    assert done.returncode == 1
    assert "the tests need chromium (Debian's packages): install them" in done.stderr
    assert calls == []


def _bare_checkout(tmp_path: Path, anvil: str | None) -> Path:
    """A copy of the script in a checkout of its own, with anvil `anvil` installed there."""
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    check = checkout / "scripts" / "check"
    check.write_text(CHECK.read_text())
    if anvil is not None:
        package = checkout / ".evm-node" / "node_modules" / "@foundry-rs" / "anvil-linux-amd64"
        package.mkdir(parents=True)
        (package / "package.json").write_text(f'{{"name": "x", "version": "{anvil}"}}')
    return check


@pytest.mark.parametrize("installed", [None, "1.6.0"])
def test_it_installs_the_pinned_anvil_with_npm_into_the_checkout(
    tmp_path: Path, installed: str | None
) -> None:
    check = _bare_checkout(tmp_path, installed)
    done, calls = _check(
        tmp_path, user=0, npm=True, check=check, CROWDQUANT_TEST_ANVIL="",
        CROWDQUANT_TEST_CHROMIUM="/opt/chrome", **POSTGRES,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert calls == [
        "npm install --prefix .evm-node --no-audit --no-fund --no-save --loglevel=error "
        "@foundry-rs/anvil-linux-amd64@1.7.1",
        *RUN,
    ]


def test_the_pinned_anvil_already_there_is_kept(tmp_path: Path) -> None:
    check = _bare_checkout(tmp_path, "1.7.1")
    done, calls = _check(
        tmp_path, user=0, npm=True, check=check, CROWDQUANT_TEST_ANVIL="",
        CROWDQUANT_TEST_CHROMIUM="/opt/chrome", **POSTGRES,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert calls == RUN


def test_without_npm_it_installs_npm_with_apt_first(tmp_path: Path) -> None:
    check = _bare_checkout(tmp_path, None)
    done, calls = _check(
        tmp_path, user=0, check=check, CROWDQUANT_TEST_ANVIL="",
        CROWDQUANT_TEST_CHROMIUM="/opt/chrome", **POSTGRES,
    )  # fmt: skip
    assert calls[:2] == ["apt-get update", "apt-get install -y npm"]
    assert done.returncode != 0  # the stand-in apt-get installed no npm to run


def test_ci_runs_the_readme_command() -> None:
    assert "exec scripts/check" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "python3 -m pip install uv && scripts/check" in readme
    assert os.access(CHECK, os.X_OK)
