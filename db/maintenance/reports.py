"""Post-maintenance reports: the template pre-filled from the desk's data, checking and storing
a written report, and the reports that are overdue.

An emergency window owes a report from the moment it ends until one is written (the policy's
"detailed reports after emergency maintenance, outlining the cause and the steps taken").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlite_utils

from db.core import clock
from db.core.connect import write
from db.core.errors import DeskError
from db.maintenance import notices, windows

SECTIONS = ("Summary", "Impact", "Timeline", "Root cause", "Steps taken", "Follow-ups")
REQUIRED = ("Summary", "Root cause", "Steps taken")
_HINTS = {
    "Summary": "What happened and what users saw, in two or three sentences.",
    "Timeline": "Add detection, diagnosis and fix times to the events below.",
    "Root cause": "Why it happened.",
    "Steps taken": "What was done to resolve it.",
    "Follow-ups": "What will keep it from happening again, with owners.",
}


def impact(db: sqlite_utils.Database, window_id: int) -> dict[str, dict[str, list[int]]]:
    """Per function: tickets opened during the window, and discrepancy reports after it."""
    result: dict[str, dict[str, list[int]]] = {"during": {}, "discrepancies": {}}
    for name, condition in (
        ("during", "t.during_window_id = ?"),
        ("discrepancies", "t.window_id = ? AND t.kind = 'discrepancy'"),
    ):
        for function, ticket in db.execute(
            "SELECT f.function, t.id FROM ticket t JOIN ticket_function f ON f.ticket_id = t.id "
            f"WHERE {condition} ORDER BY f.function, t.id",
            [window_id],
        ):
            result[name].setdefault(function, []).append(ticket)
    return result


def _impact_text(found: dict[str, dict[str, list[int]]]) -> str:
    lines = []
    for name, label in (
        ("during", "Tickets received during the window"),
        ("discrepancies", "Discrepancy reports after the window"),
    ):
        lines.append(f"{label}, per function:")
        per = found[name]
        lines += [
            f"- {fn}: {len(ids)} ({', '.join(f'#{i}' for i in ids)})" for fn, ids in per.items()
        ] or ["- none"]
    return "\n".join(lines)


def template(db: sqlite_utils.Database, w: windows.Window) -> str:
    """The report as it stands, or a new one pre-filled with impact and timeline."""
    if w.report:
        return w.report
    timeline = "\n".join(
        f"- {e['at'][:16].replace('T', ' ')} UTC  {e['action']} ({e['actor']})"
        for e in windows.events(db, w.id)
    )
    body = {
        "Impact": _impact_text(impact(db, w.id)),
        "Timeline": timeline,
    }
    expected = f"expected {w.expected_minutes} min, " if w.expected_minutes else ""
    actual = int((w.ends - w.start).total_seconds() // 60)
    head = (
        f"# Post-maintenance report: {w.label} {w.title}\n\n"
        f"Window: {notices.utc_span(w.start, w.ends)} ({notices.span(w.start, w.ends, w.zone)})"
        f"\nNature of the issue: {w.nature or '-'}\nDowntime: {expected}actual {actual} min\n"
    )
    parts = []
    for name in SECTIONS:
        hint = f"<!-- {_HINTS[name]} -->\n" if name in _HINTS else ""
        parts.append(f"## {name}\n\n{hint}{body.get(name, '')}".rstrip())
    return head + "\n" + "\n\n".join(parts) + "\n"


def writable(db: sqlite_utils.Database, window_id: int) -> windows.Window:
    """The window, if a report can be written for it now: after it completes."""
    w = windows.get(db, window_id)
    status = w.status(clock.now())
    if status != "completed":
        raise DeskError(f"{w.label} is {status}; a report is written after it completes.")
    return w


def write_report(
    db: sqlite_utils.Database, window_id: int, text: str, actor: str
) -> windows.Window:
    """Store the report for a window that has ended, once its key sections are written."""
    found = notices.sections(text)
    missing = [name for name in REQUIRED if not found.get(name)]
    if missing:
        raise DeskError(
            f"The report's {', '.join(missing)} section{'s are' if len(missing) > 1 else ' is'} "
            "empty; write under each '## ' heading and save again."
        )
    with write(db):
        w = writable(db, window_id)
        changes = {"report": text, "report_written_at": clock.now_iso(), "report_by": actor}
        return windows.change(db, w, actor, "report", changes)


def overdue(db: sqlite_utils.Database, now: datetime) -> list[windows.Window]:
    """Emergencies that have ended without a report, oldest first."""
    return [
        windows.Window.from_row(row)
        for row in db.query(
            "SELECT * FROM window WHERE kind = 'emergency' AND cancelled_at IS NULL "
            "AND report_written_at IS NULL AND completed_at <= ? ORDER BY ends_at",
            [clock.iso(now)],
        )
    ]


def as_dict(w: windows.Window) -> dict[str, Any]:
    return {
        "window": w.label,
        "written_at": clock.iso(w.report_written_at) if w.report_written_at else None,
        "sections": notices.sections(w.report or ""),
    }
