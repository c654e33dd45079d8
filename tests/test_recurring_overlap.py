"""Recurring occurrences that overlap become one window, so one set of notices (issue 13): with
the example config the quarterly window and the monthly one fall on the same night each
quarter; the quarterly absorbs the monthly (skipped by default, or merged with
`on_overlap = "merge"`), through the real notice scheduler."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from db.core.config import load
from db.core.connect import open_db, open_reader
from db.core.errors import DeskError
from db.maintenance import notice_schedule, recurrence
from ingest import daemon
from tests.conftest import write_config_file
from tests.test_reading_never_writes import NOTICES, example_rules, ingest, run

# The quarterly window: Sat 2027-01-02 22:00 – Sun 04:00 GMT; the monthly: Sun 02:00 – 04:00.
MOMENTS = [
    "2026-12-20T12:00:00Z",  # materialised, nothing due
    "2026-12-26T23:00:00Z",  # 7 days before the quarterly: its announcement
    "2026-12-27T03:00:00Z",  # 7 days before the monthly would have been
    "2027-01-01T23:00:00Z",  # 24 hours before: the reminder
    "2027-01-02T22:30:00Z",  # the start
    "2027-01-03T04:30:00Z",  # the completion
]


def night_mails(db_path: Path) -> list[tuple[str, str, str]]:
    """(window title, notice kind, recipient) of every notice mail for the night of 2–3 Jan."""
    with closing(open_reader(db_path)) as db:
        return db.execute(
            "SELECT w.title, n.kind, o.rcpt FROM outbox o JOIN notice n ON n.id = o.notice_id "
            "JOIN window w ON w.id = n.window_id WHERE w.start_at < '2027-01-03T12' "
            "AND w.ends_at > '2027-01-02T12' ORDER BY o.id"
        ).fetchall()


def config_with(tmp_path: Path, rules: str) -> Path:
    return write_config_file(
        tmp_path, extra=f'\n[maintenance]\nzone = "Europe/London"\n{rules}\n{NOTICES}'
    )


def test_the_example_configs_quarterly_night_gets_one_set_of_notices(tmp_path: Path) -> None:
    config = config_with(tmp_path, example_rules())
    first = ingest(config, now=MOMENTS[0])
    assert (
        "(quarterly@2027-01-02T22:00) overlaps monthly@2027-01-03T02:00: one window for the "
        "night, monthly@2027-01-03T02:00 is skipped (on_overlap)"
    ) in first.stderr
    for moment in MOMENTS[1:]:
        ingest(config, now=moment)
    expected = [
        ("Quarterly deep maintenance", kind, "ops@example.com")
        for kind in ("announcement", "reminder", "start", "completion")
    ]
    assert expected == night_mails(tmp_path / "desk.db")

    preview = json.loads(run("desk", config, "window", "preview", "--json", now=MOMENTS[0]).stdout)
    assert ["skipped-for:quarterly@2027-01-02T22:00"] == next(
        o["flags"] for o in preview if o["planned_local"] == "2027-01-03T02:00"
    )


def test_merge_makes_the_deeper_window_span_both_and_mails_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The monthly moved to 03:00–05:00 so that merging visibly stretches the quarterly.
    rules = (
        example_rules()
        .replace('on_overlap = "skip"', 'on_overlap = "merge"', 1)
        .replace('start = "02:00"', 'start = "03:00"', 1)
    )
    assert 'on_overlap = "merge"' in rules
    config = load(config_with(tmp_path, rules))
    db = open_db(config.database)
    for moment in [*MOMENTS[:-1], "2027-01-03T05:30:00Z"]:  # it completes at 05:00 now
        monkeypatch.setenv("DESK_NOW", moment)
        recurrence.sync(db, config.maintenance, str(config.path), "test")
        notice_schedule.tick(db, config.mail, config.maintenance)
    night = db.execute(
        "SELECT title, start_at, end_at, features, flags FROM window "
        "WHERE start_at < '2027-01-03T12' AND ends_at > '2027-01-02T12'"
    ).fetchall()
    assert [
        (
            "Quarterly deep maintenance",
            "2027-01-02T22:00:00.000Z",
            "2027-01-03T05:00:00.000Z",
            ["Trading", "Statements", "Reports", "API"],
            ["merged:monthly@2027-01-03T03:00"],
        )
    ] == [(t, s, e, json.loads(f), json.loads(g)) for t, s, e, f, g in night]
    assert ["announcement", "reminder", "start", "completion"] == [
        kind for _, kind, _ in night_mails(tmp_path / "desk.db")
    ]


def test_an_overlap_already_stored_is_withdrawn_when_unannounced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database materialised before overlaps were settled holds both windows of the night."""
    monkeypatch.setenv("DESK_NOW", MOMENTS[0])
    config = load(config_with(tmp_path, example_rules()))
    db = open_db(config.database)
    monthly = tuple(r for r in config.maintenance.recurring if r.name == "monthly")
    recurrence.sync(db, dataclasses.replace(config.maintenance, recurring=monthly), "old", "test")
    report = recurrence.sync(db, config.maintenance, str(config.path), "test")
    assert ["monthly@2027-01-03T02:00 (W1)", "monthly@2027-04-04T02:00 (W4)"] == report.withdrawn
    assert [] == report.flagged


def test_the_running_daemon_materialises_again_as_the_horizon_moves_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the daemon materialises, so it must do it again while it runs, not only at start."""
    monkeypatch.setenv("DESK_NOW", "2026-12-20T12:00:00Z")
    monkeypatch.setattr(daemon, "SYNC_SECONDS", 0.2)
    monkeypatch.setattr(daemon, "NOTICE_SECONDS", 0.1)
    config = load(config_with(tmp_path, "horizon_days = 20\n" + example_rules()))

    def starts() -> list[str]:
        try:
            db = open_reader(config.database)
        except DeskError:  # the daemon is still making the schema
            return []
        with closing(db):
            return [row[0] for row in db.execute("SELECT occurrence FROM window ORDER BY id")]

    stop = threading.Event()
    thread = threading.Thread(
        target=daemon.run, args=(config,), kwargs={"once": False, "stop": stop}
    )
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while starts() != ["2027-01-02T22:00"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ["2027-01-02T22:00"] == starts()
        monkeypatch.setenv("DESK_NOW", "2027-01-20T12:00:00Z")  # a month on, same process
        while len(starts()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ["2027-01-02T22:00", "2027-02-07T02:00"] == starts()
    finally:
        stop.set()
        thread.join(timeout=15)
