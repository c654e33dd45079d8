"""Storing incoming messages exactly once and threading them into tickets.

A message is its bytes: the same bytes read twice (another file, another source, a re-read
after a UIDVALIDITY change or a crash) are one message with two locations. So are two copies of
one mail delivered to two of our mailboxes, which differ only in transport headers (the same
copy key, `ingest/copies.py`): the message gains the second copy's location and functions. The
same Message-ID with other content is another message. Each batch is one transaction, together
with whatever checkpoint the source passes, so a crash leaves either all of it or none.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any

import sqlite_utils

from db.core import clock, sla
from db.core.connect import write
from db.core.events import record_event
from db.mailin import acks, bounces, search_index, threads
from db.mailin.model import Attachment, Delivery, Incoming, Stored
from db.mailout import compose, outbox, subscribers
from db.maintenance import discrepancy

if TYPE_CHECKING:
    from db.core.config import MailOut

INGEST_ACTOR = "desk-ingest"
log = logging.getLogger("desk.store")
OUTGOING = "outgoing"  # the thread rule of a mail we sent
UNSUBSCRIBE = "unsubscribe"  # the thread rule of a List-Unsubscribe request: no ticket


def store_batch(
    db: sqlite_utils.Database,
    items: Iterable[tuple[Incoming, Delivery]],
    *,
    checkpoint: Callable[[sqlite_utils.Database], None] | None = None,
    mail: MailOut | None = None,
) -> list[Stored]:
    """Store `items` and run `checkpoint` in one transaction; with `mail`, new tickets of the
    functions it names are acknowledged in the same transaction."""
    with write(db):
        pairs = list(items)
        results = [_store_one(db, msg, delivery, mail) for msg, delivery in pairs]
        new = [(msg, r) for (msg, _), r in zip(pairs, results, strict=True) if r.new]
        search_index.add(db, [(stored.message_id, msg) for msg, stored in new])
        for msg, stored in new:
            bounces.record(db, msg)
            _note_receipt(db, msg, stored.message_id)
        # Link and classify each ticket that got mail once, however many of its messages came.
        touched = dict.fromkeys(r.ticket_id for r in results if r.new and r.ticket_id is not None)
        discrepancy.reevaluate(db, list(touched))
        if mail is not None and mail.acknowledge:
            for (msg, delivery), stored in zip(pairs, results, strict=True):
                if stored.new and stored.rule == threads.NEW and stored.ticket_id is not None:
                    _acknowledge_safely(db, msg, stored.ticket_id, delivery.functions, mail)
        if checkpoint is not None:
            checkpoint(db)
    return results


def _acknowledge_safely(
    db: sqlite_utils.Database,
    msg: Incoming,
    ticket_id: int,
    functions: tuple[str, ...],
    mail: MailOut,
) -> None:
    """Acknowledge, in the name of the first of the mail's `functions` that acknowledges, or
    record why not; a failure here never costs the customer's mail, which is stored in the same
    transaction. The functions, not the mailbox read first: one mail to technical@ and sales@
    is acknowledged the same whichever copy arrives first."""
    function = next((f for f in functions if f in mail.acknowledge), None)
    if function is None:
        return
    db.execute("SAVEPOINT acknowledge")
    try:
        _acknowledge(db, msg, ticket_id, function, mail)
    except Exception as exc:  # noqa: BLE001 - the mail matters more than its acknowledgement
        db.execute("ROLLBACK TO acknowledge")
        log.exception("ticket #%d: the acknowledgement failed", ticket_id)
        record_event(db, ticket_id, INGEST_ACTOR, "ack-skipped", {"reason": f"failed: {exc}"})
    db.execute("RELEASE acknowledge")


def _acknowledge(
    db: sqlite_utils.Database, msg: Incoming, ticket_id: int, function: str, mail: MailOut
) -> None:
    planned = acks.plan(db, msg, ticket_id, function, mail)
    if isinstance(planned, str):
        record_event(db, ticket_id, INGEST_ACTOR, "ack-skipped", {"reason": planned})
        return
    queue_outgoing(
        db,
        planned,
        kind="ack",
        dedupe=f"ack:{ticket_id}",
        actor=INGEST_ACTOR,
        ticket_id=ticket_id,
        function=function,
        null_sender=True,
    )


def _store_one(
    db: sqlite_utils.Database, msg: Incoming, delivery: Delivery, mail: MailOut | None = None
) -> Stored:
    existing = db.execute(
        "SELECT id, ticket_id, thread_rule FROM message WHERE sha256 = ?", [msg.sha256]
    ).fetchone()
    if existing:
        return _another_location(db, msg, delivery, *existing)
    if msg.copy_key is not None:
        # The oldest, should two stored messages share a key (copies stored before copy keys,
        # then re-parsed).
        copy = db.execute(
            "SELECT id, ticket_id, thread_rule FROM message WHERE copy_key = ? "
            "AND direction = 'in' ORDER BY id LIMIT 1",
            [msg.copy_key],
        ).fetchone()
        if copy:
            return _another_location(db, msg, delivery, *copy, copy=True)

    now = clock.now_iso()
    # Mail read late (a first sync, a daemon that was down) keeps the time it really arrived.
    received = min(msg.delivered_at, now) if msg.delivered_at else now
    if _unsubscribed(db, msg, mail):
        ticket_id, rule = None, UNSUBSCRIBE
    else:
        ticket_id, rule = find_or_open_ticket(db, msg, delivery, received)
    message_id = _insert_message(db, msg, delivery, ticket_id, rule, received, now)
    _locate(db, delivery, message_id)
    join_ticket(db, msg, message_id, ticket_id, rule, delivery.functions, received, now)
    return Stored(message_id, ticket_id, True, rule)


def _unsubscribed(db: sqlite_utils.Database, msg: Incoming, mail: MailOut | None) -> bool:
    """Whether `msg` is an unsubscribe request with one of our tokens (RFC 2369): its sender
    is unsubscribed and confirmed once, and the request, even a repeated one, is no ticket. A
    token that is nobody's is a person's mail like any other."""
    if msg.unsubscribe_token is None or mail is None:
        return False
    done = subscribers.unsubscribe(db, msg.unsubscribe_token, "mail", mail, INGEST_ACTOR)
    if done is not None:
        log.info("unsubscribe request by mail %s (%s)", msg.message_id, done)
    return done is not None


def find_or_open_ticket(
    db: sqlite_utils.Database, msg: Incoming, delivery: Delivery, received: str
) -> tuple[int | None, str]:
    """The ticket `msg` belongs to by the threading rules and the rule that said so, opening
    one when the rule is NEW; `(None, NO_TICKET)` for automatic mail that answers nothing."""
    ticket_id, rule = threads.find_ticket(db, msg)
    if rule == threads.NEW:
        ticket_id = _open_ticket(db, msg, delivery, received)
    return ticket_id, rule


def join_ticket(
    db: sqlite_utils.Database,
    msg: Incoming,
    message_id: int,
    ticket_id: int | None,
    rule: str,
    functions: tuple[str, ...],
    received: str,
    now: str,
) -> None:
    """Make the stored message `message_id` part of the ticket `find_or_open_ticket` gave: its
    functions and people join the ticket, and a message that did not open it counts as news."""
    if ticket_id is None:
        return
    _add_functions(db, ticket_id, functions)
    add_participants(db, ticket_id, msg)
    if rule != threads.NEW:
        _join_ticket(db, ticket_id, msg, message_id, rule, received, now)


def _another_location(
    db: sqlite_utils.Database,
    msg: Incoming,
    delivery: Delivery,
    message_id: int,
    ticket_id: int | None,
    rule: str,
    *,
    copy: bool = False,
) -> Stored:
    """The same message read again, from another place or as another `copy`: one more
    location, and whatever functions and participants this delivery adds. A copy seen in a new
    place goes into the ticket's audit trail; a re-read of one already seen does not."""
    located = _locate(db, delivery, message_id)
    (functions,) = db.execute("SELECT functions FROM message WHERE id = ?", [message_id]).fetchone()
    known = json.loads(functions)
    union = list(dict.fromkeys([*known, *delivery.functions]))
    if union != known:
        db.execute("UPDATE message SET functions = ? WHERE id = ?", [json.dumps(union), message_id])
    if ticket_id is not None:
        _add_functions(db, ticket_id, delivery.functions)
        add_participants(db, ticket_id, msg)
        if copy and located:
            detail = {"message": message_id, "source": delivery.source}
            record_event(db, ticket_id, INGEST_ACTOR, "copy", detail)
    return Stored(message_id, ticket_id, False, rule)


