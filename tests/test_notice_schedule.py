"""Maintenance notices by email: each falls due at its time (the announcement no later than
the 48-hour edge, the reminder, start, completion, the report), goes to every subscriber once
per revision, and a reschedule cancels the reminders not yet sent and sends a change notice."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from db.core import clock
from db.core.config import Config, load
from db.core.connect import open_db, write
from db.core.errors import DeskError
from db.mailout import outbox, subscribers
from db.maintenance import notice_schedule, reports, windows
from ingest import daemon
from tests.conftest import write_config_file
from tests.smtp import SmtpServer

START = datetime.fromisoformat("2026-12-10T02:00:00+00:00")
NOTICES = """
[notices]
subscribers = ["ops@example.com", "Chief <cfo@example.com>"]
announce_days = 2
reminder_hours = 24
"""


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load(write_config_file(tmp_path, extra=NOTICES))


@pytest.fixture
def at(monkeypatch):
    def move(moment: datetime) -> None:
        monkeypatch.setenv("DESK_NOW", clock.iso(moment))

    return move


def schedule(db, at, created: datetime = START - timedelta(days=20)) -> windows.Window:
    at(created)
    return windows.add(
        db, title="Ledger upgrade", kind="adhoc", update_type="feature", start=START,
        end=START + timedelta(hours=2), zone="Europe/London", actor="ops",
        features=("Trading",),
    )  # fmt: skip


def tick(db, config: Config, at, moment: datetime) -> list[str]:
    at(moment)
    return [kind for _, kind in notice_schedule.tick(db, config.mail, config.maintenance)]


def mails(db) -> list[tuple[str, str, str]]:
    """(notice kind, recipient, status) of every notice mail, in order."""
    return db.execute(
        "SELECT n.kind, o.rcpt, o.status FROM outbox o JOIN notice n ON n.id = o.notice_id "
        "ORDER BY o.id"
    ).fetchall()


def test_the_announcement_falls_due_at_the_48_hour_edge_and_reaches_each_subscriber_once(
    config, at
):
    db = open_db(config.database)
    w = schedule(db, at)
    assert [] == tick(db, config, at, START - timedelta(hours=48, seconds=1))
    assert ["announcement"] == tick(db, config, at, START - timedelta(hours=48))
    assert [] == tick(db, config, at, START - timedelta(hours=47))  # once per revision
    assert [
        ("announcement", "ops@example.com", "queued"),
        ("announcement", "cfo@example.com", "queued"),
    ] == mails(db)
    assert windows.get(db, w.id).forced_reason is None  # on time: nothing to excuse


def test_an_announcement_the_daemon_could_only_send_late_is_sent_and_says_so(config, at):
    db = open_db(config.database)
    w = schedule(db, at)
    assert ["announcement"] == tick(db, config, at, START - timedelta(hours=47, minutes=59))
    # Said in the audit trail, not stored as an operator's reason for forcing the rule.
    announced = [e for e in windows.events(db, w.id) if e["action"] == "announced"]
    assert announced[0]["detail"]["late"].startswith("announced late by desk-ingest")
    assert windows.get(db, w.id).forced_reason is None


def test_reminder_start_completion_and_report_each_go_out_once(config, at):
    db = open_db(config.database)
    w = schedule(db, at)
    tick(db, config, at, START - timedelta(hours=48))
    assert [] == tick(db, config, at, START - timedelta(hours=24, seconds=1))
    assert ["reminder"] == tick(db, config, at, START - timedelta(hours=24))
    assert ["start"] == tick(db, config, at, START)
    assert [] == tick(db, config, at, START + timedelta(hours=1))
    assert ["completion"] == tick(db, config, at, START + timedelta(hours=2))
    report = "## Summary\nAll went well.\n## Root cause\nNone.\n## Steps taken\nUpgraded.\n"
    reports.write_report(db, w.id, report, "ops")
    assert ["report"] == tick(db, config, at, START + timedelta(hours=3))
    assert [] == tick(db, config, at, START + timedelta(hours=4))
    kinds = [kind for kind, rcpt, _ in mails(db) if rcpt == "ops@example.com"]
    assert ["announcement", "reminder", "start", "completion", "report"] == kinds
    body = db.execute(
        "SELECT body FROM notice WHERE kind = 'report' AND channel = 'email'"
    ).fetchone()[0]
    assert "Root cause:\nNone." in body and "Steps taken:\nUpgraded." in body


def test_a_reschedule_cancels_the_unsent_reminder_and_sends_a_change_notice(config, at):
    db = open_db(config.database)
    w = schedule(db, at)
    tick(db, config, at, START - timedelta(hours=48))
    tick(db, config, at, START - timedelta(hours=24))  # reminders queued, not yet sent
    with write(db):  # the announcement to ops went out; the reminders did not
        db.execute("UPDATE outbox SET status = 'sent' WHERE rcpt = 'ops@example.com' AND id = 1")
    later = START + timedelta(days=3)
    windows.edit(
        db, w.id, "ops", {"start_at": later, "end_at": later + timedelta(hours=2)},
        announce_hours=config.maintenance.announce_hours,
    )  # fmt: skip
    statuses = {(kind, rcpt): status for kind, rcpt, status in mails(db)}
    assert "cancelled" == statuses[("reminder", "ops@example.com")]
    assert "cancelled" == statuses[("reminder", "cfo@example.com")]
    assert "sent" == statuses[("announcement", "ops@example.com")]
    stale = db.execute("SELECT id FROM outbox WHERE status = 'cancelled' LIMIT 1").fetchone()[0]
    with pytest.raises(DeskError, match="text no longer holds"):
        outbox.retry(db, stale, "ops")  # the old time must not go out after all

    assert ["change"] == tick(db, config, at, START - timedelta(hours=23))
    assert [] == tick(db, config, at, START - timedelta(hours=22))
    change = db.execute(
        "SELECT subject, body FROM notice WHERE kind = 'change' AND channel = 'email'"
    ).fetchone()
    assert change[0].startswith("Changed: Valuit maintenance Sunday 13 December 2026")
    assert "replaces the earlier one" in change[1]
    # The old time passes quietly; the reminder comes before the new one.
    assert [] == tick(db, config, at, START)
    assert ["reminder"] == tick(db, config, at, later - timedelta(hours=24))


def test_a_cancelled_window_is_cancelled_to_those_told_of_it_only(config, at):
    db = open_db(config.database)
    told = schedule(db, at)
    tick(db, config, at, START - timedelta(hours=48))
    windows.cancel(db, told.id, "ops", "not needed")
    # The announcement not yet sent is withdrawn: it would announce what will not happen.
    assert {"cancelled"} == {status for _, _, status in mails(db)}
    untold = windows.add(
        db, title="Later", kind="adhoc", update_type="feature",
        start=START + timedelta(days=30), end=START + timedelta(days=30, hours=1),
        zone="UTC", actor="ops",
    )  # fmt: skip
    windows.cancel(db, untold.id, "ops")
    assert ["cancellation"] == tick(db, config, at, START - timedelta(hours=47))
    assert {told.id} == {r[0] for r in db.execute("SELECT window_id FROM outbox")}


def test_an_emergency_tells_subscribers_at_once(config, at):
    db = open_db(config.database)
    at(START)
    w, _ = windows.emergency(
        db, title="Database failover", expected_minutes=45, nature="a failed disk",
        actor="ops", zone="UTC", mail=config.mail,
    )  # fmt: skip
    queued = mails(db)
    assert [("start", "ops@example.com", "queued"), ("start", "cfo@example.com", "queued")] == (
        queued
    )
    body = db.execute("SELECT body FROM notice WHERE channel = 'email'").fetchone()[0]
    assert "Nature of the issue: a failed disk" in body and "about 45 minutes" in body
    assert [] == tick(db, config, at, START + timedelta(minutes=10))
    subject = db.execute("SELECT subject FROM outbox ORDER BY id").fetchone()[0]
    assert "Emergency maintenance in progress: Database failover" == subject
    windows.complete(db, w.id, "ops")
    assert ["completion"] == tick(db, config, at, START + timedelta(minutes=11))


def test_subscribers_added_at_the_desk_get_notices_too_and_the_server_gets_each_once(tmp_path, at):
    server = SmtpServer().start()
    try:
        config = load(write_config_file(tmp_path, extra=NOTICES + server.toml()))
        db = open_db(config.database)
        added, refused = subscribers.add(db, ["Dana <dana@example.com>", "not an address"], "ops")
        assert (1, ["'not an address': not an email address"]) == (added, refused)
        schedule(db, at)
        at(START - timedelta(hours=40))
        daemon.run(config, once=True)
        daemon.run(config, once=True)
        got = server.handler.wait_for(3)
        assert ["cfo@example.com", "dana@example.com", "ops@example.com"] == sorted(
            r.rcpt[0] for r in got
        )
        assert 3 == len(set(server.handler.message_ids()))
        first = got[0].message
        assert first["Subject"].startswith("Valuit maintenance Thursday 10 December 2026")
        assert "auto-generated" == first["Auto-Submitted"]
        assert "Please back up any critical data" in first.get_content()
    finally:
        server.stop()


def test_edits_tell_users_what_changed_but_never_repeat_a_moment(config, at):
    db = open_db(config.database)
    w = schedule(db, at)
    tick(db, config, at, START - timedelta(hours=48))
    tick(db, config, at, START - timedelta(hours=24))
    at(START - timedelta(hours=23))
    windows.edit(db, w.id, "ops", {"title": "Ledger upgrade (v2)"})
    # The new wording goes out once; the reminder already sent is not sent again.
    assert ["change"] == tick(db, config, at, START - timedelta(hours=22))
    assert [] == tick(db, config, at, START - timedelta(hours=21))
    assert ["start"] == tick(db, config, at, START)
    at(START + timedelta(minutes=30))
    windows.edit(db, w.id, "ops", {"end_at": START + timedelta(hours=3)})  # running late
    assert ["change"] == tick(db, config, at, START + timedelta(minutes=31))
    assert ["completion"] == tick(db, config, at, START + timedelta(hours=3))
    windows.set_notes(db, w.id, "Fixed a typo in the notes.", "ops")
    assert [] == tick(db, config, at, START + timedelta(hours=4))
    kinds = [kind for kind, rcpt, _ in mails(db) if rcpt == "ops@example.com"]
    assert ["announcement", "reminder", "change", "start", "change", "completion"] == kinds
    body = db.execute(
        "SELECT body FROM notice WHERE kind = 'change' AND channel = 'email' ORDER BY id"
    ).fetchall()[-1][0]
    assert "05:00" in body  # the new end, as users read it


def test_notices_with_no_address_to_send_from_say_which_key_to_set(tmp_path, at):
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\npath = "{tmp_path / "desk.db"}"\n')  # no [addresses]
    config = load(path)
    db = open_db(config.database)
    subscribers.add(db, ["ops@example.com"], "ops")
    w = schedule(db, at)
    at(START - timedelta(hours=48))
    with pytest.raises(DeskError, match=r"set \[notices\] sender to an address"):
        windows.issue_notice(db, w.id, "announcement", "ops", mail=config.mail)
    assert [] == tick(db, config, at, START - timedelta(hours=48))  # logged, nothing half-done
    assert 0 == db.execute("SELECT count(*) FROM notice").fetchone()[0]
