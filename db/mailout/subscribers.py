"""Who gets maintenance notices by email: the addresses in `[notices] subscribers` and those
managed with `desk subscribers`, queueing one notice mail to each, and unsubscribing.

One mail per subscriber, each with its own To: (no list of strangers in Cc or a Bcc a server
may expose), its own stable Message-ID and a dedupe key of notice and address: a notice is
queued to an address once, however often it is issued or the daemon restarts.

Each mail carries List-Unsubscribe (RFC 2369) with the subscriber's own random token: a mailto
whose subject is `unsubscribe TOKEN`, and with `[notices] web_url` an https link for RFC 8058
one-click POSTs to `desk serve`. The token, never the address, says who leaves, so nobody can
unsubscribe someone else. Whoever leaves stops getting notices even when the configuration
lists them (their wish outranks the file); `desk subscribers add` takes them back.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import sqlite_utils

from db.core import clock, mailbox
from db.core.config import MailOut
from db.core.connect import write
from db.core.errors import DeskError
from db.core.migrations import FUNCTIONS
from db.mailout import compose, outbox

UNSUBSCRIBE_PATH = "/status/unsubscribe/"  # under `desk serve`'s URL, for RFC 8058 POSTs
LEFT, ALREADY_LEFT = "left", "already left"


def listing(db: sqlite_utils.Database, mail: MailOut) -> list[dict[str, Any]]:
    """Every subscriber, with where it comes from ('config' or 'desk'); not those who left."""
    gone = {row["addr"] for row in departed(db, mail)}
    rows = [
        {"addr": a, "name": "", "origin": "config", "added_at": None, "added_by": None}
        for a in mail.subscribers
        if a not in gone
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
            # Subscribed again by an operator: whoever left (even from the config) is back.
            db.execute(
                "UPDATE unsubscribe SET left_at = NULL, left_via = NULL, left_by = NULL "
                "WHERE addr = ?",
                [addr],
            )
    return added, refused


def remove(db: sqlite_utils.Database, addr: str, mail: MailOut, actor: str) -> None:
    """Unsubscribe `addr` (added with `desk subscribers`) as `actor`, without a confirmation
    mail. Raises DeskError for an address of the configuration or one not subscribed."""
    addr = addr.strip().lower()
    if addr in mail.subscribers:
        raise DeskError(
            f"{addr} is listed in [notices] subscribers of the configuration; remove it there."
        )
    with write(db):
        if not db.execute("SELECT 1 FROM subscriber WHERE addr = ?", [addr]).fetchone():
            raise DeskError(f"{addr} is not a subscriber; `desk subscribers list` shows them.")
        _tokens(db, [addr])
        _leave(db, addr, "desk", actor)


def departed(db: sqlite_utils.Database, mail: MailOut) -> list[dict[str, Any]]:
    """Who left, oldest first: addr, left_at (ISO UTC), left_via ('mail': a List-Unsubscribe
    mail, 'web': a one-click POST, 'desk': `desk subscribers remove`), left_by, and in_config
    (the configuration still lists them, yet they get no notices)."""
    rows = db.query(
        "SELECT addr, left_at, left_via, left_by FROM unsubscribe WHERE left_at IS NOT NULL "
        "ORDER BY left_at, addr"
    )
    return [{**row, "in_config": row["addr"] in mail.subscribers} for row in rows]


def unsubscribe(
    db: sqlite_utils.Database, token: str, via: str, mail: MailOut, actor: str
) -> str | None:
    """Unsubscribe whoever `token` belongs to (inside the caller's transaction) and queue one
    confirmation mail to them. LEFT when they left now, ALREADY_LEFT for a repeated request
    (no second confirmation), None for a token that is nobody's. `via` is 'mail' or 'web'."""
    row = db.execute("SELECT addr, left_at FROM unsubscribe WHERE token = ?", [token]).fetchone()
    if row is None:
        return None
    addr, left_at = row
    if left_at is not None:
        return ALREADY_LEFT
    name = db.execute("SELECT name FROM subscriber WHERE addr = ?", [addr]).fetchone()
    left_at = _leave(db, addr, via, actor)
    _confirm(db, addr, name[0] if name else "", left_at, mail, actor)
    return LEFT


def token_known(db: sqlite_utils.Database, token: str) -> bool:
    """Whether `token` is an unsubscribe token of ours (of a subscriber, or of one who left)."""
    return db.execute("SELECT 1 FROM unsubscribe WHERE token = ?", [token]).fetchone() is not None


def _leave(db: sqlite_utils.Database, addr: str, via: str, actor: str) -> str:
    """Record that `addr` left now and cancel the notice mails to it not yet handed over."""
    now = clock.now_iso()
    db.execute(
        "UPDATE unsubscribe SET left_at = ?, left_via = ?, left_by = ? WHERE addr = ?",
        [now, via, actor, addr],
    )
    db.execute("DELETE FROM subscriber WHERE addr = ?", [addr])
    outbox.cancel_notices_to(db, addr, f"{addr} unsubscribed")
    return now


def _confirm(
    db: sqlite_utils.Database, addr: str, name: str, left_at: str, mail: MailOut, actor: str
) -> None:
    """Queue the one mail that tells `addr` it left; keyed by when, so leaving again after a
    new subscription is confirmed again, and a repeat of the same request never is."""
    sender = _sender(mail)
    dedupe = f"unsubscribed:{addr}:{left_at}"
    confirmation = compose.build(
        sender=sender,
        to=mailbox.recipient(name, addr),
        subject="You are unsubscribed from maintenance notices",
        body=(
            f"{addr} will get no more maintenance notices from us.\n\n"
            f"If that was not you, or you change your mind, write to {mailbox.address(sender)}."
        ),
        msgid=compose.message_id(sender, dedupe),
        date=clock.now(),
        headers={"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"},
    )
    outbox.enqueue(db, confirmation, kind="notice", dedupe=dedupe, actor=actor)


def _tokens(db: sqlite_utils.Database, addrs: list[str]) -> dict[str, str]:
    """{addr: token} for `addrs`, making a random token for each address that has none
    (inside the caller's transaction)."""
    known = dict(db.execute("SELECT addr, token FROM unsubscribe").fetchall())
    missing = [(a, secrets.token_urlsafe(18)) for a in dict.fromkeys(addrs) if a not in known]
    db.conn.executemany("INSERT INTO unsubscribe (addr, token) VALUES (?, ?)", missing)
    return known | dict(missing)


def list_unsubscribe(sender: str, token: str, web_url: str) -> dict[str, str]:
    """The List-Unsubscribe header (RFC 2369 section 3.2) for one subscriber's mail, and with
    an https `web_url` the List-Unsubscribe-Post header of RFC 8058 section 3.1."""
    links = [f"<mailto:{mailbox.address(sender)}?subject={quote(f'unsubscribe {token}')}>"]
    if not web_url:
        return {"List-Unsubscribe": links[0]}
    links.append(f"<{web_url}{UNSUBSCRIBE_PATH}{token}>")
    return {
        "List-Unsubscribe": ", ".join(links),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


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
    tokens = _tokens(db, [person["addr"] for person in people])
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
                **list_unsubscribe(sender, tokens[person["addr"]], mail.web_url),
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
