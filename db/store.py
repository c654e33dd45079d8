"""Storing incoming messages exactly once and threading them into tickets.

A message is its bytes: the same bytes read twice (another file, another source, a re-read
after a UIDVALIDITY change or a crash) are one message with two locations. The same Message-ID
with other bytes is another message. Each batch is one transaction, together with whatever
checkpoint the source passes, so a crash leaves either all of it or none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from datetime import timedelta

import sqlite_utils

from db import clock, discrepancy, threads
from db.connect import write
from db.events import record_event
from db.model import Delivery, Incoming, Stored

INGEST_ACTOR = "desk-ingest"
FIRST_RESPONSE = {
    "urgent": timedelta(hours=1),
    "high": timedelta(hours=2),
    "normal": timedelta(hours=8),
    "low": timedelta(hours=24),
}
_REPLY_PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|sv|antw)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)


def ticket_subject(subject: str) -> str:
    """The subject a ticket is known by: without reply prefixes and our own `[#N]` token."""
    return threads.TOKEN.sub("", _REPLY_PREFIX.sub("", subject)).strip() or "(no subject)"


def store_batch(
    db: sqlite_utils.Database,
    items: Iterable[tuple[Incoming, Delivery]],
    *,
    checkpoint: Callable[[sqlite_utils.Database], None] | None = None,
) -> list[Stored]:
    """Store `items` and run `checkpoint` in one transaction."""
    with write(db):
        results = [_store_one(db, msg, delivery) for msg, delivery in items]
        # Link and classify each ticket that got mail once, however many of its messages came.
        touched = dict.fromkeys(r.ticket_id for r in results if r.new and r.ticket_id is not None)
        discrepancy.reevaluate(db, list(touched))
        if checkpoint is not None:
            checkpoint(db)
    return results


def _store_one(db: sqlite_utils.Database, msg: Incoming, delivery: Delivery) -> Stored:
    existing = db.execute(
        "SELECT id, ticket_id, thread_rule FROM message WHERE sha256 = ?", [msg.sha256]
    ).fetchone()
    if existing:
        message_id, ticket_id, rule = existing
        _locate(db, delivery, message_id)
        if ticket_id is not None:
            _add_functions(db, ticket_id, delivery.functions)
        return Stored(message_id, ticket_id, False, rule)

    now = clock.now_iso()
    # Mail read late (a first sync, a daemon that was down) keeps the time it really arrived.
    received = min(msg.delivered_at, now) if msg.delivered_at else now
    ticket_id, rule = threads.find_ticket(db, msg)
    if rule == threads.NEW:
        ticket_id = _open_ticket(db, msg, delivery, received)
    message_id = _insert_message(db, msg, delivery, ticket_id, rule, received, now)
    _locate(db, delivery, message_id)
    if ticket_id is not None:
        _add_functions(db, ticket_id, delivery.functions)
        _add_participants(db, ticket_id, msg)
        if rule != threads.NEW:
            _join_ticket(db, ticket_id, msg, message_id, rule, received, now)
    return Stored(message_id, ticket_id, True, rule)


def _open_ticket(
    db: sqlite_utils.Database, msg: Incoming, delivery: Delivery, received: str
) -> int:
    due = clock.iso(clock.parse(received) + FIRST_RESPONSE["normal"])
    cursor = db.execute(
        "INSERT INTO ticket (subject, requester_addr, requester_name, function, unparsed, "
        "message_count, created_at, updated_at, last_message_at, first_response_due) "
        "VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?)",
        [
            ticket_subject(msg.subject),
            msg.from_addr,
            msg.from_name,
            delivery.functions[0],
            int(msg.parse_error is not None),
            received,
            received,
            received,
            due,
        ],
    )
    ticket_id = cursor.lastrowid
    record_event(
        db,
        ticket_id,
        INGEST_ACTOR,
        "created",
        {"source": delivery.source, "unparsed": msg.parse_error is not None},
        at=received,
    )
    return ticket_id


def _join_ticket(
    db: sqlite_utils.Database,
    ticket_id: int,
    msg: Incoming,
    message_id: int,
    rule: str,
    received: str,
    now: str,
) -> None:
    status = db.execute("SELECT status FROM ticket WHERE id = ?", [ticket_id]).fetchone()[0]
    # A customer writing again about a settled ticket means it is not settled; auto-replies and
    # bounces are not the customer writing.
    reopen = not msg.auto and status in ("pending", "resolved", "closed")
    db.execute(
        "UPDATE ticket SET message_count = message_count + 1, "
        "last_message_at = max(last_message_at, ?), updated_at = ?, "
        "unparsed = max(unparsed, ?), version = version + 1, "
        "status = CASE WHEN ? THEN 'open' ELSE status END WHERE id = ?",
        [received, now, int(msg.parse_error is not None), reopen, ticket_id],
    )
    record_event(
        db,
        ticket_id,
        INGEST_ACTOR,
        "message",
        {"message": message_id, "rule": rule, "auto": msg.auto},
        at=now,
    )
    if reopen:
        record_event(db, ticket_id, INGEST_ACTOR, "status", {"from": status, "to": "open"}, at=now)


def _insert_message(
    db: sqlite_utils.Database,
    msg: Incoming,
    delivery: Delivery,
    ticket_id: int | None,
    rule: str,
    received: str,
    now: str,
) -> int:
    cursor = db.execute(
        "INSERT INTO message (sha256, size, ticket_id, function, functions, source, "
        "received_at, ingested_at, message_id, in_reply_to, refs, from_addr, from_name, "
        "to_addrs, cc_addrs, subject, date_header, sent_at, headers, body_text, body_html, "
        "charset_declared, charset_used, "
        "auto, thread_rule, parse_error, defects) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            msg.sha256,
            len(msg.raw),
            ticket_id,
            delivery.functions[0],
            json.dumps(list(delivery.functions)),
            delivery.source,
            received,
            now,
            msg.message_id,
            msg.in_reply_to,
            json.dumps(msg.references),
            msg.from_addr,
            msg.from_name,
            ", ".join(msg.to_addrs),
            ", ".join(msg.cc_addrs),
            msg.subject,
            msg.date_header,
            msg.sent_at,
            msg.headers,
            msg.body_text,
            msg.body_html,
            msg.charset_declared,
            msg.charset_used,
            msg.auto,
            rule,
            msg.parse_error,
            json.dumps(msg.defects),
        ],
    )
    message_id = cursor.lastrowid
    db.execute("INSERT INTO raw_message (message_id, raw) VALUES (?, ?)", [message_id, msg.raw])
    db.conn.executemany(
        "INSERT INTO attachment (message_id, position, display_name, safe_name, content_type, "
        "size, sha256, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                message_id,
                i,
                a.display_name,
                a.safe_name,
                a.content_type,
                len(a.data),
                a.sha256,
                a.data,
            )
            for i, a in enumerate(msg.attachments)
        ],
    )
    return message_id


def _locate(db: sqlite_utils.Database, delivery: Delivery, message_id: int) -> None:
    db.execute(
        "INSERT OR IGNORE INTO message_location (source, key, message_id) VALUES (?, ?, ?)",
        [delivery.source, delivery.key, message_id],
    )


def _add_functions(db: sqlite_utils.Database, ticket_id: int, functions: tuple[str, ...]) -> None:
    db.conn.executemany(
        "INSERT OR IGNORE INTO ticket_function (ticket_id, function) VALUES (?, ?)",
        [(ticket_id, fn) for fn in functions],
    )


def _add_participants(db: sqlite_utils.Database, ticket_id: int, msg: Incoming) -> None:
    addrs = {a for a in [msg.from_addr.lower(), *msg.recipients] if a}
    db.conn.executemany(
        "INSERT OR IGNORE INTO ticket_participant (ticket_id, addr) VALUES (?, ?)",
        [(ticket_id, a) for a in sorted(addrs)],
    )
