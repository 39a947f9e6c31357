"""The fund in the operator's section: the backtest reports `crowdquant fund backtest`
writes, listed and shown to operators only, and the live equity of each tournament."""

from __future__ import annotations

from pathlib import Path

from crowdquant.fund.report import write_report
from crowdquant.settings import Settings

from ..fund.test_report import result
from .site import Site
from .test_operator import log_in

TITLE = "crowdquant fund backtest · v1 · validation"


def _report(tmp_path: Path) -> None:
    reports = Settings(home=tmp_path / "home").fund_reports_dir
    curves = [result("meta model", 1), result("example model", 2)]
    write_report(curves, reports / "v1", title=TITLE, context={"dataset version": "v1"})


def test_the_operator_sees_the_reports_and_each_one_as_written(site: Site, tmp_path: Path) -> None:
    browser = log_in(site, "olivia")
    empty = browser.get("/operator/fund")
    assert empty.status_code == 200 and "No backtest report yet" in empty.text
    assert "no day booked yet" in empty.text  # tournament 8's fund has no book yet

    _report(tmp_path)
    page = browser.get("/operator/fund")
    assert TITLE in page.text
    assert "meta model" in page.text and "example model" in page.text
    assert "Sharpe" in page.text and "max drawdown" in page.text
    shown = browser.get("/operator/fund/v1/report.html")
    assert shown.status_code == 200
    written = (tmp_path / "home" / "fund" / "v1" / "report.html").read_text()
    assert shown.text == written and "data:image/png;base64," in shown.text
    for missing in ("/operator/fund/v2/report.html", "/operator/fund/..%2Fv1/report.html"):
        assert browser.get(missing).status_code == 404, missing


def test_participants_and_visitors_see_no_report(site: Site, tmp_path: Path) -> None:
    _report(tmp_path)
    participant = site.signed_up("mallory")
    for path in ("/operator/fund", "/operator/fund/v1/report.html"):
        answer = participant.get(path)
        assert answer.status_code == 403 and TITLE not in answer.text
        visitor = site.browser().get(path)
        assert visitor.url.path == "/login"