def _open_ticket(
    db: sqlite_utils.Database, msg: Incoming, delivery: Delivery, received: str
) -> int:
    first_due, resolution_due = sla.due_times(
        sla.load(db), delivery.functions[0], "normal", received
    )
    cursor = db.execute(
        "INSERT INTO ticket (subject, requester_addr, requester_name, function, unparsed, "
        "via_list, message_count, created_at, updated_at, last_message_at, first_response_due, "
        "resolution_due) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)",
        [
            threads.ticket_subject(msg.subject),
            msg.from_addr,
            msg.from_name,
            delivery.functions[0],
            int(msg.parse_error is not None),
            int(msg.kind == "list"),
            received,
            received,
            received,
            first_due,
            resolution_due,
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
    # A customer writing again about a settled ticket means it is not settled (through a list
    # too); auto-replies, bounces, delay notices and read receipts are not the customer writing.
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
        {"message": message_id, "rule": rule, "auto": msg.auto, "kind": msg.kind},
        at=now,
    )
    if reopen:
        record_event(db, ticket_id, INGEST_ACTOR, "status", {"from": status, "to": "open"}, at=now)
        # The customer wrote when the mail came: from then on the ticket waits on us again.
        sla.status_changed(db, ticket_id, status, "open", received)


def _note_receipt(db: sqlite_utils.Database, msg: Incoming, receipt_id: int) -> None:
    """A read receipt (RFC 8098 MDN) notes on the mail of ours it reports on when it was read,
    the first time, and the mail's ticket records it; it fails nothing."""
    if msg.kind != "read-receipt" or msg.receipt_of is None:
        return
    row = db.execute(
        "SELECT id, ticket_id FROM message WHERE message_id = ? AND direction = 'out' "
        "AND read_at IS NULL ORDER BY id LIMIT 1",
        [msg.receipt_of],
    ).fetchone()
    if row is None:
        return
    # The receipt's Date is when the reader's client sent it, on opening the mail.
    read_at = min(msg.sent_at, clock.now_iso()) if msg.sent_at else clock.now_iso()
    db.execute("UPDATE message SET read_at = ? WHERE id = ?", [read_at, row[0]])
    if row[1] is not None:
        detail = {"message": row[0], "receipt": receipt_id, "by": msg.from_addr, "at": read_at}
        record_event(db, row[1], INGEST_ACTOR, "read", detail)


def _insert_message(
    db: sqlite_utils.Database,
    msg: Incoming,
    delivery: Delivery,
    ticket_id: int | None,
    rule: str,
    received: str,
    now: str,
    outbox_id: int | None = None,
) -> int:
    row = {
        "sha256": msg.sha256,
        "size": len(msg.raw),
        "ticket_id": ticket_id,
        "function": delivery.functions[0],
        "functions": json.dumps(list(delivery.functions)),
        "source": delivery.source,
        "received_at": received,
        "ingested_at": now,
        "thread_rule": rule,
        "direction": "in" if outbox_id is None else "out",
        "outbox_id": outbox_id,
        **parsed_columns(msg),
    }
    cursor = db.execute(
        f"INSERT INTO message ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
        list(row.values()),
    )
    message_id = cursor.lastrowid
    db.execute("INSERT INTO raw_message (message_id, raw) VALUES (?, ?)", [message_id, msg.raw])
    insert_attachments(db, message_id, msg.attachments)
    return message_id


def parsed_columns(msg: Incoming) -> dict[str, Any]:
    """The message's columns that come from parsing its bytes, as stored: what a newer parser
    may read differently (`desk-ingest --reparse` writes these and only these)."""
    return {
        "subject": msg.subject,
        "from_addr": msg.from_addr,
        "from_name": msg.from_name,
        "to_addrs": ", ".join(msg.to_addrs),
        "cc_addrs": ", ".join(msg.cc_addrs),
        "reply_to": ", ".join(msg.reply_to),
        "message_id": msg.message_id,
        "in_reply_to": msg.in_reply_to,
        "refs": json.dumps(msg.references),
        "date_header": msg.date_header,
        "sent_at": msg.sent_at,
        "headers": msg.headers,
        "body_text": msg.body_text,
        "body_html": msg.body_html,
        "charset_declared": msg.charset_declared,
        "charset_used": msg.charset_used,
        "auto": msg.auto,
        "parse_error": msg.parse_error,
        "defects": json.dumps(msg.defects),
        "kind": msg.kind,
        "forwarded": json.dumps([dataclasses.asdict(f) for f in msg.forwarded]),
        "copy_key": msg.copy_key,
        "parser_version": msg.parser_version,
    }


def insert_attachments(
    db: sqlite_utils.Database, message_id: int, attachments: list[Attachment]
) -> None:
    """Store a message's attachments in their order (inside the caller's transaction)."""
    db.conn.executemany(
        "INSERT INTO attachment (message_id, position, display_name, safe_name, content_type, "
        "size, sha256, data, inline) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (message_id, i, a.display_name, a.safe_name, a.content_type, len(a.data), a.sha256,
             a.data, a.inline)
            for i, a in enumerate(attachments)
        ],
    )  # fmt: skip


