"""Crash points: a process dies at the step `CROWDQUANT_CRASH_AT` names, and nowhere else."""

from __future__ import annotations

import pytest

from crowdquant import faults
from crowdquant.faults import CRASH_AT, CRASH_STEPS, crash_point


@pytest.fixture
def deaths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    died: list[str] = []
    monkeypatch.setattr(faults, "die", lambda: died.append("died"))
    return died


def test_unset_no_step_kills(monkeypatch: pytest.MonkeyPatch, deaths: list[str]) -> None:
    monkeypatch.delenv(CRASH_AT, raising=False)
    for step in CRASH_STEPS:
        crash_point(step)
    assert deaths == []


def test_only_the_named_step_kills(monkeypatch: pytest.MonkeyPatch, deaths: list[str]) -> None:
    monkeypatch.setenv(CRASH_AT, "resolution:before-commit")
    for step in sorted(CRASH_STEPS - {"resolution:before-commit"}):
        crash_point(step)
    assert deaths == []
    crash_point("resolution:before-commit")
    assert deaths == ["died"]


def test_a_step_not_named_in_the_list_is_refused(deaths: list[str]) -> None:
    with pytest.raises(ValueError, match="not one of the crash steps"):
        crash_point("resolution:somewhere")
