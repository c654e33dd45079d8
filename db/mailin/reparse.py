"""Healing stored messages: what a newer parser reads in a message's kept bytes, written in place.

A message's raw bytes never change, so reading them again is safe at any time; what changes is
what the parser makes of them. `heal()` writes today's reading over the parsed columns and the
attachments, and lets the ticket follow where it only repeats the message: the requester and
subject of the message that opened it (while they still say what that message said), and the
`unparsed` flag. A message that had no ticket and is now a person's mail gets one, by the same
rules and code as new mail. Ticket numbers and the agents' work (status, assignee, priority,
tags, notes, kind marks, the audit trail) are never touched; a message stays in the ticket it
is in, and where today's threading rules would put it elsewhere that is only reported.

The daemon and `desk-ingest --reparse` call this in small transactions; the desk asks for one
message by setting its `parser_version` to `REQUESTED`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from db.core import clock
from db.core.connect import write
from db.core.errors import NotFoundError
from db.core.events import record_event
from db.mailin import store, threads
from db.mailin.model import Delivery, Incoming
from db.maintenance import discrepancy

REQUESTED = -1  # parser_version of a message an agent asked to have read again
ACTOR = store.INGEST_ACTOR
# Inputs of the threading rules: only when one of them reads differently can the rule differ.
_THREADING = ("message_id", "in_reply_to", "refs", "subject", "from_addr", "date_header", "auto")
_ATTACHMENT_FIELDS = ("display_name", "safe_name", "content_type", "sha256", "inline")


@dataclass(frozen=True)
class Scope:
    """Which stored incoming messages to read again; the default is those an older parser read
    (and those an agent asked for, whose version is `REQUESTED`)."""

    below: int | None = None  # parser_version < below
    unparsed: bool = False  # only those that could not be parsed
    since: str | None = None  # only those received at or after this time (ISO 8601)
    requested: bool = False  # only those an agent asked for

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition on `message m` that selects the scope, and its parameters."""
        terms, params = ["m.direction = 'in'"], []
        if self.below is not None:
            terms.append("m.parser_version < ?")
            params.append(self.below)
        if self.unparsed:
            terms.append("m.parse_error IS NOT NULL")
        if self.since is not None:
            terms.append("m.received_at >= ?")
            params.append(self.since)
        if self.requested:
            terms.append(f"m.parser_version = {REQUESTED}")
        return " AND ".join(terms), params


@dataclass
class Change:
    """What reading one message again changed: column -> (before, after), for the message and
    for its ticket, and what happened to its place in a ticket."""

    message_id: int
    ticket_id: int | None
    message: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    ticket: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    opened: bool = False  # the message had no ticket, and `ticket_id` was opened for it
    joined: bool = False  # the message had no ticket, and joined `ticket_id`
    thread_now: tuple[int | None, str] | None = None  # where today's rules would put it

    @property
    def changed(self) -> bool:
        """Whether reading the message again changed anything stored."""
        return bool(self.message or self.ticket or self.opened or self.joined)


def batch(
    db: sqlite_utils.Database, scope: Scope, *, after: int, limit: int
) -> list[tuple[int, bytes]]:
    """The next `limit` messages of `scope` after message id `after`, in id order, with their
    raw bytes: `[(message_id, raw)]`."""
    where, params = scope.where()
    return [
        (row[0], row[1])
        for row in db.execute(
            f"SELECT m.id, r.raw FROM message m JOIN raw_message r ON r.message_id = m.id "
            f"WHERE {where} AND m.id > ? ORDER BY m.id LIMIT ?",
            [*params, after, limit],
        )
    ]


def first(db: sqlite_utils.Database, scope: Scope) -> int | None:
    """The id of the first message of `scope`, None when there is none: found through the
    parser-version index when the scope has one, so a daemon start over a healed database reads
    a few index entries, not every message."""
    where, params = scope.where()
    hint = "INDEXED BY message_parser_version" if scope.below is not None or scope.requested else ""
    return db.execute(f"SELECT min(m.id) FROM message m {hint} WHERE {where}", params).fetchone()[0]


def request(db: sqlite_utils.Database, message_id: int) -> None:
    """Ask desk-ingest to read message `message_id` again (it looks within a second).

    Raises NotFoundError for a message that does not exist or is one we sent (its text is ours,
    there is nothing to read again)."""
    with write(db):
        cursor = db.execute(
            f"UPDATE message SET parser_version = {REQUESTED} WHERE id = ? AND direction = 'in'",
            [message_id],
        )
    if cursor.rowcount == 0:
        raise NotFoundError(f"message {message_id} is not a mail we received; nothing to re-read")


def heal(
    db: sqlite_utils.Database, parsed: list[tuple[int, Incoming]], *, dry_run: bool = False
) -> list[Change]:
    """Write each `(message_id, today's parse of its bytes)` in one transaction, re-reading
    each row under the write lock; with `dry_run`, work out the same changes and write none.
    A message gone meanwhile or one we sent is left out of the result."""
    changes: list[Change] = []
    with write(db):
        db.execute("SAVEPOINT reparse")
        for message_id, msg in parsed:
            change = _heal_one(db, message_id, msg)
            if change is not None:
                changes.append(change)
        touched = [c.ticket_id for c in changes if c.changed and c.ticket_id is not None]
        discrepancy.reevaluate(db, list(dict.fromkeys(touched)))
        if dry_run:
            db.execute("ROLLBACK TO reparse")
        db.execute("RELEASE reparse")
    return changes


