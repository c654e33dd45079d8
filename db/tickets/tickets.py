"""Tickets for people: pages of the list, one ticket with its thread, and the agents' changes.

The list is read a page at a time (`LIMIT`/`OFFSET` over an index), never whole. Every change
is optimistic: it names the version the agent saw, and if someone else changed the ticket since,
nothing is written and `ConflictError` says so; each change lands in the audit trail.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from db.core import clock, sla
from db.core.connect import write
from db.core.errors import ConflictError, DeskError, NotFoundError
from db.core.events import record_event
from db.core.migrations import FUNCTIONS, PRIORITIES, STATUSES
from db.mailin import inline, invitation, threads
from db.maintenance import windows
from db.tickets import search

_EDITABLE = ("status", "priority", "function", "assignee", "tags", "window_id")


def page(
    db: sqlite_utils.Database,
    condition: str,
    params: list[object],
    sort: str,
    offset: int,
    limit: int,
) -> list[dict[str, Any]]:
    """`limit` tickets from row `offset` of the list that `condition` selects."""
    return list(
        db.query(
            f"SELECT t.* FROM ticket t WHERE {condition} ORDER BY {search.order_by(sort)} "
            "LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
    )


# A list counts its tickets up to here and says "1,000+" beyond: counting 100,000 matches
# exactly costs a walk of them all, and nobody reads the figure past a thousand.
COUNT_CAP = 1001


def first_page(
    db: sqlite_utils.Database,
    condition: str,
    params: list[object],
    sort: str,
    limit: int,
    cap: int,
) -> tuple[list[dict[str, Any]], int]:
    """The list's first `limit` tickets and how many it holds, counted up to `cap` (show
    "1,000+" when the count is `cap`, with cap = 1,001). One walk serves both, so a search
    index's match set is gathered once."""
    rows = list(
        db.query(
            f"SELECT t.* FROM ticket t WHERE {condition} ORDER BY {search.order_by(sort)} LIMIT ?",
            [*params, max(limit, cap)],
        )
    )
    return rows[:limit], len(rows)


def count(
    db: sqlite_utils.Database, condition: str, params: list[object], cap: int | None = None
) -> int:
    """How many tickets `condition` selects; with `cap`, counting stops there (a list then says
    "1,000+" rather than walk 100,000 matches to say exactly)."""
    if cap is None:
        return db.execute(f"SELECT count(*) FROM ticket t WHERE {condition}", params).fetchone()[0]
    return db.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM ticket t WHERE {condition} LIMIT ?)", [*params, cap]
    ).fetchone()[0]


def sort_keys(
    db: sqlite_utils.Database,
    condition: str,
    params: list[object],
    sort: str,
    ticket_id: int | None = None,
) -> tuple[object, ...] | None:
    """The values `sort` orders by for one ticket of the list, or for its first row when
    `ticket_id` is None; None when the list does not hold it (or is empty)."""
    keys = search.key_values(sort)
    if ticket_id is None:
        row = db.execute(
            f"SELECT {keys} FROM ticket t WHERE {condition} "
            f"ORDER BY {search.order_by(sort)} LIMIT 1",
            params,
        ).fetchone()
    else:
        row = db.execute(
            f"SELECT {keys} FROM ticket t WHERE t.id = ? AND ({condition})",
            [ticket_id, *params],
        ).fetchone()
    return tuple(row) if row is not None else None


def count_before(
    db: sqlite_utils.Database,
    condition: str,
    params: list[object],
    sort: str,
    keys: tuple[object, ...],
) -> int:
    """How many rows of the list sort before a row with sort values `keys` (through the sort's
    index: the cost grows with the answer, not with the table)."""
    return db.execute(
        f"SELECT count(*) FROM ticket t WHERE ({condition}) AND {search.before(sort)}",
        [*params, *search.bound(sort, keys)],
    ).fetchone()[0]


def position(
    db: sqlite_utils.Database, condition: str, params: list[object], sort: str, ticket_id: int
) -> int | None:
    """The row a ticket is on in the list, or None when the list does not hold it."""
    keys = sort_keys(db, condition, params, sort, ticket_id)
    return None if keys is None else count_before(db, condition, params, sort, keys)