def _locate(db: sqlite_utils.Database, delivery: Delivery, message_id: int) -> bool:
    """Record where the message was read; False when that place was already known."""
    cursor = db.execute(
        "INSERT OR IGNORE INTO message_location (source, key, message_id) VALUES (?, ?, ?)",
        [delivery.source, delivery.key, message_id],
    )
    return cursor.rowcount == 1


def _add_functions(db: sqlite_utils.Database, ticket_id: int, functions: tuple[str, ...]) -> None:
    db.conn.executemany(
        "INSERT OR IGNORE INTO ticket_function (ticket_id, function) VALUES (?, ?)",
        [(ticket_id, fn) for fn in functions],
    )


def add_participants(db: sqlite_utils.Database, ticket_id: int, msg: Incoming) -> None:
    """The sender and recipients of `msg` take part in the ticket: a `[#N]` token of theirs
    threads (inside the caller's transaction)."""
    addrs = {a for a in [msg.from_addr.lower(), *msg.recipients] if a}
    db.conn.executemany(
        "INSERT OR IGNORE INTO ticket_participant (ticket_id, addr) VALUES (?, ?)",
        [(ticket_id, a) for a in sorted(addrs)],
    )


def queue_outgoing(
    db: sqlite_utils.Database,
    mail: compose.Mail,
    *,
    kind: str,
    dedupe: str,
    actor: str,
    ticket_id: int,
    function: str,
    null_sender: bool = False,
) -> int | None:
    """Queue a mail about a ticket and put it in the ticket's thread (inside the caller's
    transaction), so the customer's answer threads back by In-Reply-To and agents see what was
    said. None when `dedupe` was queued before."""
    outbox_id = outbox.enqueue(
        db, mail, kind=kind, dedupe=dedupe, actor=actor, ticket_id=ticket_id,
        null_sender=null_sender,
    )  # fmt: skip
    if outbox_id is None:
        return None
    _store_outgoing(db, mail, ticket_id=ticket_id, function=function, outbox_id=outbox_id)
    record_event(db, ticket_id, actor, f"{kind}-queued", {"outbox": outbox_id, "to": mail.to})
    return outbox_id


