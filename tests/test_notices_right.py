"""Notices that read right: on time at exactly 48 hours, each end of a window with its own zone
across a DST change, a change notice that says what changed from when, the preview the
scheduler would send, overlapping windows refused unless meant, and an unmarked discrepancy
back at its old priority."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from db.core.config import load
from db.core.connect import open_db
from db.maintenance import notice_schedule, notices, windows
from db.maintenance.window_model import Window
from db.tickets import replies
from tests.windows_helpers import desk, desk_json, drop_mail, ingest, ticket, write_config

NOW = "2026-06-01T10:00:00Z"  # 11:00 BST
NOTICES = '\n[notices]\nsubscribers = ["ann@example.com"]\nannounce_days = 2\n'


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DESK_NOW", NOW)
    monkeypatch.setenv("DESK_USER", "olga")
    return write_config(tmp_path, NOTICES)


def add(capsys, config: Path, start: str, *extra: str, kind: str = "adhoc") -> str:
    args = ("--type", "performance", "--start", start, "--duration", "120", "--kind", kind)
    code, out, err = desk(capsys, config, "window", "add", "--title", "Upgrade", *args, *extra)
    assert 0 == code, err
    return out


def tick(config: Path) -> list[str]:
    loaded = load(config)
    db = open_db(loaded.database)
    try:
        return [kind for _, kind in notice_schedule.tick(db, loaded.mail, loaded.maintenance)]
    finally:
        db.close()


def test_a_window_added_exactly_48_hours_ahead_is_announced_on_time(
    config: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(capsys, config, "2026-06-03T10:00:00Z")
    monkeypatch.setenv("DESK_NOW", "2026-06-01T10:00:30Z")  # the daemon's next tick
    assert ["announcement"] == tick(config)
    shown = desk_json(capsys, config, "window", "show", "W1")
    announced = next(e for e in shown["events"] if e["action"] == "announced")
    assert (None, None) == (shown["forced_reason"], announced["detail"].get("late"))
    # By hand, right after adding, it needs no --force either.
    add(capsys, config, "2026-06-03T12:30:00Z")
    issued = desk(capsys, config, "window", "notice", "W2", "--issue")
    assert (0, None) == (
        issued[0],
        desk_json(capsys, config, "window", "show", "W2")["forced_reason"],
    )
    # Ten minutes after adding one exactly 48 hours ahead, the rule holds: too late by hand.
    add(capsys, config, "2026-06-03T10:00:30Z", "--allow-overlap")
    monkeypatch.setenv("DESK_NOW", "2026-06-01T10:10:00Z")
    code, _, err = desk(capsys, config, "window", "notice", "W3", "--issue")
    assert 2 == code and "less than the 48 hours' notice" in err
    # Five minutes after adding is still prompt (`windows.PROMPT`).
    add(capsys, config, "2026-06-03T10:10:00Z", "--allow-overlap")
    monkeypatch.setenv("DESK_NOW", "2026-06-01T10:15:00Z")
    assert 0 == desk(capsys, config, "window", "notice", "W4", "--issue")[0]


def test_a_window_across_a_dst_change_labels_each_end_with_its_zone(config: Path, capsys) -> None:
    # Clocks go back at 01:00 UTC on 25 October 2026: 02:30 CEST, then 03:30 CET.
    add(capsys, config, "2026-10-25T00:30:00Z", "--zone", "Europe/Berlin")
    preview = desk_json(capsys, config, "window", "notice", "W1", "--kind", "announcement")
    email = next(n for n in preview if n["channel"] == "email")
    assert "When (Europe/Berlin): Sunday 25 October 2026, 02:30 CEST – 03:30 CET" in email["body"]
    assert "Valuit maintenance Sunday 25 October 2026, 02:30 CEST – 03:30 CET" in email["subject"]
    listed = desk(capsys, config, "window", "list", "--zone", "Europe/Berlin")[1]
    assert "Sun 2026-10-25 02:30 CEST–03:30 CET" in listed
    same_zone = desk(capsys, config, "window", "list", "--zone", "UTC")[1]
    assert "Sun 2026-10-25 00:30–02:30 UTC" in same_zone


def test_a_change_notice_reads_right_and_says_the_old_time(
    config: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(capsys, config, "2026-06-07 02:00", kind="monthly")
    monkeypatch.setenv("DESK_NOW", "2026-06-05T02:00:00Z")
    assert ["announcement"] == tick(config)
    assert 0 == desk(capsys, config, "window", "edit", "W1", "--start", "2026-06-14 02:00")[0]

    code, out, err = desk(capsys, config, "window", "notice", "W1")  # preview, as sent
    assert 0 == code
    assert "Preview of the change notice for W1" in err
    assert out.startswith("Subject: Changed: Valuit maintenance Sunday 14 June 2026")
    assert (
        "We have moved our monthly routine maintenance (performance update), which we "
        "announced for Sunday 7 June 2026, 02:00–04:00 BST (2026-06-07 01:00–03:00 UTC); this "
        "notice replaces the earlier one. The new details:"
    ) in " ".join(out.split("\n\n")[1:3]).replace("\n", " ").replace("Dear Valuit user, ", "")
    assert "The our" not in out
    assert ["change"] == tick(config)
    loaded = load(config)
    db = open_db(loaded.database)
    sent = db.execute(
        "SELECT subject, body FROM notice WHERE kind = 'change' AND channel = 'email'"
    ).fetchone()
    db.close()
    assert sent[0] == out.splitlines()[0].removeprefix("Subject: ")
    assert "announced for Sunday 7 June 2026, 02:00–04:00 BST" in sent[1]


def test_overlapping_windows_are_refused_unless_meant(config: Path, capsys) -> None:
    add(capsys, config, "2026-06-07 02:00", kind="monthly")
    args = ("--type", "performance", "--start", "2026-06-07 03:00", "--duration", "60")
    code, _, err = desk(capsys, config, "window", "add", "--title", "Deep", *args)
    assert (2, "desk: The window would overlap W1 “Upgrade” (Sunday 7 June 2026, 02:00–04:00 BST);"
            " move it, or pass --allow-overlap if both are meant (subscribers get the notices of"
            " each).\n") == (code, err)  # fmt: skip
    assert 1 == len(desk_json(capsys, config, "window", "list"))
    assert (
        0 == desk(capsys, config, "window", "add", "--title", "Deep", *args, "--allow-overlap")[0]
    )
    shown = desk_json(capsys, config, "window", "show", "W2")
    assert [(1, ["W1"])] == [
        (e["revision"], e["detail"]["overlaps"])
        for e in shown["events"]
        if "overlaps" in e["detail"]
    ]

    add(capsys, config, "2026-06-08 02:00")
    code, _, err = desk(capsys, config, "window", "edit", "W3", "--start", "2026-06-07 02:30")
    assert 2 == code and "overlap W1 “Upgrade”" in err and "W2 “Deep”" in err
    assert 0 == desk(capsys, config, "window", "edit", "W3", "--title", "Renamed")[0]
    # W2 overlaps as meant: renaming it asks nothing again; moving W3 onto W1 when meant works.
    assert 0 == desk(capsys, config, "window", "edit", "W2", "--title", "Deeper")[0]
    meant = ("--start", "2026-06-07 02:30", "--allow-overlap")
    assert 0 == desk(capsys, config, "window", "edit", "W3", *meant)[0]
    edited = desk_json(capsys, config, "window", "show", "W3")["events"][-1]
    assert ("edited", ["W1", "W2"]) == (edited["action"], edited["detail"]["overlaps"])


def test_unmarking_a_discrepancy_restores_the_priority_from_before(
    tmp_path: Path, config: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop_mail(tmp_path, "Question", "How do I export my statements?")
    ingest(config)
    number = str(ticket(config, "Question")["id"])
    assert 0 == desk(capsys, config, "discrepancies", "--mark", number)[0]
    assert "high" == ticket(config, "Question")["priority"]
    assert 0 == desk(capsys, config, "discrepancies", "--unmark", number)[0]
    assert ("normal", "normal") == (
        ticket(config, "Question")["kind"],
        ticket(config, "Question")["priority"],
    )

    # Raised by the rule, marked again by hand, then unmarked: back to where it started.
    add(capsys, config, "2026-06-03 12:00")
    monkeypatch.setenv("DESK_NOW", "2026-06-03T14:00:00Z")
    drop_mail(tmp_path, "Balance wrong", "Since the maintenance my account balance is wrong.")
    ingest(config)
    number = str(ticket(config, "Balance wrong")["id"])
    assert ("discrepancy", "high") == (
        ticket(config, "Balance wrong")["kind"],
        ticket(config, "Balance wrong")["priority"],
    )
    assert 0 == desk(capsys, config, "discrepancies", "--mark", number)[0]
    assert 0 == desk(capsys, config, "discrepancies", "--unmark", number)[0]
    assert "normal" == ticket(config, "Balance wrong")["priority"]


_PLANNED = Window(
    id=7, title="Ledger upgrade", kind="adhoc", update_type="feature",
    description="We move the ledger to new servers.", start=datetime(2026, 6, 7, 1, tzinfo=UTC),
    end=datetime(2026, 6, 7, 3, tzinfo=UTC), zone="Europe/London",
    features=("Trading", "Statements"), release_notes="- Faster statements\n",
    nature="", expected_minutes=None, announced_at=None, forced_reason=None,
    cancelled_at=None, completed_at=None, rule=None, flags=(), rule_gone=None,
    detached_at=None, report=None, report_written_at=None, revision=3,
    created_at=datetime(2026, 6, 1, 10, tzinfo=UTC), created_by="olga",
)  # fmt: skip
_EMERGENCY = dataclasses.replace(
    _PLANNED, id=8, title="Database failover", kind="emergency", update_type="security",
    zone="UTC", features=(), release_notes="", nature="The primary database disk failed",
    description="",
    expected_minutes=90, start=datetime(2026, 6, 7, 23, 30, tzinfo=UTC),
    end=datetime(2026, 6, 8, 1, tzinfo=UTC),
    report="## Summary\nThe disk failed.\n<!-- draft -->\n## Impact\nInternal.\n"
    "## Root cause\nWear.\n## Steps taken\nSwapped it.\n",
)  # fmt: skip
_MOVED = (datetime(2026, 6, 6, 1, tzinfo=UTC), datetime(2026, 6, 6, 3, tzinfo=UTC))
_BEFORE, _DURING, _AFTER = "2026-06-01T10:00:00Z", "2026-06-08T00:00:00Z", "2026-06-09T00:00:00Z"
_COMPLETED = {"completed_at": datetime(2026, 6, 8, 0, 40, tzinfo=UTC)}
_HALF_PAST = datetime(2026, 6, 8, 0, 30, tzinfo=UTC)
_DONE_EARLY = {"completed_at": datetime(2026, 6, 7, 2, 50, tzinfo=UTC)}
_CASES = [
    ("announcement", _PLANNED, {}, None, _BEFORE),
    ("announcement", dataclasses.replace(_PLANNED, zone="UTC", features=()), {}, None, _BEFORE),
    ("reminder", _PLANNED, {}, None, _BEFORE),
    ("change", _PLANNED, {}, None, _BEFORE),
    ("change", _PLANNED, {}, _MOVED, _BEFORE),
    ("cancellation", _PLANNED, {}, None, _BEFORE),
    ("start", _PLANNED, {}, None, "2026-06-07T02:00:00Z"),
    ("change", _PLANNED, {}, _MOVED, "2026-06-07T02:00:00Z"),
    ("completion", _PLANNED, _DONE_EARLY, None, _AFTER),
    ("report", _PLANNED, {"report": "## Summary\nDone.\n"}, None, _AFTER),
    ("announcement", _EMERGENCY, {}, None, _BEFORE),
    ("start", _EMERGENCY, {}, None, _DURING),
    ("change", _EMERGENCY, {}, (_EMERGENCY.start, _HALF_PAST), _DURING),
    ("change", _EMERGENCY, {"end": _HALF_PAST}, (_EMERGENCY.start, _EMERGENCY.end), _DURING),
    ("completion", _EMERGENCY, _COMPLETED, None, _AFTER),
    ("report", _EMERGENCY, _COMPLETED, None, _AFTER),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "window", "changes", "previous", "now"),
    _CASES,
    ids=[f"{case[1].kind}-{case[0]}-{i}" for i, case in enumerate(_CASES)],
)
def test_each_notice_reads_as_the_policy_words_it(
    kind, window, changes, previous, now, monkeypatch: pytest.MonkeyPatch, snapshot
) -> None:
    """Every notice's subject, email and banner, word for word (`pytest --snapshot-update`
    accepts a reviewed change): UTC and local times, features, the reminders, and for an
    emergency its nature and expected downtime."""
    monkeypatch.setenv("DESK_NOW", now)
    w = dataclasses.replace(window, **changes)
    update = "The failover finished early." if kind == "completion" else ""
    rendered = notices.render(w, kind, previous=previous, update=update)
    assert snapshot == [(n.channel, n.subject, n.body) for n in rendered]


def test_a_reply_quotes_the_notice_of_the_window_in_force_else_of_the_next_one(
    config: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = open_db(load(config).database)
    assert "(No maintenance window is in force or announced.)" == replies.window_notice(db)
    for start in ("2026-06-07 02:00", "2026-06-05 02:00", "2026-06-09 02:00"):
        add(capsys, config, start)
    for label in ("W1", "W2", "W3"):
        assert 0 == desk(capsys, config, "window", "notice", label, "--issue")[0]
    assert "Friday 5 June" in replies.window_notice(db)  # the next one
    assert 0 == desk(capsys, config, "window", "cancel", "W2")[0]
    assert "Sunday 7 June" in replies.window_notice(db)  # a cancelled one is no news
    monkeypatch.setenv("DESK_NOW", "2026-06-09T01:30:00Z")  # W3 in force, W1 is over
    assert "Tuesday 9 June" in replies.window_notice(db)


def test_cancelling_a_window_cancels_its_unsent_notice_mails_and_says_why(
    config: Path, capsys
) -> None:
    add(capsys, config, "2026-06-07 02:00")
    assert 0 == desk(capsys, config, "window", "notice", "W1", "--issue")[0]
    assert 0 == desk(capsys, config, "window", "cancel", "W1")[0]
    db = open_db(load(config).database)
    assert [("cancelled", "the window was cancelled")] == db.execute(
        "SELECT status, last_error FROM outbox WHERE kind = 'notice' AND notice_id IS NOT NULL"
    ).fetchall()


def test_a_window_moved_just_now_is_announced_as_told_when_it_moved(
    config: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(capsys, config, "2026-06-11T10:00:00Z")
    monkeypatch.setenv("DESK_NOW", "2026-06-01T11:00:00Z")
    code, _, err = desk(capsys, config, "window", "edit", "W1", "--start", "2026-06-03T11:00:00Z")
    assert 0 == code, err
    monkeypatch.setenv("DESK_NOW", "2026-06-01T11:01:00Z")
    assert 0 == desk(capsys, config, "window", "notice", "W1", "--issue")[0]
    # A change to what the notice says supersedes its mails not yet sent, and says by what.
    assert 0 == desk(capsys, config, "window", "edit", "W1", "--title", "Upgrade 2")[0]
    db = open_db(load(config).database)
    assert {("cancelled", "superseded by revision 3")} == set(
        db.execute("SELECT status, last_error FROM outbox WHERE kind = 'notice'").fetchall()
    )


def test_a_notice_issued_for_another_zone_reads_in_that_zone(config: Path, capsys) -> None:
    add(capsys, config, "2026-06-07 02:00")
    db = open_db(load(config).database)
    issued, _ = windows.issue_notice(db, 1, "announcement", "olga", zone="America/New_York")
    assert "Saturday 6 June 2026, 21:00–23:00 EDT" in issued[0]["body"] + issued[1]["body"]
