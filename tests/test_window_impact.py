"""A window's impact counted live: tickets received during it, discrepancy reports after it and
follow-ups in older threads, by function, as mail is ingested; in `desk window show|list`,
`desk now` (run as processes) and the post-maintenance report, whose counts freeze when the
verification period ends."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from db.core import clock
from db.core.config import load
from db.core.connect import open_db
from db.maintenance import impact
from tests.conftest import drop, mail
from tests.tui_helpers import NOW, add_windows, build_config, deliver, fill, line_text, until
from tests.tui_helpers import mail as tui_mail
from tests.windows_helpers import drop_mail, ingest, ticket, write_config
from tui.app import DeskApp
from tui.screens.ticket import TicketScreen
from tui.widgets.discrepancy_panel import DiscrepancyPanel

DESK = Path(sys.executable).with_name("desk")
ZERO = {"technical": 0, "sales": 0, "compliance": 0, "general": 0, "marketing": 0, "total": 0}
REPORT = (
    "Hi,\n\nsince the maintenance my account balance is wrong: it shows EUR 1,200 less than "
    "on Friday. Please check.\n\nAnn"
)


def desk(config: Path, *args: str) -> str:
    """`desk --config CONFIG ARGS…` as a process (DESK_NOW and DESK_USER from the test)."""
    done = subprocess.run(
        [DESK, "--config", str(config), *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode in (0, 10, 11), done.stderr
    return done.stdout


def at(monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    monkeypatch.setenv("DESK_NOW", when)


def counts(config: Path) -> dict:
    db = open_db(load(config).database)
    try:
        return impact.counts(db, 1)
    finally:
        db.close()


def stored(config: Path) -> str:
    """W1's report as stored."""
    db = open_db(load(config).database)
    try:
        return db.execute("SELECT report FROM window WHERE id = 1").fetchone()[0]
    finally:
        db.close()


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """W1 on 3 June 10:00–12:00 UTC, its verification period 72 hours; an older thread from
    the day before, and during W1 two new tickets and a follow-up in that older thread."""
    at(monkeypatch, "2026-06-01T10:00:00Z")
    monkeypatch.setenv("DESK_USER", "olga")
    path = write_config(tmp_path, "verification_hours = 72\n")
    desk(path, "window", "add", "--title", "Ledger upgrade", "--type", "performance",
         "--start", "2026-06-03T10:00:00Z", "--duration", "120")  # fmt: skip
    at(monkeypatch, "2026-06-02T09:00:00Z")
    first = drop_mail(tmp_path, "Question", "How do exports work?")
    ingest(path)
    at(monkeypatch, "2026-06-03T11:00:00Z")
    drop_mail(tmp_path, "Site down?", "I cannot reach the trading page.", sender="bo@example.com")
    drop_mail(tmp_path, "Cannot log in", "The site says maintenance.", function="sales",
              sender="cy@example.com")  # fmt: skip
    drop_mail(tmp_path, "Re: Question", "Still waiting, and now the site is down.",
              reply_to=first)  # fmt: skip
    ingest(path)
    return path