def _heal_one(db: sqlite_utils.Database, message_id: int, msg: Incoming) -> Change | None:
    rows = list(db.query("SELECT * FROM message WHERE id = ? AND direction = 'in'", [message_id]))
    if not rows:
        return None
    row = rows[0]
    change = Change(message_id, row["ticket_id"])
    after = store.parsed_columns(msg)
    change.message = {
        column: (row[column], value)
        for column, value in after.items()
        if column != "parser_version" and row[column] != value
    }
    if _replace_attachments(db, message_id, msg):
        before = db.execute(
            "SELECT count(*) FROM attachment WHERE message_id = ?", [message_id]
        ).fetchone()[0]
        change.message["attachments"] = (before, len(msg.attachments))
    if row["parser_version"] != msg.parser_version or change.message:
        sets = ", ".join(f"{column} = ?" for column in after)
        db.execute(f"UPDATE message SET {sets} WHERE id = ?", [*after.values(), message_id])
    if "attachments" in change.message:
        db.execute("DELETE FROM attachment WHERE message_id = ?", [message_id])
        store.insert_attachments(db, message_id, msg.attachments)
    if row["ticket_id"] is None:
        if row["thread_rule"] != store.UNSUBSCRIBE:  # a request done with, never a ticket
            _find_ticket(db, row, msg, change)
    else:
        if any(column in change.message for column in _THREADING):
            now = _rule_now(db, message_id, msg)
            # A message that opened its ticket would open one today: the same place.
            same = now[1] == row["thread_rule"] == threads.NEW
            if not same and now != (row["ticket_id"], row["thread_rule"]):
                change.thread_now = now
        _heal_ticket(db, row, msg, change)
    return change


def _replace_attachments(db: sqlite_utils.Database, message_id: int, msg: Incoming) -> bool:
    """Whether the stored attachments differ from today's reading of them."""
    stored = db.execute(
        f"SELECT {', '.join(_ATTACHMENT_FIELDS)} FROM attachment WHERE message_id = ? "
        "ORDER BY position",
        [message_id],
    ).fetchall()
    now = [tuple(getattr(a, f) for f in _ATTACHMENT_FIELDS) for a in msg.attachments]
    return [tuple(r) for r in stored] != now


def _find_ticket(
    db: sqlite_utils.Database, row: dict[str, Any], msg: Incoming, change: Change
) -> None:
    """A message without a ticket (taken for automatic mail that answers nothing) goes where
    new mail would go today: a person's mail opens its ticket."""
    functions = tuple(json.loads(row["functions"])) or (row["function"],)
    delivery = Delivery(row["source"], "", functions)
    ticket_id, rule = store.find_or_open_ticket(db, msg, delivery, row["received_at"])
    if ticket_id is None:
        return
    db.execute(
        "UPDATE message SET ticket_id = ?, thread_rule = ? WHERE id = ?",
        [ticket_id, rule, row["id"]],
    )
    store.join_ticket(
        db, msg, row["id"], ticket_id, rule, functions, row["received_at"], clock.now_iso()
    )
    change.ticket_id = ticket_id
    change.opened, change.joined = rule == threads.NEW, rule != threads.NEW


def _rule_now(db: sqlite_utils.Database, message_id: int, msg: Incoming) -> tuple[int | None, str]:
    """Where today's threading rules would put the message, were it new: asked with the message
    itself out of its ticket (in a savepoint, undone), so it cannot find its own copy."""
    db.execute("SAVEPOINT probe")
    try:
        db.execute("UPDATE message SET ticket_id = NULL WHERE id = ?", [message_id])
        return threads.find_ticket(db, msg)
    finally:
        db.execute("ROLLBACK TO probe")
        db.execute("RELEASE probe")


def _heal_ticket(
    db: sqlite_utils.Database, row: dict[str, Any], msg: Incoming, change: Change
) -> None:
    ticket_id = row["ticket_id"]
    before = next(
        db.query(
            "SELECT requester_addr, requester_name, subject, unparsed, via_list FROM ticket "
            "WHERE id = ?",
            [ticket_id],
        ),
        None,
    )
    if before is None:
        return
    after: dict[str, Any] = {}
    if row["thread_rule"] == threads.NEW:
        # The ticket repeats what its first message said; where it no longer does, someone
        # changed it on purpose and it stays.
        if before["requester_addr"] == row["from_addr"]:
            after["requester_addr"] = msg.from_addr
        if before["requester_name"] == row["from_name"]:
            after["requester_name"] = msg.from_name
        if before["subject"] == threads.ticket_subject(row["subject"]):
            after["subject"] = threads.ticket_subject(msg.subject)
        after["via_list"] = int(msg.kind == "list")
    after["unparsed"] = db.execute(
        "SELECT EXISTS (SELECT 1 FROM message WHERE ticket_id = ? AND parse_error IS NOT NULL)",
        [ticket_id],
    ).fetchone()[0]
    change.ticket = {k: (before[k], v) for k, v in after.items() if before[k] != v}
    if change.ticket:
        sets = ", ".join(f"{column} = ?" for column in change.ticket)
        db.execute(
            f"UPDATE ticket SET {sets}, version = version + 1 WHERE id = ?",
            [*(v for _, v in change.ticket.values()), ticket_id],
        )
    if change.message.keys() & {"from_addr", "to_addrs", "cc_addrs"}:
        store.add_participants(db, ticket_id, msg)  # so their `[#N]` replies thread
    if change.message or change.ticket:
        record_event(
            db,
            ticket_id,
            ACTOR,
            "reparsed",
            {"message": row["id"], "changed": sorted({*change.message, *change.ticket})},
        )
