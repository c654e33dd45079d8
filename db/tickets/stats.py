"""Counts for scripts and ops: `desk stats --json` prints what `summary()` returns."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from db.core.migrations import OUTBOX_STATUSES
from db.mailin import sources
from db.mailout import outbox


def summary(db: sqlite_utils.Database) -> dict[str, Any]:
    one = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
    per_function: dict[str, dict[str, int]] = {}
    for function, status, count in db.execute(
        "SELECT f.function, t.status, count(*) FROM ticket_function f "
        "JOIN ticket t ON t.id = f.ticket_id GROUP BY f.function, t.status"
    ):
        per_function.setdefault(function, {})[status] = count
    # The incoming mail by its kind (`message.kind`): a person's, through a list, or a machine's.
    kinds = dict(db.execute("SELECT kind, count(*) FROM message WHERE direction = 'in' GROUP BY 1"))
    return {
        "messages": one("SELECT count(*) FROM message WHERE direction = 'in'"),
        "sent_in_threads": one("SELECT count(*) FROM message WHERE direction = 'out'"),
        "tickets": one("SELECT count(*) FROM ticket"),
        "tickets_by_function": per_function,
        "tickets_by_status": dict(db.execute("SELECT status, count(*) FROM ticket GROUP BY 1")),
        "unparsed": one("SELECT count(*) FROM message WHERE parse_error IS NOT NULL"),
        "auto_replies": kinds.get("auto-reply", 0),
        "bounces": kinds.get("bounce", 0),
        "delay_notices": kinds.get("delay", 0),
        "read_receipts": kinds.get("read-receipt", 0),
        "via_list": kinds.get("list", 0),
        "locations": one("SELECT count(*) FROM message_location"),
        "failures": sources.failures(db),
        "sources": sources.all_states(db),
        "outbox": {status: 0 for status in OUTBOX_STATUSES} | outbox.counts(db),
    }