def test_counts_move_as_mail_arrives_and_show_everywhere(
    tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    older = ticket(config, "Question")["id"]
    during = counts(config)
    assert {
        "window": "W1",
        "received": {**ZERO, "technical": 1, "sales": 1, "total": 2},
        "discrepancies": ZERO,
        "linked_followups": 1,
        "verification_ends_at": "2026-06-06T12:00:00.000Z",
        "final": False,
    } == during

    shown = desk(config, "window", "show", "W1")
    assert (
        "impact (live until 2026-06-06 12:00 UTC):\n"
        "  received 2 (technical 1, sales 1) · 1 follow-up in older threads · "
        f"discrepancy reports 0\n  follow-ups: #{older}\n"
    ) in shown

    at(monkeypatch, "2026-06-04T09:00:00Z")  # in the verification period
    drop_mail(tmp_path, "Balance wrong", REPORT, function="compliance", sender="di@example.com")
    drop_mail(tmp_path, "Invoice", "Please send the May invoice.", sender="ed@example.com")
    ingest(config)
    after = {
        **during,
        "discrepancies": {**ZERO, "compliance": 1, "total": 1},
    }
    assert after == counts(config)
    listed = json.loads(desk(config, "window", "list", "--json"))
    assert [after] == [w["impact"] for w in listed]
    assert after == json.loads(desk(config, "window", "show", "W1", "--json"))["impact"]
    assert [after] == json.loads(desk(config, "now", "--json"))["impact"]
    assert (
        "IMPACT  W1 received 2 (technical 1, sales 1) · 1 follow-up in older threads · "
        "discrepancy reports 1 (compliance 1) (live until 2026-06-06 12:00 UTC)\n"
    ) in desk(config, "now")

    at(monkeypatch, "2026-06-06T12:00:01Z")  # the verification period is over
    assert [] == json.loads(desk(config, "now", "--json"))["impact"]
    final = json.loads(desk(config, "window", "show", "W1", "--json"))["impact"]
    assert {**after, "final": True} == final
    assert "impact (final since 2026-06-06 12:00 UTC):" in desk(config, "window", "show", "W1")


def test_a_reply_before_the_window_or_an_auto_reply_during_it_is_no_follow_up(
    tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(monkeypatch, "2026-06-02T10:00:00Z")
    old = drop_mail(tmp_path, "Old thread", "A question before the window.", sender="fa@x.org")
    drop_mail(tmp_path, "Re: Old thread", "Any news?", sender="fa@x.org", reply_to=old)
    ingest(config)
    at(monkeypatch, "2026-06-03T11:30:00Z")
    headers = {"In-Reply-To": old, "Auto-Submitted": "auto-replied"}
    away = mail("Automatic reply: Old thread", "Out until Monday.", sender="fa@x.org",
                headers=headers)  # fmt: skip
    drop(tmp_path, "technical", away)
    ingest(config)
    assert (1, 2) == (counts(config)["linked_followups"], counts(config)["received"]["total"])


@pytest.mark.parametrize("frozen_by", ["desk-ingest", "an agent's mark"])
def test_the_report_recounts_until_the_verification_period_ends_then_freezes(
    tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch, frozen_by: str
) -> None:
    at(monkeypatch, "2026-06-03T13:00:00Z")
    template = desk(config, "window", "report", "W1", "--template")
    assert "Live counts as of 2026-06-03 13:00 UTC; recounted until the verification " in template
    assert "Discrepancy reports after the window (verification period): 0\n" in template
    written = tmp_path / "report.md"
    own = "Users of the EU cluster were hit hardest."
    written.write_text(
        template.replace("## Summary\n", "## Summary\nLedger upgrade went well.\n")
        .replace("## Root cause\n", "## Root cause\nPlanned work.\n")
        .replace("## Steps taken\n", "## Steps taken\nUpgraded the ledger.\n")
        .replace("\n\n## Timeline", f"\n{own}\n\n## Timeline"),
        encoding="utf-8",
    )
    desk(config, "window", "report", "W1", "--file", str(written))

    at(monkeypatch, "2026-06-04T09:00:00Z")
    drop_mail(tmp_path, "Balance wrong", REPORT, function="compliance", sender="di@example.com")
    ingest(config)
    report = ticket(config, "Balance wrong")["id"]
    shown = desk(config, "window", "report", "W1", "--show")
    assert "Live counts as of 2026-06-04 09:00 UTC" in shown
    assert (
        "Discrepancy reports after the window (verification period): 1\n"
        f"- compliance: 1 (#{report})\n"
    ) in shown
    assert f"\n{own}\n" in shown and "Ledger upgrade went well." in shown
    sections = json.loads(desk(config, "window", "report", "W1", "--json"))["sections"]
    assert "Discrepancy reports after the window (verification period): 1" in sections["Impact"]

    if frozen_by == "desk-ingest":  # on its notice timer, 30 s after the period ended
        at(monkeypatch, "2026-06-06T12:00:30Z")
        ingest(config)
        assert "Final counts: the verification period ended 2026-06-06 12:00" in stored(config)
    else:  # reading shows the final counts but never writes them
        assert "<!-- impact: live" in stored(config)
    at(monkeypatch, "2026-06-06T13:00:00Z")
    shown = desk(config, "window", "report", "W1", "--show")
    assert "Final counts: the verification period ended 2026-06-06 12:00 UTC.\n" in shown

    # An agent links another ticket to W1 later: the live counts take it, the report does not
    # (the mark stores the final counts first, when the daemon has not yet).
    at(monkeypatch, "2026-06-08T10:00:00Z")
    late = str(ticket(config, "Site down?")["id"])
    desk(config, "discrepancies", "--mark", late, "--window", "W1")
    assert 2 == counts(config)["discrepancies"]["total"]
    assert shown == desk(config, "window", "report", "W1", "--show") == stored(config)


@pytest.mark.anyio
async def test_the_desk_shows_the_active_windows_impact_as_mail_arrives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DESK_NOW", NOW)
    config = build_config(tmp_path)
    fill(config.database, 8)  # an hour apart; #8 came 7 minutes ago, during W1
    add_windows(config.database)  # W1, an emergency, active since 30 minutes ago
    app = DeskApp(config)
    async with app.run_test(size=(120, 40)) as pilot:
        panel = app.screen.query_one(DiscrepancyPanel)

        def lines() -> list[str]:
            return [str(node.label) for node in panel.root.children[0].children]

        await until(pilot, lambda: panel.display and bool(panel.root.children))
        assert "W1 Database failover" == str(panel.root.children[0].label)
        assert ["received 1: general 1", "discrepancy reports 0"] == lines()

        # A follow-up in #3's thread (opened five hours ago) and a new sales ticket arrive.
        deliver(config.database, tui_mail(9, "Re: Question 3", sender="c3@example.com",
                                          reply_to=3))  # fmt: skip
        deliver(config.database, tui_mail(10, "Cannot pay", function="sales"), "sales")
        expected = [
            "received 2: sales 1, general 1",
            "discrepancy reports 0",
            "#3 follow-up Question 3 about invoices",
        ]
        await until(pilot, lambda: expected == lines())
        await pilot.pause(0.1)
        # On screen, not only in the tree: the panel grew to show every line.
        shown = [line_text(panel, y).strip() for y in range(panel.size.height)]
        assert ["▼ W1 Database failover", *expected] == [s.lstrip("├└│─ ") for s in shown]
        await pilot.press("x", "down", "down", "down", "down", "enter")
        await until(pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen.data)
        assert 3 == app.screen.ticket_id
        head = app.screen.query_one("#ticket-head")

        def drawn() -> str:  # the ticket's head as one line, however it wraps
            return " ".join(" ".join(line_text(head, y).split()) for y in range(head.size.height))

        await until(pilot, lambda: "follow-up during W1" in drawn())


def test_the_status_site_counts_the_reports_to_support_as_they_arrive(
    tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    at(monkeypatch, "2026-06-04T09:00:00Z")
    desk(config, "publish", str(site))
    w1 = json.loads((site / "status.json").read_text())["scheduled_maintenances"][0]
    assert (2, 1, 0, False) == (
        w1["support"]["received"]["total"],
        w1["support"]["linked_followups"],
        w1["support"]["discrepancies"]["total"],
        w1["support"]["final"],
    )

    drop_mail(tmp_path, "Balance wrong", REPORT, function="compliance", sender="di@example.com")
    ingest(config)
    desk(config, "publish", str(site))
    w1 = json.loads((site / "status.json").read_text())["scheduled_maintenances"][0]
    assert {**ZERO, "compliance": 1, "total": 1} == w1["support"]["discrepancies"]
    page = (site / "index.html").read_text()
    assert "discrepancy reports 1 (compliance 1)" in page


def test_an_overrunning_emergency_goes_on_counting_follow_ups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(monkeypatch, "2026-06-02T09:00:00Z")
    path = write_config(tmp_path, "verification_hours = 72\n")
    first = drop_mail(tmp_path, "Question", "How do exports work?")
    ingest(path)
    at(monkeypatch, "2026-06-03T10:00:00Z")
    desk(path, "window", "emergency", "--title", "Ledger down", "--expect", "30")
    at(monkeypatch, "2026-06-03T11:00:00Z")  # 30 minutes past its expected end, not completed
    drop_mail(tmp_path, "Re: Question", "And now the ledger is down.", reply_to=first)
    ingest(path)
    db = open_db(load(path).database)
    try:
        [(w, counted)] = impact.recent(db, clock.now())
        assert ("overrunning", 1) == (w.status(clock.now()), counted["linked_followups"])
    finally:
        db.close()
