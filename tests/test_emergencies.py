"""Emergencies as ops and users live them: one running past its estimate is overrunning (never
completed by the clock), ops are reminded, extending tells users the nature and the new expected
downtime, progress updates are stored, published and mailed, and "resolved" completes it."""

from __future__ import annotations

import json
import logging
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from db.core import clock, migrations
from db.core.config import load
from db.core.connect import open_db
from db.maintenance import in_force, notice_schedule, updates, windows
from tests.tui_helpers import build_config, fill, until
from tests.windows_helpers import desk, desk_json, drop_mail, ingest, ticket, write_config
from tui.app import DeskApp
from tui.cli.now import EPILOG
from tui.widgets.banner import Banner

NOTICES = """
[notices]
subscribers = ["ann@example.com"]
ops = "Ops Desk <ops@valuit.com>"
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DESK_NOW", "2026-06-01T10:00:00Z")  # 11:00 BST
    monkeypatch.setenv("DESK_USER", "olga")
    return write_config(tmp_path, NOTICES)


def start_emergency(capsys, config: Path) -> None:
    code, _, err = desk(
        capsys, config, "window", "emergency", "--title", "Database failover", "--expect", "45",
        "--features", "Trading", "--nature", "the primary database stopped answering",
    )  # fmt: skip
    assert 0 == code, err


def tick(config: Path) -> list[str]:
    loaded = load(config)
    db = open_db(loaded.database)
    try:
        return [kind for _, kind in notice_schedule.tick(db, loaded.mail, loaded.maintenance)]
    finally:
        db.close()


def outbox(config: Path) -> list[tuple[str, str]]:
    """(recipient, subject) of every mail queued, oldest first."""
    db = open_db(load(config).database)
    try:
        return db.execute("SELECT rcpt, subject FROM outbox ORDER BY id").fetchall()
    finally:
        db.close()


def body_of(config: Path, subject_start: str) -> str:
    db = open_db(load(config).database)
    try:
        raw = db.execute(
            "SELECT raw FROM outbox WHERE subject LIKE ? ORDER BY id DESC", [subject_start + "%"]
        ).fetchone()[0]
    finally:
        db.close()
    return message_from_bytes(raw, policy=policy.default).get_content()


def test_an_emergency_past_its_estimate_overruns_until_completed_by_hand(
    config: Path, capsys, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue's reproduction: 45 minutes expected, still running at 50."""
    start_emergency(capsys, config)
    monkeypatch.setenv("DESK_NOW", "2026-06-01T10:50:00Z")
    with caplog.at_level(logging.WARNING, logger="desk.notices"):
        assert [] == tick(config)  # no completion notice: users are not told it is over
    assert ["Emergency W1 is overrunning: Database failover"] == [
        r.getMessage().split(";")[0] for r in caplog.records
    ]
    assert ("ops@valuit.com", "Emergency W1 is overrunning: Database failover") == outbox(config)[
        -1
    ]
    assert "desk window extend W1 --by MINUTES" in body_of(config, "Emergency W1 is overrunning")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="desk.notices"):
        assert [] == tick(config)
    assert ([], 2) == (caplog.records, len(outbox(config)))  # reminded once, not every tick

    code, out, _ = desk(capsys, config, "now")
    assert 12 == code
    assert (
        "OVERRUN W1 Database failover expected to end Mon 2026-06-01 11:45 BST, 5 min ago; "
        "unavailable: Trading; extend, update or complete it (desk window extend W1 --by MINUTES)"
    ) == out.splitlines()[0]
    code, out, _ = desk(capsys, config, "now", "--json")
    now = json.loads(out)
    assert (12, "overrunning", ["overrunning"]) == (
        code,
        now["state"],
        [w["status"] for w in now["active"]],
    )
    assert [] == now["overdue_reports"]  # not over, so no report is due yet
    assert "12  an emergency runs past its expected end (overrunning; in force" in EPILOG
    assert "W1    overrunning emergency" in desk(capsys, config, "window", "list")[1]

    # It can still be extended; the notice says what is wrong and for how much longer.
    extended = desk_json(capsys, config, "window", "extend", "W1", "--by", "30")
    assert ("active", 80) == (extended["status"], extended["expected_minutes"])
    email = next(n for n in extended["notices"] if n["channel"] == "email")
    assert (
        "Emergency maintenance update: Database failover, now until 12:20 BST" == (email["subject"])
    )
    assert "is taking longer than expected" in email["body"]
    assert "Nature of the issue: the primary database stopped answering" in email["body"]
    assert "Expected downtime: about 80 minutes, until 12:20 BST (11:20 UTC)." in email["body"]
    assert "We expected it to end at 11:45 BST (10:45 UTC)." in email["body"]
    assert "before the window begins" not in email["body"]
    assert ("ann@example.com", email["subject"]) == outbox(config)[-1]
    assert [] == tick(config)  # the scheduler does not send it again

    # Past the new estimate: overrunning again, and ops are reminded again.
    monkeypatch.setenv("DESK_NOW", "2026-06-01T11:25:00Z")
    assert [] == tick(config)
    assert "ops@valuit.com" == outbox(config)[-1][0]
    assert 12 == desk(capsys, config, "now")[0]

    done = desk_json(capsys, config, "window", "complete", "W1")
    assert ("completed", "2026-06-01T11:25:00.000Z") == (done["status"], done["completed_at"])
    assert ["completion"] == tick(config)
    assert "Emergency maintenance completed: Database failover" == outbox(config)[-1][1]
    assert ["W1"] == [w["id"] for w in desk_json(capsys, config, "now")["overdue_reports"]]


