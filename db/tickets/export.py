"""Tickets read out for `desk export`: one at a time through a cursor, never the whole table.

Each iterator keeps one ticket (with its messages) in memory at once, so an export of 100,000
tickets takes the memory of its largest ticket. Order is by ticket number, oldest first, so two
exports of the same data compare line by line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import sqlite_utils

from db.tickets import tickets

# The ticket fields an export carries, in the order a CSV gives them.
TICKET_FIELDS = (
    "id", "status", "priority", "functions", "assignee", "requester_addr", "requester_name",
    "subject", "created_at", "last_message_at", "message_count", "tags", "kind",
)  # fmt: skip


def ticket_rows(
    db: sqlite_utils.Database, condition: str, params: list[object]
) -> Iterator[dict[str, Any]]:
    """The tickets `condition` (on `ticket t`, from `search.where`) selects, by number: dicts
    with TICKET_FIELDS, `functions` and `tags` as lists of strings."""
    columns = ", ".join(f"t.{name}" for name in TICKET_FIELDS if name != "functions")
    cursor = db.execute(
        f"SELECT {columns}, (SELECT json_group_array(f.function) FROM ticket_function f "
        f"WHERE f.ticket_id = t.id) AS functions FROM ticket t WHERE {condition} ORDER BY t.id",
        params,
    )
    names = [d[0] for d in cursor.description]
    for values in cursor:
        row = dict(zip(names, values, strict=True))
        row["functions"] = json.loads(row["functions"])
        row["tags"] = json.loads(row["tags"] or "[]")
        yield {name: row[name] for name in TICKET_FIELDS}


def with_messages(
    db: sqlite_utils.Database, condition: str, params: list[object]
) -> Iterator[dict[str, Any]]:
    """`ticket_rows`, each with `messages`: its thread as the ticket screen reads it
    (`tickets.thread`, oldest first, without raw bytes)."""
    for row in ticket_rows(db, condition, params):
        row["messages"] = tickets.thread(db, row["id"])
        yield row


def raw_messages(
    db: sqlite_utils.Database, condition: str, params: list[object]
) -> Iterator[tuple[int, str, str, bytes]]:
    """(ticket id, sender address, received at, raw bytes as received) for every stored message
    of the tickets `condition` selects, by ticket number and then in thread order."""
    for row in ticket_rows(db, condition, params):
        yield from (
            (row["id"], sender, received, raw)
            for sender, received, raw in db.execute(
                "SELECT m.from_addr, m.received_at, r.raw FROM message m "
                "JOIN raw_message r ON r.message_id = m.id "
                "WHERE m.ticket_id = ? ORDER BY m.received_at, m.id",
                [row["id"]],
            )
        )