def around(
    db: sqlite_utils.Database,
    condition: str,
    params: list[object],
    sort: str,
    keys: tuple[object, ...],
    before: int,
    after: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Up to `before` rows just before the row with sort values `keys`, in list order, and up to
    `after` rows from that row on: the rows on screen around a ticket deep in the list, read by
    keyset (the sort's index) instead of OFFSET, whose cost grows with the depth."""
    columns = [expr for expr, _ in search.SORTS[sort]]
    ascending = search.SORTS[sort][0][1] == "ASC"
    reverse = ", ".join(f"{c} {'DESC' if ascending else 'ASC'}" for c in columns)
    values = search.bound(sort, keys)
    head = list(
        db.query(
            f"SELECT t.* FROM ticket t WHERE ({condition}) AND {search.before(sort)} "
            f"ORDER BY {reverse} LIMIT ?",
            [*params, *values, before],
        )
    )
    tail = list(
        db.query(
            f"SELECT t.* FROM ticket t WHERE ({condition}) AND {search.from_row(sort)} "
            f"ORDER BY {search.order_by(sort)} LIMIT ?",
            [*params, *values, after],
        )
    )
    return head[::-1], tail


def get(db: sqlite_utils.Database, ticket_id: int) -> dict[str, Any]:
    rows = list(db.query("SELECT * FROM ticket WHERE id = ?", [ticket_id]))
    if not rows:
        raise NotFoundError(f"ticket #{ticket_id} does not exist")
    row = rows[0]
    row["functions"] = [
        f
        for (f,) in db.execute(
            "SELECT function FROM ticket_function WHERE ticket_id = ?", [ticket_id]
        )
    ]
    return row


# A message with, for one we sent, where its mail stands in the outbox (NULL for one we got).
_MESSAGES = (
    "SELECT m.id, m.from_addr, m.from_name, m.to_addrs, m.cc_addrs, m.subject, m.sent_at, "
    "m.received_at, m.headers, m.body_text, m.body_html, m.auto, m.kind, m.read_at, "
    "m.thread_rule, m.parse_error, m.forwarded, m.charset_declared, m.charset_used, m.reply_to, "
    "m.source, m.direction, m.outbox_id, o.rcpt AS mail_to, o.created_by AS mail_by, "
    "o.status AS mail_status, o.last_error AS mail_error, o.attempts AS mail_attempts, "
    "o.next_attempt_at AS mail_next_attempt_at, o.sent_at AS mail_sent_at "
    "FROM message m LEFT JOIN outbox o ON o.id = m.outbox_id WHERE m.ticket_id = ? "
)


def thread(db: sqlite_utils.Database, ticket_id: int) -> list[dict[str, Any]]:
    """The ticket's messages, oldest first, without their raw bytes; a mail we sent carries
    its outbox state in the `mail_*` fields."""
    return list(db.query(_MESSAGES + "ORDER BY m.received_at, m.id", [ticket_id]))


def last_message(db: sqlite_utils.Database, ticket_id: int) -> dict[str, Any] | None:
    """The ticket's newest message, for a preview."""
    return next(
        db.query(_MESSAGES + "ORDER BY m.received_at DESC, m.id DESC LIMIT 1", [ticket_id]),
        None,
    )


def attachments(db: sqlite_utils.Database, ticket_id: int) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT a.id, a.message_id, a.display_name, a.safe_name, a.content_type, a.size "
            "FROM attachment a JOIN message m ON m.id = a.message_id "
            "WHERE m.ticket_id = ? ORDER BY m.received_at, m.id, a.position",
            [ticket_id],
        )
    )


def calendars(db: sqlite_utils.Database, ticket_id: int) -> dict[int, list[bytes]]:
    """The calendar files (.ics) of the ticket's messages, by message id, for showing each
    invitation in the agent's zone (`db.mailin.invitation`)."""
    found: dict[int, list[bytes]] = {}
    types = ", ".join("?" for _ in invitation.CALENDAR_TYPES)
    for message_id, data in db.execute(
        "SELECT a.message_id, a.data FROM attachment a JOIN message m ON m.id = a.message_id "
        f"WHERE m.ticket_id = ? AND a.content_type IN ({types}) AND a.size <= ? "
        "ORDER BY a.message_id, a.position",
        [ticket_id, *invitation.CALENDAR_TYPES, invitation.MAX_SIZE],
    ):
        found.setdefault(message_id, []).append(data)
    return found


