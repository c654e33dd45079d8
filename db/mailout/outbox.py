"""The outbox: every mail the desk sends, queued in the transaction of the action that causes
it, and the states the daemon's sender moves it through.

queued → sending → sent; a 4xx or an unreachable server puts it back to queued with a later
`next_attempt_at`; a 5xx, deferral past the give-up time, or a bounce that comes back after the
server took it makes it failed. `sending` is written (and committed) just before the mail is
handed over and `sent` just after the server's 250, so after a crash at most the one mail in
hand is `sending`: it is sent again, with the same Message-ID. `dedupe` names what each mail
is (a notice to one subscriber, one ticket's acknowledgement), so queueing the same thing twice
queues it once.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from db.core import clock, mailbox
from db.core.connect import write
from db.core.errors import DeskError, NotFoundError
from db.core.events import record_event
from db.mailout import compose

SENDER_ACTOR = "desk-ingest"
_EVENT = {"sent": "mail-sent", "failed": "mail-failed"}


def enqueue(
    db: sqlite_utils.Database,
    mail: compose.Mail,
    *,
    kind: str,
    dedupe: str,
    actor: str,
    null_sender: bool = False,
    ticket_id: int | None = None,
    notice_id: int | None = None,
    window_id: int | None = None,
) -> int | None:
    """Queue `mail` (inside the caller's transaction); None if `dedupe` is already queued.

    `null_sender` sends with an empty envelope sender (`MAIL FROM:<>`), as RFC 3834 asks of
    automatic replies, so a bounce of one can never start a loop.
    """
    now = clock.now_iso()
    cursor = db.execute(
        "INSERT OR IGNORE INTO outbox (kind, dedupe, message_id, ticket_id, notice_id, "
        "window_id, mail_from, rcpt, cc, subject, raw, next_attempt_at, created_at, created_by) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            kind,
            dedupe,
            mail.message_id,
            ticket_id,
            notice_id,
            window_id,
            "" if null_sender else mailbox.address(mail.sender),
            mail.rcpt,
            json.dumps(mail.cc_addresses),
            mail.subject,
            mail.raw,
            now,
            now,
            actor,
        ],
    )
    return cursor.lastrowid if cursor.rowcount else None


def due(db: sqlite_utils.Database, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Queued mails whose time has come, oldest first."""
    return list(
        db.query(
            "SELECT id, mail_from, rcpt, cc, raw, attempts, created_at, ticket_id FROM outbox "
            "WHERE status = 'queued' AND next_attempt_at <= ? ORDER BY next_attempt_at, id "
            "LIMIT ?",
            [clock.iso(now), limit],
        )
    )


def begin(db: sqlite_utils.Database, outbox_id: int) -> bool:
    """Take a queued mail in hand; False if someone else did (or it was cancelled) meanwhile."""
    return bool(
        db.execute(
            "UPDATE outbox SET status = 'sending', attempts = attempts + 1 "
            "WHERE id = ? AND status = 'queued'",
            [outbox_id],
        ).rowcount
    )


def first_response(db: sqlite_utils.Database, ticket_id: int) -> None:
    """A ticket's first response is its first reply not failed or cancelled: a reply that
    never reaches the customer does not answer them."""
    db.execute(
        "UPDATE ticket SET first_response_at = (SELECT min(created_at) FROM outbox "
        "WHERE ticket_id = ? AND kind = 'reply' AND status IN ('queued', 'sending', 'sent')) "
        "WHERE id = ?",
        [ticket_id, ticket_id],
    )


def _finish(db: sqlite_utils.Database, outbox_id: int, status: str, error: str | None) -> None:
    now = clock.now_iso()
    db.execute(  # a bounce fails a mail that was sent: when it went stays on record
        "UPDATE outbox SET status = ?, last_error = ?, "
        "sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE id = ?",
        [status, error, status, now, outbox_id],
    )
    row = db.execute(
        "SELECT ticket_id, kind, rcpt, attempts FROM outbox WHERE id = ?", [outbox_id]
    ).fetchone()
    if row and row[0] is not None:
        detail = {"outbox": outbox_id, "kind": row[1], "to": row[2], "attempts": row[3]}
        if error:
            detail["error"] = error
        record_event(db, row[0], SENDER_ACTOR, _EVENT[status], detail, at=now)
        if status == "failed" and row[1] == "reply":
            first_response(db, row[0])


def sent(db: sqlite_utils.Database, outbox_id: int, refused: str | None = None) -> None:
    """Taken by the server; `refused` says which Cc addresses it would not take, and why."""
    _finish(db, outbox_id, "sent", refused)


def failed(db: sqlite_utils.Database, outbox_id: int, error: str) -> None:
    """A permanent failure; it is shown on the ticket."""
    _finish(db, outbox_id, "failed", error)


def bounced(db: sqlite_utils.Database, message_id: str, why: str) -> None:
    """A mail of ours came back after the server took it: failed, as if refused."""
    row = db.execute("SELECT id, status FROM outbox WHERE message_id = ?", [message_id]).fetchone()
    if row is not None and row[1] != "failed":
        failed(db, row[0], why)


def defer(db: sqlite_utils.Database, outbox_id: int, error: str, delay: timedelta) -> None:
    """Back to the queue, to be tried again after `delay`."""
    db.execute(
        "UPDATE outbox SET status = 'queued', last_error = ?, next_attempt_at = ? WHERE id = ?",
        [error, clock.iso(clock.now() + delay), outbox_id],
    )


def note_unreachable(db: sqlite_utils.Database, error: str) -> None:
    """Count an attempt on every due mail and say why it still waits (the server cannot be
    reached): the give-up time counts from the first attempt, not from queueing."""
    db.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ? "
        "WHERE status = 'queued' AND next_attempt_at <= ?",
        [error, clock.now_iso()],
    )


