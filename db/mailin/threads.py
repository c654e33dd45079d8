"""Conversation threading: which ticket a message belongs to, and which rule said so.

Rules in order: In-Reply-To (the very mail answered), then a `[#N]` token in the subject (only
from someone already taking part in ticket N, so a stranger cannot write into another
customer's ticket by guessing numbers), then References (newest first), then another copy of
the same mail (the same Message-ID, sender, date and subject, delivered to a second support
address: it joins the first copy's ticket, which gains the function), then a new ticket.
Copies that differ only in transport headers never get here: the store keeps them as one
message (`copy_key`). This rule is for copies that differ in more, such as a list's footer, a
relay that re-encoded the body, or a filter's stamp the copy key does not know. Automatic mail
(auto-replies, bounces, delay notices, read receipts) never opens a ticket; it joins the one it
answers when it can be found, a read receipt by the mail it reports on. A person's mail through
a mailing list is a person's mail.

In-Reply-To comes before the token because a split (`db.tickets.merge`) moves a message to a
new ticket while replies to it still carry the old ticket's token in their subject. A ticket
merged into another is a pointer: whatever rule finds it threads into the ticket it points to.
"""

from __future__ import annotations

import re

import sqlite_utils

from db.mailin.model import Incoming

TOKEN = re.compile(r"\[#(\d{1,12})\]")
_REPLY_PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|sv|antw)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)

NEW = "new"
SUBJECT_TOKEN = "subject-token"
IN_REPLY_TO = "in-reply-to"
REFERENCES = "references"
COPY = "copy"
NO_TICKET = "no-ticket"


def ticket_subject(subject: str) -> str:
    """The subject a ticket is known by: without reply prefixes and our own `[#N]` token."""
    return TOKEN.sub("", _REPLY_PREFIX.sub("", subject)).strip() or "(no subject)"


MAX_HOPS = 64  # merges chain (B into A, then A into C); a longer chain is a broken record


def follow(db: sqlite_utils.Database, ticket_id: int) -> int:
    """The ticket `ticket_id` stands for now: itself, or, when it was merged, the end of the
    chain of `merged_into` pointers."""
    for _ in range(MAX_HOPS):
        row = db.execute("SELECT merged_into FROM ticket WHERE id = ?", [ticket_id]).fetchone()
        if row is None or row[0] is None:
            return ticket_id
        ticket_id = row[0]
    return ticket_id


def _ticket_of(db: sqlite_utils.Database, message_id: str) -> int | None:
    row = db.execute(
        "SELECT ticket_id FROM message WHERE message_id = ? AND ticket_id IS NOT NULL "
        "ORDER BY id LIMIT 1",
        [message_id],
    ).fetchone()
    return row[0] if row else None


def _token_ticket(db: sqlite_utils.Database, msg: Incoming) -> int | None:
    for match in TOKEN.finditer(msg.subject):
        number = int(match.group(1))
        takes_part = db.execute(
            "SELECT 1 FROM ticket_participant WHERE ticket_id = ? AND addr = ?",
            [number, msg.from_addr.lower()],
        ).fetchone()
        if msg.from_addr and takes_part:
            return number
    return None


def find_ticket(db: sqlite_utils.Database, msg: Incoming) -> tuple[int | None, str]:
    """The ticket `msg` joins and the rule that matched; `(None, NEW)` means open one. A merged
    ticket found by any rule stands for the ticket it was merged into."""
    number, rule = _find(db, msg)
    return (follow(db, number) if number is not None else None), rule


def _find(db: sqlite_utils.Database, msg: Incoming) -> tuple[int | None, str]:
    if msg.in_reply_to:
        number = _ticket_of(db, msg.in_reply_to)
        if number is not None:
            return number, IN_REPLY_TO
    number = _token_ticket(db, msg)
    if number is not None:
        return number, SUBJECT_TOKEN
    receipt = [msg.receipt_of] if msg.receipt_of else []
    for ref in [*reversed(msg.references), *msg.bounced_ids, *receipt]:
        number = _ticket_of(db, ref)
        if number is not None:
            return number, REFERENCES
    if msg.message_id:
        row = db.execute(
            "SELECT ticket_id FROM message WHERE message_id = ? AND from_addr = ? AND "
            "date_header = ? AND subject = ? AND ticket_id IS NOT NULL ORDER BY id LIMIT 1",
            [msg.message_id, msg.from_addr, msg.date_header, msg.subject],
        ).fetchone()
        if row:
            return row[0], COPY
    return None, NO_TICKET if msg.auto else NEW