def inline_parts(db: sqlite_utils.Database, ticket_id: int) -> dict[int, list[tuple[str, str]]]:
    """The parts each message of the ticket shows after its body, by message id, in their
    order: (title, text), as `db.mailin.inline.block` gives them."""
    found: dict[int, list[tuple[str, str]]] = {}
    for message_id, name, content_type, data in db.execute(
        "SELECT a.message_id, a.display_name, a.content_type, substr(a.data, 1, ?) "
        "FROM attachment a JOIN message m ON m.id = a.message_id "
        "WHERE m.ticket_id = ? AND a.inline ORDER BY a.message_id, a.position",
        [inline.MAX_SHOWN, ticket_id],
    ):
        found.setdefault(message_id, []).append(inline.block(name, content_type, data))
    return found


def attachment_data(db: sqlite_utils.Database, attachment_id: int) -> tuple[str, bytes]:
    """The stored safe name and the bytes of one attachment."""
    row = db.execute(
        "SELECT safe_name, data FROM attachment WHERE id = ?", [attachment_id]
    ).fetchone()
    if row is None:
        raise NotFoundError(f"attachment {attachment_id} does not exist")
    return row[0], row[1]


def events(db: sqlite_utils.Database, ticket_id: int) -> list[dict[str, Any]]:
    """The audit trail, oldest first."""
    rows = list(db.query("SELECT * FROM ticket_event WHERE ticket_id = ? ORDER BY id", [ticket_id]))
    for row in rows:
        row["detail"] = json.loads(row["detail"] or "{}")
    return rows


def notes(db: sqlite_utils.Database, ticket_id: int) -> list[dict[str, Any]]:
    """The ticket's internal notes, oldest first: [{"id", "at", "actor", "text"}]; kept in the
    audit trail only, never in a message, so nothing sends them."""
    return [
        {"id": row[0], "at": row[1], "actor": row[2], "text": json.loads(row[3])["text"]}
        for row in db.execute(
            "SELECT id, at, actor, detail FROM ticket_event "
            "WHERE ticket_id = ? AND action = 'note' ORDER BY id",
            [ticket_id],
        )
    ]


def open_counts(db: sqlite_utils.Database) -> dict[str, int]:
    """Open tickets (new, open, pending) per function, and under "" all of them."""
    statuses = ", ".join(f"'{s}'" for s in search.OPEN_STATUSES)
    counts = dict(
        db.execute(
            "SELECT f.function, count(*) FROM ticket t JOIN ticket_function f "
            f"ON f.ticket_id = t.id WHERE t.status IN ({statuses}) GROUP BY f.function"
        ).fetchall()
    )
    counts[""] = db.execute(f"SELECT count(*) FROM ticket WHERE status IN ({statuses})").fetchone()[
        0
    ]
    return counts


def hourly_volume(db: sqlite_utils.Database, end: datetime, hours: int) -> list[int]:
    """New tickets per hour for the `hours` hours up to `end`, oldest first."""
    start = end.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    per_hour = dict(
        db.execute(
            "SELECT substr(created_at, 1, 13), count(*) FROM ticket WHERE created_at >= ? "
            "GROUP BY 1",
            [clock.iso(start)],
        ).fetchall()
    )
    return [per_hour.get(clock.iso(start + timedelta(hours=h))[:13], 0) for h in range(hours)]