def recover(db: sqlite_utils.Database) -> int:
    """After a crash: a mail left `sending` may or may not have reached the server; queue it
    again (same bytes, same Message-ID) rather than risk losing it."""
    return db.execute(
        "UPDATE outbox SET status = 'queued', last_error = 'interrupted while being handed to "
        "the SMTP server; sent again (a reader may see it twice, with one Message-ID)' "
        "WHERE status = 'sending'"
    ).rowcount


def expire(db: sqlite_utils.Database, give_up_hours: float) -> list[int]:
    """Fail mails tried and still undelivered `give_up_hours` after they were queued; their
    ids. A mail never tried (the daemon was down, or had no [smtp]) is not given up on."""
    cutoff = clock.iso(clock.now() - timedelta(hours=give_up_hours))
    rows = db.execute(
        "SELECT id, last_error FROM outbox WHERE status = 'queued' AND attempts > 0 "
        "AND created_at < ?",
        [cutoff],
    ).fetchall()
    for outbox_id, error in rows:
        failed(db, outbox_id, f"gave up after {give_up_hours:g} hours: {error or 'deferred'}")
    return [outbox_id for outbox_id, _ in rows]


def cancel_window_notices(db: sqlite_utils.Database, window_id: int, why: str) -> int:
    """Cancel the window's notice mails not yet handed over: their text no longer holds. A
    progress update or a reminder to ops (no ledger row) said what held when it was written."""
    return db.execute(
        "UPDATE outbox SET status = 'cancelled', last_error = ? "
        "WHERE window_id = ? AND kind = 'notice' AND notice_id IS NOT NULL "
        "AND status = 'queued'",
        [why, window_id],
    ).rowcount


def cancel_notices_to(db: sqlite_utils.Database, addr: str, why: str) -> int:
    """Cancel the notice mails to `addr` not yet handed over: it unsubscribed (RFC 8058 asks
    that no further mail follow)."""
    return db.execute(
        "UPDATE outbox SET status = 'cancelled', last_error = ? "
        "WHERE rcpt = ? AND kind = 'notice' AND notice_id IS NOT NULL AND status = 'queued'",
        [why, addr],
    ).rowcount


