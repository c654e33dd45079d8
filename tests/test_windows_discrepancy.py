"""Discrepancy reports: the vocabulary on realistic mail, linking at ingest, the agent's word,
and re-judging when a window moves or is cancelled."""

from __future__ import annotations

from pathlib import Path

import pytest

from db.maintenance import discrepancy
from db.maintenance.rule_settings import Settings
from tests.windows_helpers import desk, desk_json, drop_mail, ingest, ticket, write_config

PATTERNS = discrepancy.vocabulary(Settings())

POSITIVE = [
    "Hi,\n\nsince last night's maintenance my account balance is wrong: it shows EUR 1,200 "
    "less than on Friday. Please check.\n\nRegards,\nAnn",
    "Two deposits from 3 June are missing from my transaction history.",
    "After the update I see a duplicated transaction: the 250 USD transfer appears twice.",
    "I was charged twice for the same subscription this morning.",
    "The figures in my monthly statement don't match my own records any more.",
    "My positions look wrong, the AAPL holding is 10 shares lower than before the maintenance.",
    "I can't find my withdrawal from Tuesday anywhere.",
    "Subject line says it",
]
NEGATIVE = [
    "How do I reset my password? The link in the email has expired.",
    "Please send me the invoice for May.",
    "When will the new reporting feature be released?",
]
NEGATED = [
    "I checked everything after the maintenance: no discrepancies, the balance is correct.",
    "I don't see any missing transactions, thanks for the smooth update.",
    "If my balance is wrong after the window, who do I contact?",
    "Everything matches. There is no mismatch between the statement and the app.",
]
QUOTED = [
    "Thanks for letting us know, we will log out in time.\n\n"
    "> Afterwards, please verify your data and transactions, and report any discrepancy\n"
    "> to Valuit support immediately.\n> In the past some users saw a wrong balance.",
    "Noted, thank you.\n\nOn Mon, 1 Jun 2026 at 10:00, Valuit support <general@valuit.com> wrote:\n"
    "Duplicated transactions may appear for a few minutes after the window.",
    "Got it.\n\nAfterwards, please verify your data and transactions, and report any discrepancy "
    "to Valuit support immediately.",
    "Fine by us.\n\n-----Original Message-----\nFrom: Valuit\nMissing payments? Tell us.",
]


@pytest.mark.parametrize("text", POSITIVE[:-1])
def test_reports_in_several_phrasings(text: str) -> None:
    assert discrepancy.reports_discrepancy(text, PATTERNS)


@pytest.mark.parametrize("text", NEGATIVE + NEGATED + QUOTED)
def test_not_reports(text: str) -> None:
    assert not discrepancy.reports_discrepancy(text, PATTERNS)


def test_configured_vocabulary_adds_or_replaces() -> None:
    extra = discrepancy.vocabulary(Settings(vocabulary_extra=(r"\bsaldo\b",)))
    assert discrepancy.reports_discrepancy("Mein Saldo stimmt nicht", extra)
    assert discrepancy.reports_discrepancy(POSITIVE[0], extra)
    only = discrepancy.vocabulary(Settings(vocabulary=(r"\bsaldo\b",)))
    assert not discrepancy.reports_discrepancy(POSITIVE[0], only)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> Path:
    monkeypatch.setenv("DESK_NOW", "2026-06-01T10:00:00Z")
    monkeypatch.setenv("DESK_USER", "olga")
    path = write_config(tmp_path, "verification_hours = 72\n")
    args = ("--type", "performance", "--start", "2026-06-03T10:00:00Z", "--duration", "120")
    assert 0 == desk(capsys, path, "window", "add", "--title", "Ledger", *args)[0]
    return path


