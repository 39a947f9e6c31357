"""Past tournaments and the round page over real rounds, on both backends: the "Results"
summaries newest first, rounds in progress with their state and countdown, a round's
day-by-day scores, its results and ranked payouts (2017 rules too), 404s, and no hidden
metric anywhere."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from crowdquant.db.models import (
    Model,
    Round,
    RoundResult,
    Rules,
    Submission,
    SubmissionCheck,
    SubmissionStatus,
    Tournament,
)
from crowdquant.db.session import transaction
from crowdquant.tournament.leaderboard import Duplicate, RoundRow
from crowdquant.tournament.submissions import counting_submission
from crowdquant.web.rounds import scores_table

from .site import Site
from .test_leaderboard import (
    CLASSIC_SCORES,
    Played,
    assert_nothing_hidden,
    by_name,
    nmr_text,
    played,
    played_2017,
    table,
)


def results(site: Site, world: Played) -> dict[int, RoundResult]:
    numbers = {round_id: number for number, round_id in world.rounds.items()}
    with transaction(site.sessions) as session:
        rows = list(session.scalars(select(RoundResult)))
        session.expunge_all()
    return {numbers[row.round_id]: row for row in rows if row.round_id in numbers}


def test_past_tournaments_list_results_and_rounds_in_progress_with_their_scores(
    site: Site,
) -> None:
    world = played(site)
    recorded = results(site, world)
    page = site.browser().get("/rounds?tournament=8")
    assert page.status_code == 200
    headers, rows = table(page.text, "Results of tournament 8")
    assert headers == [
        "Round",
        "Participants",
        "Controlling capital",
        "USD paid out",
        "NMR paid out",
        "NMR burned",
        "Resolved",
    ]
    summaries = by_name(headers, rows, column=0)
    assert list(summaries) == ["2", "1"]  # newest first; rounds 3 and 4 are not resolved
    first = summaries["1"]
    assert (first["Participants"].value, first["Controlling capital"].value) == ("3", "3")
    assert first["NMR paid out"].value == str(recorded[1].nmr_paid) == str(55 * 10**17)
    assert first["NMR burned"].text == nmr_text(recorded[1].nmr_burned) == "1.05 NMR"
    assert first["USD paid out"].text == "$0.00"
    assert first["Resolved"].text == f"{recorded[1].resolved_at:%Y-%m-%d %H:%M} UTC"
    assert summaries["2"]["Participants"].value == "2"  # alice_b sat round 2 out
    in_progress = page.text[page.text.index("Rounds in progress") : page.text.index("<h2>Results")]
    assert in_progress.index('href="/rounds/8/4"') < in_progress.index('href="/rounds/8/3"')
    assert '<span class="state open">open</span>' in in_progress
    assert '<span class="state scoring">scoring</span>' in in_progress
    assert "data-countdown=" in in_progress  # round 4 is open now
    assert_nothing_hidden(page.text)
    assert site.browser().get("/rounds").text.count("Results of tournament 8") == 1  # default

    scoring = site.browser().get("/rounds/8/3")
    assert scoring.status_code == 200
    assert '<span class="state scoring">scoring</span>' in scoring.text
    assert "Scored through day 1" in scoring.text and "Latest scores (day 1)" in scoring.text
    assert "Results" not in scoring.text
    headers, rows = table(scoring.text, "Scores of round 3")
    latest = by_name(headers, rows)
    assert list(latest) == ["alice_a", "bob_model"]
    assert float(latest["alice_a"]["CORR"].value or "nan") == CLASSIC_SCORES[3]["alice_a"]["corr"]
    assert_nothing_hidden(scoring.text)

    opened = site.browser().get("/rounds/8/4")
    assert '<span class="state open">open</span>' in opened.text
    assert 'class="countdown" data-countdown="' in opened.text
    assert "Scores appear once the round closes." in opened.text


def test_a_resolved_round_shows_its_results_payouts_and_final_scores(site: Site) -> None:
    world = played(site)
    payouts = world.payouts(site)
    page = site.browser().get("/rounds/8/1")
    assert page.status_code == 200
    text = page.text
    assert "Tournament 8 · Round 1 Results" in text and "This round has resolved." in text
    assert '<div class="stat" data-value="3">3</div>' in text  # participants and stakers
    headers, rows = table(text, "Payouts of round 1")
    assert headers == ["#", "Model", "Live CORR", "Round USD", "Round NMR", "Consistency"]
    paid = by_name(headers, rows)
    assert list(paid) == ["alice_a", "bob_model", "alice_b"]  # by final CORR
    assert [row[0].value for row in rows] == ["1", "2", "3"]
    for name in paid:
        assert paid[name]["Round NMR"].value == str(payouts[(1, name)].nmr)
        assert float(paid[name]["Live CORR"].value or "nan") == CLASSIC_SCORES[1][name]["corr"]
    assert paid["alice_a"]["Round NMR"].text == "3.9 NMR"
    assert paid["alice_b"]["Round NMR"].text == "-1.05 NMR"
    assert paid["bob_model"]["Consistency"].text == "50.00%"
    headers, rows = table(text, "Scores of round 1")
    assert headers == ["#", "Model", "CORR", "MMC", "CORR percentile", "Late"]
    assert "Final scores (day 3)" in text and "Scored through day 3." in text
    assert '<li class="latest">day 3</li>' in text
    headers, rows = table(text, "Score configs of round 1")
    assert headers[:5] == ["Score", "Version", "Canon", "Pays", "Multiplier"]
    configs = by_name(headers, rows, column=0)
    assert list(configs) == ["CORR", "MMC", "BMC", "FNC"]
    assert [configs[name]["Pays"].text for name in configs] == ["pays", "pays", "", ""]
    assert configs["CORR"]["Canon"].text == "canon"
    with transaction(site.sessions) as session:
        round_ = session.get(Round, world.rounds[1])
        assert round_ is not None
        rule = round_.payout_rule
    assert configs["CORR"]["Multiplier"].text == rule["corr_multiplier"]
    assert configs["MMC"]["Multiplier"].text == rule["mmc_multiplier"]
    assert configs["CORR"]["Clip"].text == rule["clip"]
    assert configs["CORR"]["Hurdle"].text == rule["hurdle"] == "0.001"
    assert configs["FNC"]["Multiplier"].text == "-"
    assert configs["FNC"]["Hurdle"].text == "-"
    assert_nothing_hidden(text)
    operator = site.logged_in(site.operator).get("/rounds/8/1")  # public pages, even for her
    assert "Log out" in operator.text and "Payouts of round 1" in operator.text
    assert_nothing_hidden(operator.text)


FIGURES = {
    # name: (validation logloss, consistency) of its counting upload
    "sharp": (0.689125, 0.75),
    "steady": (0.690375, 0.5),
    "loser": (0.695625, 0.25),
}
TEST_LOGLOSS = 0.271828  # the operator's: on no public page


def add_upload_figures(site: Site, world: Played) -> None:
    """Each model's counting upload to round 1 gets its 2017 figures (as an upload to a round
    published with 2017 files would), and an earlier upload other, lower, ones."""
    now = site.clock.now()
    with transaction(site.sessions) as session:
        round_ = session.get(Round, world.rounds[1])
        assert round_ is not None
        for name, model_id in world.models.items():
            model = session.get(Model, model_id)
            assert model is not None
            counting = counting_submission(session, round_, model)
            assert counting is not None
            loss, consistency = FIGURES[name]
            values = {
                "validation_logloss": loss,
                "consistency": consistency,
                "originality": 1.0,
                "concordance": 1.0,
                "test_logloss": TEST_LOGLOSS,
            }
            session.add_all(
                SubmissionCheck(
                    submission_id=counting.id, metric=metric, value=value, computed_at=now
                )
                for metric, value in values.items()
            )
            # an older valid upload of the same model does not count: its figures are not shown
            older = Submission(
                model_id=model.id,
                round_id=round_.id,
                filename="old.csv",
                file_key=counting.file_key,
                status=SubmissionStatus.VALID,
                late=False,
                n_rows=counting.n_rows,
                created_at=counting.created_at - timedelta(minutes=1),
                validated_at=counting.created_at - timedelta(minutes=1),
            )
            session.add(older)
            session.flush()
            session.add(
                SubmissionCheck(
                    submission_id=older.id, metric="consistency", value=0.125, computed_at=now
                )
            )


def test_a_2017_round_ranks_by_live_logloss_with_usd_and_nmr(site: Site) -> None:
    world = played_2017(site)
    add_upload_figures(site, world)
    payouts = world.payouts(site)
    recorded = results(site, world)[1]
    page = site.browser().get("/rounds/11/1")
    assert page.status_code == 200
    assert "Tournament 11 · Round 1 Results" in page.text
    summary = page.text[page.text.index('class="grid results"') : page.text.index("<h3>Payouts")]
    for label, value in (
        ("Participants", recorded.participants),
        ("Controlling capital", recorded.stakers),
        ("USD paid out", recorded.usd_paid),
        ("NMR paid out", recorded.nmr_paid),
    ):
        assert f'<div class="muted">{label}</div><div class="stat" data-value="{value}">' in summary
    assert f"{recorded.resolved_at:%Y-%m-%d %H:%M} UTC" in summary
    assert recorded.usd_paid > 0 and recorded.participants == 3
    headers, rows = table(page.text, "Payouts of round 1")
    assert headers == [
        "#",
        "Model",
        "Live Logloss",
        "Validation Logloss",
        "Round USD",
        "Round NMR",
        "Consistency",
    ]
    paid = by_name(headers, rows)
    assert list(paid) == ["sharp", "steady", "loser"]
    assert [row[0].value for row in rows] == ["1", "2", "3"]
    assert paid["sharp"]["Live Logloss"].text == "0.680000"
    for name, (loss, consistency) in FIGURES.items():
        assert paid[name]["Validation Logloss"].text == f"{loss:.6f}"
        assert paid[name]["Consistency"].text == f"{consistency:.2%}"
        assert paid[name]["Round NMR"].value == str(payouts[(1, name)].nmr)
        assert paid[name]["Round USD"].value == str(payouts[(1, name)].usd)
    assert int(paid["sharp"]["Round USD"].value or "0") > 0
    assert paid["loser"]["Round NMR"].text == "-100 NMR"  # a losing stake is burned
    headers, rows = table(page.text, "Scores of round 1")
    assert "Originality" in headers and "Logloss" in headers
    scores = by_name(headers, rows)
    assert scores["sharp"]["Originality"].text == "✓" and scores["loser"]["Originality"].text == "✗"
    assert_nothing_hidden(page.text)
    assert str(TEST_LOGLOSS) not in page.text and "0.2718" not in page.text
    listing = site.browser().get("/rounds?tournament=11")
    headers, rows = table(listing.text, "Results of tournament 11")
    assert int(by_name(headers, rows, column=0)["1"]["USD paid out"].value or "0") > 0


def test_unknown_rounds_are_404(site: Site) -> None:
    for path in ("/rounds/8/99", "/rounds/99/1", "/rounds/8/abc", "/rounds/8/0", "/rounds/8/²"):
        missing = site.browser().get(path)
        assert missing.status_code == 404, path
        assert "<h1>404</h1>" in missing.text


def test_near_duplicates_are_flagged_in_the_round_table() -> None:
    tournament = Tournament(number=8, rules=Rules.CLASSIC)
    rows = [
        RoundRow(1, uuid.uuid4(), "alice_a", {"corr": 0.02}, {"corr": 1.0}, 3, False),
        RoundRow(
            2,
            uuid.uuid4(),
            "bob",
            {"corr": 0.01},
            {"corr": 0.5},
            3,
            False,
            Duplicate("carl", False),
        ),
        RoundRow(
            None, uuid.uuid4(), "alice_b", {}, {}, 3, False, Duplicate("alice_a", same_account=True)
        ),
    ]
    columns, cells = scores_table(tournament, rows)
    assert columns[-1].label == "Duplicate"
    assert [row[-1].text for row in cells] == [
        "",
        "like carl (another account)",
        "copy of alice_a: counted once",
    ]
    plain = scores_table(tournament, rows[:1])[0]
    assert "Duplicate" not in [column.label for column in plain]