def recently_acknowledged(db: sqlite_utils.Database, addr: str, since: datetime) -> bool:
    return (
        db.execute(
            "SELECT 1 FROM outbox WHERE rcpt = ? AND kind = 'ack' AND created_at >= ? "
            "AND status != 'cancelled' LIMIT 1",
            [addr, clock.iso(since)],
        ).fetchone()
        is not None
    )


_LISTED = (
    "id, kind, status, rcpt, cc, subject, ticket_id, window_id, notice_id, attempts, "
    "next_attempt_at, last_error, created_at, created_by, sent_at, message_id"
)


def listing(
    db: sqlite_utils.Database, statuses: tuple[str, ...] = (), limit: int = 100
) -> list[dict[str, Any]]:
    """Mails newest first, optionally only in `statuses`."""
    where = f"WHERE status IN ({', '.join('?' * len(statuses))})" if statuses else ""
    return list(
        db.query(
            f"SELECT {_LISTED} FROM outbox {where} ORDER BY id DESC LIMIT ?",
            [*statuses, limit],
        )
    )


def get(db: sqlite_utils.Database, outbox_id: int) -> dict[str, Any]:
    for row in db.query(f"SELECT {_LISTED}, raw FROM outbox WHERE id = ?", [outbox_id]):
        return row
    raise NotFoundError(f"There is no mail {outbox_id} in the outbox; `desk outbox` lists them.")


def queued_for_notices(db: sqlite_utils.Database, notice_ids: list[int]) -> int:
    """How many mails the outbox holds for these notices, whatever became of them since."""
    if not notice_ids:
        return 0
    marks = ", ".join("?" * len(notice_ids))
    return db.execute(
        f"SELECT count(*) FROM outbox WHERE notice_id IN ({marks})", notice_ids
    ).fetchone()[0]


def counts(db: sqlite_utils.Database) -> dict[str, int]:
    return dict(db.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall())


def retry(db: sqlite_utils.Database, outbox_id: int, actor: str) -> None:
    """Queue a failed or cancelled mail again, now, as if new: its old failure is history (on
    the ticket's audit trail), and the give-up time counts from now."""
    with write(db):
        row = get(db, outbox_id)
        if row["status"] not in ("failed", "cancelled"):
            raise DeskError(
                f"Mail {outbox_id} is {row['status']}; only a failed or cancelled one can be "
                "retried."
            )
        stale = db.execute(
            "SELECT 1 FROM notice n JOIN window w ON w.id = n.window_id WHERE n.id = ? "
            "AND (n.superseded OR w.cancelled_at IS NOT NULL)",
            [row["notice_id"]],
        ).fetchone()
        if stale:
            raise DeskError(
                f"Mail {outbox_id} is a maintenance notice whose text no longer holds (the window "
                "changed or was cancelled); the notice for its current state goes out by itself."
            )
        now = clock.now_iso()
        db.execute(
            "UPDATE outbox SET status = 'queued', attempts = 0, last_error = NULL, "
            "next_attempt_at = ?, created_at = ? WHERE id = ?",
            [now, now, outbox_id],
        )
        if row["ticket_id"] is not None:
            record_event(db, row["ticket_id"], actor, "mail-retry", {"outbox": outbox_id})
            first_response(db, row["ticket_id"])


def cancel(db: sqlite_utils.Database, outbox_id: int, actor: str) -> None:
    """Withdraw a queued mail."""
    with write(db):
        row = get(db, outbox_id)
        if row["status"] != "queued":
            raise DeskError(
                f"Mail {outbox_id} is {row['status']}; only a queued one can be cancelled."
            )
        db.execute(
            "UPDATE outbox SET status = 'cancelled', last_error = ? WHERE id = ?",
            [f"cancelled by {actor}", outbox_id],
        )
        if row["ticket_id"] is not None:
            record_event(db, row["ticket_id"], actor, "mail-cancelled", {"outbox": outbox_id})
            first_response(db, row["ticket_id"])