def _store_outgoing(
    db: sqlite_utils.Database,
    mail: compose.Mail,
    *,
    ticket_id: int,
    function: str,
    outbox_id: int,
) -> int:
    name, sender = parseaddr(mail.sender)
    now = clock.now_iso()
    outgoing = Incoming(
        raw=mail.raw,
        sha256=hashlib.sha256(mail.raw).hexdigest(),
        message_id=mail.message_id,
        in_reply_to=mail.in_reply_to,
        references=list(mail.references),
        from_addr=sender.lower(),
        from_name=name,
        to_addrs=[mail.to],
        cc_addrs=list(mail.cc),
        subject=mail.subject,
        date_header=mail.date,
        sent_at=now,
        headers=mail.headers,
        body_text=mail.body,
        kind="auto-reply" if mail.auto else "",
    )
    delivery = Delivery("outbox", str(outbox_id), (function,))
    message_id = _insert_message(db, outgoing, delivery, ticket_id, OUTGOING, now, now, outbox_id)
    search_index.add(db, [(message_id, outgoing)])
    db.execute(
        "UPDATE ticket SET message_count = message_count + 1, updated_at = ?, "
        "version = version + 1 WHERE id = ?",
        [now, ticket_id],
    )
    add_participants(db, ticket_id, outgoing)
    return message_id
