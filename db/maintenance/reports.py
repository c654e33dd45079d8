"""Post-maintenance reports: the template pre-filled from the desk's data, checking and storing
a written report, and the reports that are overdue.

An emergency window owes a report from the moment it ends until one is written (the policy's
"detailed reports after emergency maintenance, outlining the cause and the steps taken").
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from db.core import clock
from db.core.connect import write
from db.core.errors import DeskError
from db.core.migrations import FUNCTIONS
from db.maintenance import impact, notices, rule_settings, windows

SECTIONS = ("Summary", "Impact", "Timeline", "Root cause", "Steps taken", "Follow-ups")
REQUIRED = ("Summary", "Root cause", "Steps taken")
_HINTS = {
    "Summary": "What happened and what users saw, in two or three sentences.",
    "Timeline": "Add detection, diagnosis and fix times to the events below.",
    "Root cause": "Why it happened.",
    "Steps taken": "What was done to resolve it.",
    "Follow-ups": "What will keep it from happening again, with owners.",
}


_BLOCK = re.compile(r"<!-- impact: (live|final)\b.*?-->\n.*?<!-- /impact -->", re.DOTALL)


def _listed(label: str, rows: list[dict[str, Any]], total: int) -> list[str]:
    per: dict[str, list[int]] = {fn: [] for fn in FUNCTIONS}
    for row in rows:
        for function in row["functions"]:
            per[function].append(row["ticket"])
    lines = [f"{label}: {total}"]
    return lines + [
        f"- {fn}: {len(ids)} ({', '.join(f'#{i}' for i in ids)})" for fn, ids in per.items() if ids
    ]


def impact_block(db: sqlite_utils.Database, w: windows.Window, now: datetime) -> str:
    """The report's impact counts as a block the desk rewrites: live (recounted every time the
    report is read or saved) until the verification period ends, then final."""
    counted = impact.counts_many(db, [w], now)[w.id]
    found = impact.tickets(db, w.id)
    until = counted["verification_ends_at"][:16].replace("T", " ")
    if counted["final"]:
        head = [
            "<!-- impact: final (no longer recounted) -->",
            f"Final counts: the verification period ended {until} UTC.",
        ]
    else:
        head = [
            "<!-- impact: live (the desk recounts this block until the verification period "
            "ends; write your own words outside it) -->",
            f"Live counts as of {clock.iso(now)[:16].replace('T', ' ')} UTC; recounted until "
            f"the verification period ends {until} UTC, then frozen.",
        ]
    lines = [
        *head,
        "",
        *_listed(
            "Tickets received during the window", found[impact.RECEIVED],
            counted[impact.RECEIVED]["total"],
        ),
        *_listed(
            "Discrepancy reports after the window (verification period)",
            found[impact.DISCREPANCIES], counted[impact.DISCREPANCIES]["total"],
        ),
        *_listed(
            "Follow-ups in older threads during the window (tickets opened before it)",
            found[impact.FOLLOWUPS], counted["linked_followups"],
        ),
        "<!-- /impact -->",
    ]  # fmt: skip
    return "\n".join(lines)


def _live(text: str) -> re.Match[str] | None:
    """The impact block of `text` while the desk still recounts it."""
    block = _BLOCK.search(text)
    return block if block is not None and block.group(1) == "live" else None


def refreshed(db: sqlite_utils.Database, w: windows.Window, text: str) -> str:
    """`text` with its impact block recounted now, unless that block is final (or was
    removed: the writer's choice)."""
    block = _live(text)
    if block is None:
        return text
    return text[: block.start()] + impact_block(db, w, clock.now()) + text[block.end() :]


def template(db: sqlite_utils.Database, w: windows.Window) -> str:
    """The report as it stands, or a new one pre-filled with impact and timeline; either way
    with its impact counts recounted until the verification period ends, and final after it.
    Reading never writes (issue 13): the counts are stored final by `freeze_ended`, which the
    daemon runs on its timer and the desk and `desk discrepancies` run before a mark moves them."""
    if w.report:
        return refreshed(db, w, w.report)
    timeline = "\n".join(
        f"- {e['at'][:16].replace('T', ' ')} UTC  {e['action']} ({e['actor']})"
        for e in windows.events(db, w.id)
    )
    body = {
        "Impact": impact_block(db, w, clock.now()),
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
        text = refreshed(db, w, text)
        changes = {"report": text, "report_written_at": clock.now_iso(), "report_by": actor}
        return windows.change(db, w, actor, "report", changes)


def freeze(db: sqlite_utils.Database, w: windows.Window) -> str:
    """The stored report with its impact block made final, once its verification period has
    ended: stored so, and never recounted again. Returns the report unchanged when its block is
    already final or gone."""
    with write(db):
        current = windows.get(db, w.id)
        text = current.report or ""
        final = refreshed(db, current, text)
        if final != text:
            db.execute("UPDATE window SET report = ? WHERE id = ?", [final, w.id])
    return final


def freeze_ended(db: sqlite_utils.Database) -> list[str]:
    """Freeze the impact counts of every stored report whose verification period is over
    (`freeze`); the labels of the windows frozen now. The daemon calls it on its notice
    timer, so a report's counts are those at the end of its period, read or not."""
    hours = rule_settings.load(db).verification_hours
    until = clock.iso(clock.now() - timedelta(hours=hours))
    due = [
        windows.Window.from_row(row)
        for row in db.query(
            "SELECT * FROM window WHERE report IS NOT NULL AND ends_at <= ? "
            "AND instr(report, '<!-- impact: live') > 0 ORDER BY id",
            [until],
        )
    ]
    return [w.label for w in due if freeze(db, w) != w.report]


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


def as_dict(db: sqlite_utils.Database, w: windows.Window) -> dict[str, Any]:
    """The written report's sections, its impact counts as `template` gives them."""
    return {
        "window": w.label,
        "written_at": clock.iso(w.report_written_at) if w.report_written_at else None,
        "sections": notices.sections(template(db, w) if w.report else ""),
    }