def test_progress_updates_are_stored_published_mailed_and_resolved_completes(
    config: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    start_emergency(capsys, config)
    monkeypatch.setenv("DESK_NOW", "2026-06-01T10:10:00Z")
    code, out, err = desk(
        capsys, config, "window", "update", "W1", "--status", "identified",
        "A full disk on the primary; failing over to the replica.",
    )  # fmt: skip
    assert (0, "Posted the identified update on W1; 1 mail queued to the subscribers.\n") == (
        code,
        out,
    ), err
    assert (
        "ann@example.com",
        "Emergency maintenance update (Identified): Database failover",
    ) == outbox(config)[-1]
    body = body_of(config, "Emergency maintenance update (Identified)")
    assert "Identified: A full disk on the primary; failing over to the replica." in body
    assert "Nature of the issue: the primary database stopped answering" in body

    monkeypatch.setenv("DESK_NOW", "2026-06-01T10:20:00Z")
    desk(capsys, config, "window", "update", "W1", "--status", "monitoring", "Replica serving.")
    # A later extension withdraws the standing notices, never an update already written.
    desk(capsys, config, "window", "extend", "W1", "--by", "15")
    db = open_db(load(config).database)
    statuses = db.execute(
        "SELECT status FROM outbox WHERE subject LIKE '%update (%' ORDER BY id"
    ).fetchall()
    assert [("queued",), ("queued",)] == statuses
    published = updates.listing(db, 1)
    assert [
        (1, "identified", "A full disk on the primary; failing over to the replica."),
        (1, "monitoring", "Replica serving."),
    ] == [(u["window_id"], u["status"], u["body"]) for u in published]
    assert {"id", "window_id", "status", "body", "created_at", "created_by"} == set(published[0])
    assert "2026-06-01T10:10:00.000Z" == published[0]["created_at"]
    db.close()

    monkeypatch.setenv("DESK_NOW", "2026-06-01T10:30:00Z")
    code, out, _ = desk(
        capsys, config, "window", "update", "W1", "--status", "resolved", "All services are back."
    )
    assert "W1 is completed" in out
    shown = desk_json(capsys, config, "window", "show", "W1")
    assert ("completed", ["identified", "monitoring", "resolved"]) == (
        shown["status"],
        [u["status"] for u in shown["updates"]],
    )
    # One mail says it is over: the completion notice, carrying the resolved update.
    assert "Emergency maintenance completed: Database failover" == outbox(config)[-1][1]
    assert "Resolved: All services are back." in body_of(config, "Emergency maintenance completed")
    assert [] == tick(config)

    code, _, err = desk(capsys, config, "window", "update", "W1", "--status", "fixed", "x")
    assert 2 == code and "invalid choice: 'fixed'" in err


@pytest.mark.anyio
async def test_the_desk_shows_an_emergency_overrunning(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DESK_NOW", "2026-11-26T10:00:00Z")
    loaded = build_config(tmp_path)
    fill(loaded.database, 3)
    db = open_db(loaded.database)
    windows.emergency(
        db, title="Database failover", expected_minutes=45, nature="disk", actor="ops", zone="UTC"
    )
    monkeypatch.setenv("DESK_NOW", "2026-11-26T11:00:00Z")
    # What the status site reads: the window model and `in_force` say overrunning.
    summary = in_force.summary(db)
    assert ("overrunning", "overrunning") == (summary["state"], summary["active"][0]["status"])
    assert "overrunning" == windows.get(db, 1).as_dict(clock.now())["status"]
    db.close()
    app = DeskApp(loaded)
    async with app.run_test(size=(200, 40)) as pilot:
        banner = app.screen.query_one(Banner)
        await until(pilot, lambda: "W1" in str(banner.render()))
        shown = str(banner.render())
        assert "EMERGENCY OVERRUNNING  W1 Database failover" in shown
        assert "passed 15 min ago: extend, update or complete it" in shown


def test_only_a_window_in_force_can_be_extended(config: Path, capsys) -> None:
    args = ("--type", "feature", "--start", "2026-06-10 02:00", "--duration", "60")
    assert 0 == desk(capsys, config, "window", "add", "--title", "Later", *args)[0]
    code, _, err = desk(capsys, config, "window", "extend", "W1", "--by", "30")
    assert (2, "desk: W1 is planned; only a window in force can be extended") == (
        code,
        err.split(" (")[0],
    )


def test_upgrading_completes_emergencies_that_ended_under_the_old_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, an emergency completed at its expected end and its users were told so: after
    the upgrade it stays completed; one still in progress stays open."""
    path = tmp_path / "desk.db"
    before = migrations.MIGRATIONS.index(migrations._v7_window_updates)
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:before])
    monkeypatch.setenv("DESK_NOW", "2026-06-01T09:00:00Z")
    db = open_db(path)
    for title, minutes in (("Ended", 30), ("Running", 180)):
        windows.emergency(
            db, title=title, expected_minutes=minutes, nature="x", actor="ops", zone="UTC"
        )
    db.close()
    monkeypatch.undo()
    monkeypatch.setenv("DESK_NOW", "2026-06-01T10:00:00Z")
    db = open_db(path)
    assert [("Ended", "completed", "2026-06-01T09:30:00.000Z"), ("Running", "active", None)] == [
        (w.title, w.status(clock.now()), w.completed_at and clock.iso(w.completed_at))
        for w in windows.listing(db)
    ]
    db.close()


def test_mail_during_the_overrun_is_during_the_window_not_after_it(
    tmp_path: Path, config: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    start_emergency(capsys, config)
    monkeypatch.setenv("DESK_NOW", "2026-06-01T11:00:00Z")  # 15 min past the estimate
    drop_mail(tmp_path, "Still down", "Trading is down and my balance is wrong.")
    ingest(config)
    during = ticket(config, "Still down")
    assert (1, "normal", None) == (during["during_window_id"], during["kind"], during["window_id"])
    # Once it is over, the same words in its verification period make a discrepancy report.
    desk(capsys, config, "window", "complete", "W1")
    monkeypatch.setenv("DESK_NOW", "2026-06-01T12:00:00Z")
    drop_mail(tmp_path, "After", "Since the maintenance my balance is wrong.", sender="b@x.org")
    ingest(config)
    assert ("discrepancy", 1) == (
        ticket(config, "After")["kind"],
        ticket(config, "After")["window_id"],
    )