def openings(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every ticket by number: id, function, kind, created_at, last_message_at, and `auto` of
    the mail that opened it ('' when a person wrote it)."""
    return list(
        db.query(
            "SELECT t.id, t.function, t.kind, t.created_at, t.last_message_at, "
            "(SELECT m.auto FROM message m WHERE m.ticket_id = t.id "
            "ORDER BY m.received_at, m.id LIMIT 1) AS auto FROM ticket t ORDER BY t.id"
        )
    )


def acted(db: sqlite_utils.Database, actors: list[str]) -> bool:
    """Whether any of `actors` appears in any ticket's audit trail."""
    marks = ", ".join("?" for _ in actors)
    query = f"SELECT 1 FROM ticket_event WHERE actor IN ({marks}) LIMIT 1"
    return db.execute(query, actors).fetchone() is not None


def _check(field: str, value: Any) -> Any:
    allowed = {"status": STATUSES, "priority": PRIORITIES, "function": FUNCTIONS}.get(field)
    if allowed is not None and value not in allowed:
        raise DeskError(f"{value!r} is not a {field}; use one of {', '.join(allowed)}")
    if field == "tags":
        tags = sorted({str(t).strip() for t in value if str(t).strip()})
        return json.dumps(tags, ensure_ascii=False)
    if field == "assignee":
        return (value or "").strip() or None
    return value


def _check_window(db: sqlite_utils.Database, window_id: int | None) -> None:
    if window_id is not None:
        windows.get(db, window_id)  # NotFoundError names the window


def _not_merged(db: sqlite_utils.Database, ticket_id: int) -> None:
    """Refuse to change a merged ticket: it is a pointer, its case goes on in its target."""
    target = threads.follow(db, ticket_id)
    if target != ticket_id:
        raise DeskError(
            f"#{ticket_id} was merged into #{target}; work on #{target}, or unmerge "
            f"#{ticket_id} first."
        )


def update(
    db: sqlite_utils.Database, ticket_id: int, version: int, actor: str, **changes: Any
) -> int:
    """Change fields of a ticket the agent saw at `version`; return the new version. A new
    priority or function recomputes the SLA due times, a new status stops, pauses or restarts
    its clocks (`db.core.sla`); a new (main) function joins the ticket's functions.

    Raises ConflictError when the ticket has moved on since, writing nothing.
    """
    unknown = set(changes) - set(_EDITABLE)
    if unknown:
        raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
    values = {field: _check(field, value) for field, value in changes.items()}
    now = clock.now_iso()
    with write(db):
        _not_merged(db, ticket_id)
        if "window_id" in values:
            _check_window(db, values["window_id"])
        before = db.execute(
            f"SELECT {', '.join(changes)}, version FROM ticket WHERE id = ?", [ticket_id]
        ).fetchone()
        if before is None:
            raise NotFoundError(f"ticket #{ticket_id} does not exist")
        sets = ", ".join(f"{field} = ?" for field in values)
        cursor = db.execute(
            f"UPDATE ticket SET {sets}, updated_at = ?, version = version + 1 "
            "WHERE id = ? AND version = ?",
            [*values.values(), now, ticket_id, version],
        )
        if cursor.rowcount == 0:
            raise ConflictError(
                f"Ticket #{ticket_id} was changed by someone else meanwhile; "
                "its fresh state is shown, do it again if it is still needed."
            )
        moved = {}
        for field, old in zip(changes, before, strict=False):
            new = values[field]
            if old != new:
                record_event(db, ticket_id, actor, field, {"from": old, "to": new}, at=now)
                moved[field] = old
        if "function" in moved:
            db.execute(
                "INSERT OR IGNORE INTO ticket_function (ticket_id, function) VALUES (?, ?)",
                [ticket_id, values["function"]],
            )
        if "status" in moved:
            sla.status_changed(db, ticket_id, moved["status"], values["status"], now)
        if {"priority", "function"} & moved.keys():
            sla.refresh(db, ticket_id)
    return version + 1


def add_note(db: sqlite_utils.Database, ticket_id: int, actor: str, text: str) -> None:
    """An internal note: it only appends to the trail, so it never conflicts with a change."""
    text = text.strip()
    if not text:
        raise DeskError("the note is empty; write something or press escape")
    with write(db):
        if db.execute("SELECT 1 FROM ticket WHERE id = ?", [ticket_id]).fetchone() is None:
            raise NotFoundError(f"ticket #{ticket_id} does not exist")
        _not_merged(db, ticket_id)
        record_event(db, ticket_id, actor, "note", {"text": text})
        db.execute("UPDATE ticket SET updated_at = ? WHERE id = ?", [clock.now_iso(), ticket_id])
