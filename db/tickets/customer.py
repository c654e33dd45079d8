"""The customer behind a ticket: the other tickets its requester opened, open ones first."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from db.tickets import search

_OPEN = "status IN (" + ", ".join(f"'{s}'" for s in search.OPEN_STATUSES) + ")"
# Merged tickets are left out: each stands for the ticket it was merged into.
_OTHERS = "FROM ticket WHERE requester_addr = ? AND id != ? AND merged_into IS NULL"


def other_tickets(
    db: sqlite_utils.Database, ticket: dict[str, Any], limit: int = 50
) -> dict[str, Any]:
    """The tickets of `ticket`'s requester besides it: {"addr", "count", "open", "tickets"},
    `tickets` being at most `limit` rows (id, subject, status, priority, last_message_at,
    message_count), open ones first, then the most recently active. A ticket without a
    requester address (unparsable mail) has none."""
    addr = ticket["requester_addr"]
    if not addr:
        return {"addr": addr, "count": 0, "open": 0, "tickets": []}
    params = [addr, ticket["id"]]
    count, open_count = db.execute(
        f"SELECT count(*), coalesce(sum({_OPEN}), 0) {_OTHERS}", params
    ).fetchone()
    rows = list(
        db.query(
            "SELECT id, subject, status, priority, last_message_at, message_count "
            f"{_OTHERS} ORDER BY NOT {_OPEN}, last_message_at DESC, id DESC LIMIT ?",
            [*params, limit],
        )
    )
    return {"addr": addr, "count": count, "open": open_count, "tickets": rows}
