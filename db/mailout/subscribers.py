"""Who gets maintenance notices by email: the addresses in `[notices] subscribers` and those
managed with `desk subscribers`, and queueing one notice mail to each.

One mail per subscriber, each with its own To: (no list of strangers in Cc or a Bcc a server
may expose), its own stable Message-ID and a dedupe key of notice and address: a notice is
queued to an address once, however often it is issued or the daemon restarts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlite_utils

from db.core import clock, mailbox
from db.core.config import MailOut
from db.core.connect import write
from db.core.errors import DeskError
from db.core.migrations import FUNCTIONS
from db.mailout import compose, outbox


def listing(db: sqlite_utils.Database, mail: MailOut) -> list[dict[str, Any]]:
    """Every subscriber, with where it comes from ('config' or 'desk')."""
    rows = [
        {"addr": a, "name": "", "origin": "config", "added_at": None, "added_by": None}
        for a in mail.subscribers
    ]
    listed = set(mail.subscribers)
    for row in db.query("SELECT addr, name, added_at, added_by FROM subscriber ORDER BY addr"):
        if row["addr"] not in listed:
            rows.append({**row, "origin": "desk"})
    return rows


def add(db: sqlite_utils.Database, entries: list[str], actor: str) -> tuple[int, list[str]]:
    """Add 'Name <addr>' or 'addr' entries; the number added and the entries refused (with why)."""
    added, refused = add_numbered(db, enumerate(entries, 1), actor)
    return added, [why for _, why in refused]


def add_numbered(
    db: sqlite_utils.Database, entries: Iterable[tuple[int, str]], actor: str
) -> tuple[int, list[tuple[int, str]]]:
    """`add` for numbered entries (the lines of a file): refused ones come with their number."""
    refused, added = [], 0
    now = clock.now_iso()
    with write(db):
        for number, entry in entries:
            name, addr = mailbox.parse_mailbox(entry)
            if addr is None:
                refused.append((number, f"{entry!r}: not an email address"))
                continue
            added += db.execute(
                "INSERT OR IGNORE INTO subscriber (addr, name, added_at, added_by) "
                "VALUES (?, ?, ?, ?)",
                [addr, name, now, actor],
            ).rowcount
    return added, refused


def remove(db: sqlite_utils.Database, addr: str, mail: MailOut) -> None:
    addr = addr.strip().lower()
    if addr in mail.subscribers:
        raise DeskError(
            f"{addr} is listed in [notices] subscribers of the configuration; remove it there."
        )
    with write(db):
        if not db.execute("DELETE FROM subscriber WHERE addr = ?", [addr]).rowcount:
            raise DeskError(f"{addr} is not a subscriber; `desk subscribers list` shows them.")


def _sender(mail: MailOut) -> str:
    if mail.notice_sender not in FUNCTIONS:
        return mail.notice_sender
    if mail.notice_sender not in mail.senders:
        raise DeskError(
            f"Notices are sent as the {mail.notice_sender} function, which has no address: set "
            f"[notices] sender to an address, or [functions.{mail.notice_sender}] sender."
        )
    return mail.senders[mail.notice_sender]


def queue_notice(
    db: sqlite_utils.Database,
    notice: dict[str, Any],
    mail: MailOut,
    actor: str,
    *,
    key: str | None = None,
    to: tuple[str, ...] | None = None,
) -> int:
    """Queue an email notice (a ledger row) to every subscriber; how many were queued now.

    `key` names a mail about a window that is not a ledger row (a progress update:
    'update:7'; `notice` then needs only window_id, subject and body); `to` sends it to these
    addresses instead of the subscribers (the ops address)."""
    people = listing(db, mail) if to is None else [{"addr": a, "name": ""} for a in to]
    if not people:
        return 0
    sender = _sender(mail)
    queued = 0
    for person in people:
        dedupe = f"{key or 'notice:' + str(notice['id'])}:{person['addr']}"
        notice_mail = compose.build(
            sender=sender,
            to=mailbox.recipient(person["name"], person["addr"]),
            subject=notice["subject"],
            body=notice["body"],
            msgid=compose.message_id(sender, dedupe),
            date=clock.now(),
            headers={
                "Auto-Submitted": "auto-generated",
                "Precedence": "bulk",
                "X-Auto-Response-Suppress": "All",
                "List-Unsubscribe": f"<mailto:{mailbox.address(sender)}?subject=unsubscribe>",
            },
        )
        queued += (
            outbox.enqueue(
                db,
                notice_mail,
                kind="notice",
                dedupe=dedupe,
                actor=actor,
                notice_id=None if key else notice["id"],
                window_id=notice["window_id"],
            )
            is not None
        )
    return queued


def delivery(db: sqlite_utils.Database, window_id: int) -> list[dict[str, Any]]:
    """Per notice of the window: how many of its mails are queued, sent, failed, cancelled."""
    return list(
        db.query(
            "SELECT n.id AS notice, n.revision, n.kind, o.status, count(*) AS mails "
            "FROM outbox o JOIN notice n ON n.id = o.notice_id WHERE o.window_id = ? "
            "GROUP BY n.id, o.status ORDER BY n.id, o.status",
            [window_id],
        )
    )
