"""The audit trail: every change to a ticket, by whom and when, appended in the changer's
transaction."""

from __future__ import annotations

import json

import sqlite_utils

from db.core import clock


def record_event(
    db: sqlite_utils.Database,
    ticket_id: int,
    actor: str,
    action: str,
    detail: dict,
    *,
    at: str | None = None,
) -> None:
    """Append to a ticket's audit trail (inside the caller's transaction)."""
    db.execute(
        "INSERT INTO ticket_event (ticket_id, at, actor, action, detail) VALUES (?, ?, ?, ?, ?)",
        [ticket_id, at or clock.now_iso(), actor, action, json.dumps(detail, ensure_ascii=False)],
    )
