"""The side-channel checklist passes on real builds and fails on doctored ones."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from crowdquant.data.audit import AuditInput
from crowdquant.data.audit.side_channels import Check, checklist
from crowdquant.data.panel import Panel

from .conftest import build_input, config, synthetic_panel


@pytest.fixture(scope="module")
def panel() -> Panel:
    return synthetic_panel()


@pytest.fixture(scope="module")
def data(panel: Panel) -> AuditInput:
    return build_input(panel, config())


def _failed(checks: list[Check]) -> set[str]:
    return {c.name for c in checks if not c.passed}


def _doctor(data: AuditInput, change: object) -> AuditInput:
    frames = {split: change(frame.copy()) for split, frame in data.frames.items()}  # type: ignore[operator]
    return replace(data, frames=frames)


def test_a_real_build_passes_every_check(data: AuditInput) -> None:
    checks = checklist(data)
    assert len(checks) >= 10
    assert _failed(checks) == set(), [c.detail for c in checks if not c.passed]


def test_ids_replaced_by_tickers_fail(data: AuditInput) -> None:
    ticker = data.id_map.set_index("id")["ticker"]
    doctored = _doctor(data, lambda f: f.set_axis(pd.Index(ticker.loc[f.index], name="id")))
    # keep the ground truth reachable under the new ids (the first era a ticker appears in)
    truth = data.id_map.drop_duplicates("ticker").assign(id=lambda m: m["ticker"])
    failed = _failed(checklist(replace(doctored, id_map=truth)))
    assert {"id_format", "id_unique", "no_tickers"} <= failed


def test_rows_sorted_by_ticker_fail(data: AuditInput) -> None:
    ticker = data.id_map.set_index("id")["ticker"]

    def by_ticker(frame: pd.DataFrame) -> pd.DataFrame:
        order = pd.DataFrame({"era": frame["era"], "ticker": ticker.loc[frame.index].to_numpy()})
        return frame.iloc[np.lexsort((order["ticker"].to_numpy(), order["era"].to_numpy()))]

    failed = _failed(checklist(_doctor(data, by_ticker)))
    assert {"row_order_vs_ticker", "row_order_stable"} <= failed
    assert "id_order_vs_ticker" not in failed


def test_ids_ordered_like_tickers_fail(data: AuditInput) -> None:
    id_map = data.id_map.copy()
    # re-issue ids so that within each era their order is the tickers' order
    id_map["rank"] = id_map.groupby("era")["ticker"].rank(method="first").astype(int)
    new = {
        old: f"n{int(era):07x}{rank:08x}"  # still 'n' + 15 hex
        for old, era, rank in zip(id_map["id"], id_map["era"], id_map["rank"], strict=True)
    }
    doctored = _doctor(data, lambda f: f.set_axis(pd.Index([new[i] for i in f.index], name="id")))
    id_map["id"] = id_map["id"].map(new)
    failed = _failed(checklist(replace(doctored, id_map=id_map.drop(columns="rank"))))
    assert "id_order_vs_ticker" in failed
    assert "id_format" not in failed


def test_the_full_universe_in_every_era_fails(panel: Panel) -> None:
    whole = build_input(panel, config(subsample=None))
    failed = _failed(checklist(whole))
    assert failed == {"universe_size"}


def test_missing_values_dates_and_real_names_fail(data: AuditInput) -> None:
    first = data.features[0]
    with_nan = _doctor(
        data, lambda f: f.assign(**{first: f[first].astype("float32").where(f.index != f.index[0])})
    )
    assert _failed(checklist(with_nan)) == {"no_missing_features"}

    date_of = data.id_map.set_index("id")["date"]
    dated = _doctor(data, lambda f: f.assign(when=date_of.loc[f.index].to_numpy()))
    assert "no_dates" in _failed(checklist(dated))

    real = data.feature_map[0]["source"]
    named = replace(
        _doctor(data, lambda f: f.rename(columns={first: real})),
        features=[real, *data.features[1:]],
    )
    assert "no_real_names" in _failed(checklist(named))
