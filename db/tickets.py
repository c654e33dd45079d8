"""Reading tickets for people: pages of the list, one ticket with its thread."""

from __future__ import annotations

from typing import Any

import sqlite_utils


def recent(db: sqlite_utils.Database, limit: int = 200) -> list[dict[str, Any]]:
    """The newest tickets first, one page."""
    return list(
        db.query(
            "SELECT id, subject, requester_addr, requester_name, function, status, priority, "
            "assignee, kind, unparsed, message_count, created_at, last_message_at "
            "FROM ticket ORDER BY last_message_at DESC, id DESC LIMIT ?",
            [limit],
        )
    )
