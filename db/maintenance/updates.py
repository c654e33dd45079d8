"""Progress updates on a window, as status pages post them: free text at a stage of the work
(investigating → identified → monitoring → resolved), stored, listed for whatever publishes
them, and mailed to the subscribers.

"resolved" on an emergency in force completes it: its completion notice carries the update's
text, so subscribers get one mail saying it is over, not two. Updates are what held when they
were written, so a later change to the window never withdraws one (unlike its notices).
"""

from __future__ import annotations

from typing import Any

import sqlite_utils

from db.core import clock
from db.core.config import MailOut
from db.core.connect import write
from db.core.errors import DeskError
from db.core.migrations import UPDATE_STATUSES
from db.mailout import outbox, subscribers
from db.maintenance import notices, windows


def listing(db: sqlite_utils.Database, window_id: int | None = None) -> list[dict[str, Any]]:
    """Updates oldest first, of one window or of all: each {"id", "window_id", "status",
    "body", "created_at" (ISO 8601 UTC), "created_by"}."""
    where, params = ("WHERE window_id = ?", [window_id]) if window_id is not None else ("", [])
    return list(
        db.query(
            "SELECT id, window_id, status, body, created_at, created_by FROM window_update "
            f"{where} ORDER BY created_at, id",
            params,
        )
    )


def mail_text(w: windows.Window, update: dict[str, Any]) -> tuple[str, str]:
    """The subject and body of the mail that tells subscribers of `update` to `w`."""
    status = update["status"].capitalize()
    what = "Emergency maintenance" if w.kind == "emergency" else "Valuit maintenance"
    state = {
        "active": f"It is expected to end at {notices.time_of(w.ends, w.zone)}.",
        "overrunning": "It is taking longer than expected; we will tell you when it is over.",
        "planned": f"It is planned for {notices.utc_span(w.start, w.ends)}.",
        "announced": f"It is planned for {notices.utc_span(w.start, w.ends)}.",
    }.get(w.status(clock.now()), "")
    nature = f"Nature of the issue: {w.nature}" if w.kind == "emergency" and w.nature else ""
    parts = [f"{status}: {update['body'].strip()}", nature, state]
    body = "Dear Valuit user,\n\n" + "\n\n".join(p for p in parts if p)
    body += f"\n\nValuit support\n({w.label}, update {update['id']})\n"
    return f"{what} update ({status}): {w.title}", body


def post(
    db: sqlite_utils.Database,
    window_id: int,
    status: str,
    body: str,
    actor: str,
    *,
    mail: MailOut | None = None,
) -> tuple[dict[str, Any], windows.Window, int]:
    """Store a progress update and (with `mail`) queue it to every subscriber, in one
    transaction; "resolved" completes an emergency in force. Returns the update (as `listing`
    gives it), the window after it and how many mails were queued. Raises DeskError for an
    unknown status, an empty text, or a cancelled window."""
    if status not in UPDATE_STATUSES:
        raise DeskError(f"{status!r} is not an update status; use {', '.join(UPDATE_STATUSES)}.")
    if not body.strip():
        raise DeskError("An update needs its text: say what is known and what is being done.")
    with write(db):
        w = windows.get(db, window_id)
        if w.cancelled_at is not None:
            raise DeskError(f"{w.label} is cancelled; there is nothing to update users on.")
        update_id = db.execute(
            "INSERT INTO window_update (window_id, status, body, created_at, created_by) "
            "VALUES (?, ?, ?, ?, ?)",
            [w.id, status, body.strip(), clock.now_iso(), actor],
        ).lastrowid
        update = next(r for r in listing(db, w.id) if r["id"] == update_id)
        detail = {"update": update_id, "status": status}
        windows.audit(db, w.id, w.revision, actor, "update", detail)
        ends = status == "resolved" and w.kind == "emergency"
        if ends and w.status(clock.now()) in windows.IN_FORCE:
            w = windows.complete_within(db, w, actor)
            text = f"{status.capitalize()}: {update['body']}"
            issued, _ = notices.record(db, w, "completion", actor, mail=mail, update=text)
            queued = outbox.queued_for_notices(db, [n["id"] for n in issued])
        elif mail is not None:
            subject, text = mail_text(w, update)
            message = {"window_id": w.id, "subject": subject, "body": text}
            queued = subscribers.queue_notice(db, message, mail, actor, key=f"update:{update_id}")
        else:
            queued = 0
    return update, w, queued