def at(monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    monkeypatch.setenv("DESK_NOW", when)


def test_ingest_links_during_and_classifies_after(
    tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    at(monkeypatch, "2026-06-03T11:00:00Z")  # W1 active
    drop_mail(tmp_path, "Site down?", "I cannot reach the trading page.")
    ingest(config)
    at(monkeypatch, "2026-06-04T09:00:00Z")  # in the verification period
    drop_mail(tmp_path, "Balance wrong", POSITIVE[0], function="compliance")
    drop_mail(tmp_path, "Thanks", NEGATED[0], sender="bo@example.com")
    drop_mail(tmp_path, "About the maintenance", QUOTED[0], sender="cy@example.com")
    ingest(config)
    at(monkeypatch, "2026-06-06T12:00:01Z")  # 72 h after the end: the period is over
    drop_mail(tmp_path, "Missing deposits", POSITIVE[1], sender="di@example.com")
    ingest(config)

    during = ticket(config, "Site down?")
    assert (1, None, "normal") == (during["during_window_id"], during["window_id"], during["kind"])
    report = ticket(config, "Balance wrong")
    assert ("discrepancy", "rule", 1, "high", None) == (
        report["kind"],
        report["kind_set_by"],
        report["window_id"],
        report["priority"],
        report["during_window_id"],
    )
    for subject in ("Thanks", "About the maintenance", "Missing deposits"):
        assert ("normal", None) == (
            ticket(config, subject)["kind"],
            ticket(config, subject)["window_id"],
        )

    listed = desk_json(capsys, config, "discrepancies", "--window", "W1")
    assert [("Balance wrong", "compliance", 1)] == [
        (t["subject"], t["function"], t["window_id"]) for t in listed
    ]
    code, out, _ = desk(capsys, config, "discrepancies")
    assert 0 == code and "W1    compliance new      high   rule" in out
    now = desk_json(capsys, config, "now")
    assert [report["id"]] == [t["ticket"] for t in now["open_discrepancies"]]


def test_a_reply_in_the_period_makes_an_older_ticket_a_report(
    tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = drop_mail(tmp_path, "Question", "How do exports work?")
    ingest(config)
    at(monkeypatch, "2026-06-03T13:30:00Z")
    drop_mail(tmp_path, "Re: Question", "Also: two payments have disappeared.", reply_to=first)
    ingest(config)
    assert ("discrepancy", 1) == (
        ticket(config, "Question")["kind"],
        ticket(config, "Question")["window_id"],
    )


def test_the_agent_wins_over_the_rule(
    tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    at(monkeypatch, "2026-06-03T13:00:00Z")
    drop_mail(tmp_path, "Balance wrong", POSITIVE[0])
    drop_mail(tmp_path, "Odd numbers", "Something feels off with my portfolio.", sender="b@x.org")
    ingest(config)
    wrong, odd = ticket(config, "Balance wrong")["id"], ticket(config, "Odd numbers")["id"]

    assert 0 == desk(capsys, config, "discrepancies", "--unmark", str(wrong))[0]
    assert 0 == desk(capsys, config, "discrepancies", "--mark", str(odd), "--window", "W1")[0]
    # Moving the window re-runs the rule; hand-made decisions stay.
    at(monkeypatch, "2026-06-03T13:30:00Z")
    assert 0 == desk(capsys, config, "window", "edit", "W1", "--title", "Ledger v2")[0]
    assert ("normal", "agent") == (
        ticket(config, "Balance wrong")["kind"],
        ticket(config, "Balance wrong")["kind_set_by"],
    )
    marked = ticket(config, "Odd numbers")
    assert ("discrepancy", "agent", 1, "high") == (
        marked["kind"],
        marked["kind_set_by"],
        marked["window_id"],
        marked["priority"],
    )
    assert 0 == desk(capsys, config, "discrepancies", "--by-rule", str(wrong))[0]
    assert ("discrepancy", "rule") == (
        ticket(config, "Balance wrong")["kind"],
        ticket(config, "Balance wrong")["kind_set_by"],
    )


def test_cancelling_or_moving_a_window_re_judges_its_tickets(
    tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    args = ("--type", "feature", "--start", "2026-06-10T10:00:00Z", "--duration", "60")
    assert 0 == desk(capsys, config, "window", "add", "--title", "Later", *args)[0]
    at(monkeypatch, "2026-06-05T12:00:00Z")  # in W1's verification period
    drop_mail(tmp_path, "Balance wrong", POSITIVE[0])
    ingest(config)
    before = ticket(config, "Balance wrong")
    assert ("discrepancy", 1, "high") == (before["kind"], before["window_id"], before["priority"])

    # Ops change their plans (in advance, as the clock says): W2 moves to just before the
    # mail, so the mail is about W2, the window the writer lived through last.
    at(monkeypatch, "2026-06-01T10:00:00Z")
    code, _, err = desk(capsys, config, "window", "edit", "W2", "--start", "2026-06-05T10:00:00Z")
    assert 0 == code, err
    assert 2 == ticket(config, "Balance wrong")["window_id"]
    assert 0 == desk(capsys, config, "window", "cancel", "W2")[0]
    assert 1 == ticket(config, "Balance wrong")["window_id"]
    assert 0 == desk(capsys, config, "window", "cancel", "W1")[0]
    after = ticket(config, "Balance wrong")
    assert ("normal", None, None, "normal") == (
        after["kind"],
        after["kind_set_by"],
        after["window_id"],
        after["priority"],
    )
