"""When a window's notices fall due, and issuing them; the daemon calls `tick` every half minute.

A scheduled window is announced `announce_days` before it starts (never less than the notice
rule's hours), reminded `reminder_hours` before, and told of at its start and completion; an
emergency's start notice goes out when it is declared. A window whose schedule changed after it
was announced gets a change notice (its reminders not yet sent were cancelled by the change); a
cancelled window that was announced gets a cancellation; a written report goes out as a notice.
Each kind is issued once per revision: the ledger says what stands.

An emergency past its expected end is overrunning: users are told nothing by the clock (only
the people fixing it know when it is over), and ops are reminded once per revision, in the log
and by mail to `[notices] ops`, to extend it, post an update or complete it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from db.core import clock
from db.core.config import MailOut, Maintenance
from db.core.connect import write
from db.mailout import subscribers
from db.maintenance import notices, windows

log = logging.getLogger("desk.notices")
SCHEDULER_ACTOR = "desk-ingest"
RECENT = timedelta(days=7)  # a window that ended (or was cancelled) before this gets no notice
_TOLD = {"announcement", "change"}


def due(
    w: windows.Window,
    now: datetime,
    ledger: list[dict[str, Any]],
    mail: MailOut,
    announce_hours: float,
) -> str | None:
    """The notice `w` needs now, given its email notices so far (oldest first), or None.

    A kind that marks a moment (start, completion, cancellation, report) goes out once for the
    window, whatever is edited later: a fixed typo must not tell everyone again that the
    window began. What tells users what is coming (announcement, change, reminder) follows the
    window's latest revision.
    """
    status = w.status(now)
    ever = {n["kind"] for n in ledger}
    told = [n for n in ledger if n["kind"] in _TOLD]
    told_now = any(not n["superseded"] for n in told)
    if status == "planned":
        if told:
            return "change"
        lead = max(timedelta(days=mail.announce_days), timedelta(hours=announce_hours))
        return "announcement" if now >= w.start - lead else None
    if status == "announced":
        if told and not told_now:
            return "change"  # the text changed after it was announced
        # Remind once after the latest announcement or change, and only when that came before
        # the reminder's time: a change sent later is itself the fresh word.
        point = w.start - timedelta(hours=mail.reminder_hours)
        last = told[-1] if told else None
        reminded = last is None or any(
            n["kind"] == "reminder" and n["id"] > last["id"] for n in ledger
        )
        early_enough = last is not None and clock.parse(last["rendered_at"]) < point
        return "reminder" if not reminded and now >= point and early_enough else None
    if status in windows.IN_FORCE:
        if "start" not in ever:
            return "start"
        since_start = [n for n in ledger if n["kind"] in ("start", "change")]
        return "change" if all(n["superseded"] for n in since_start) else None
    if status == "cancelled":
        recent = w.cancelled_at is not None and now - w.cancelled_at <= RECENT
        return "cancellation" if told and recent and "cancellation" not in ever else None
    # completed
    if "completion" not in ever and (told or "start" in ever) and now - w.ends <= RECENT:
        return "completion"
    written = w.report_written_at
    if written is not None and "report" not in ever and now - written <= RECENT:
        return "report"
    return None


def next_kind(
    db: sqlite_utils.Database,
    w: windows.Window,
    now: datetime,
    mail: MailOut,
    announce_hours: float,
) -> str:
    """The notice the scheduler would issue for `w` now, else the one its state calls for next
    (what `desk window notice --preview` shows by default)."""
    ledger = [n for n in notices.ledger(db, w.id) if n["channel"] == "email"]
    return due(w, now, ledger, mail, announce_hours) or windows.expected_notice(w, now)


def tick(
    db: sqlite_utils.Database, mail: MailOut, maintenance: Maintenance
) -> list[tuple[str, str]]:
    """Issue every notice due now; (window label, kind) of each issued. Each is decided and
    issued in one transaction, so a notice issued by hand meanwhile is never issued twice; a
    window that fails is logged and the others go on."""
    now = clock.now()
    issued = []
    for listed in windows.listing(db, ending_after=now - RECENT - timedelta(days=30)):
        try:
            issued += _window(db, listed.id, now, mail, maintenance)
            if listed.status(now) == "overrunning":
                remind_overrun(db, listed.id, now, mail)
        except Exception:  # noqa: BLE001 - one window's trouble must not silence the others
            log.exception("%s: issuing its notices failed", listed.label)
    return issued


def _reminded(db: sqlite_utils.Database, w: windows.Window) -> bool:
    return (
        db.execute(
            "SELECT 1 FROM window_event WHERE window_id = ? AND revision = ? "
            "AND action = 'overrunning'",
            [w.id, w.revision],
        ).fetchone()
        is not None
    )


def overrun_mail(w: windows.Window, now: datetime) -> tuple[str, str]:
    """The subject and body of the reminder to ops that emergency `w` is overrunning."""
    over = int((now - w.end).total_seconds() // 60)
    return (
        f"Emergency {w.label} is overrunning: {w.title}",
        f"{w.label} “{w.title}” was expected to end at {w.end:%Y-%m-%d %H:%M} UTC, "
        f"{over} min ago, and is still in force: users were told it would be over by then.\n\n"
        f"Tell them the new expected downtime:  desk window extend {w.label} --by MINUTES\n"
        f"Post a progress update:               desk window update {w.label} --status "
        "identified TEXT\n"
        f"Or, when it is over:                  desk window complete {w.label}\n",
    )


def remind_overrun(db: sqlite_utils.Database, window_id: int, now: datetime, mail: MailOut) -> bool:
    """Remind ops, once per revision, that an emergency runs past its expected end: a warning
    in the log, a mail to `[notices] ops` when set, and a line in the audit trail. Whether a
    reminder was given now."""
    if _reminded(db, windows.get(db, window_id)):
        return False
    with write(db):
        w = windows.get(db, window_id)
        if w.status(now) != "overrunning" or _reminded(db, w):
            return False
        windows.audit(db, w.id, w.revision, SCHEDULER_ACTOR, "overrunning", {"ops": mail.ops})
        subject, body = overrun_mail(w, now)
        if mail.ops:
            rows = {"window_id": w.id, "subject": subject, "body": body}
            key = f"overrun:{w.id}:{w.revision}"
            subscribers.queue_notice(db, rows, mail, SCHEDULER_ACTOR, key=key, to=(mail.ops,))
    log.warning("%s", subject + "; extend it, post an update or complete it")
    return True


def _window(
    db: sqlite_utils.Database, window_id: int, now: datetime, mail: MailOut, m: Maintenance
) -> list[tuple[str, str]]:
    def needs() -> tuple[windows.Window, str | None]:
        w = windows.get(db, window_id)
        ledger = [n for n in notices.ledger(db, w.id) if n["channel"] == "email"]
        return w, due(w, now, ledger, mail, m.announce_hours)

    issued = []
    for _ in range(3):  # a window may owe several at once: its completion, then its report
        if needs()[1] is None:  # most ticks: read, and leave the write lock to the sources
            return issued
        with write(db):
            w, kind = needs()  # again under the lock: someone may have issued it meanwhile
            if kind is None:
                return issued
            late = (
                kind in _TOLD
                and w.status(now) not in windows.IN_FORCE
                and not w.forced_reason
                and w.start - windows.told_at(db, w, now) < timedelta(hours=m.announce_hours)
            )
            reason = (
                f"announced late by {SCHEDULER_ACTOR}, {w.start - now} before the start: it was "
                "not running when the notice fell due"
                if late
                else None
            )
            _, created = windows.issue_notice_within(
                db, w, kind, SCHEDULER_ACTOR, announce_hours=m.announce_hours,
                force_reason=None, zone=None, mail=mail, late=reason,
            )  # fmt: skip
        if not created:
            return issued
        if late:
            log.warning("%s: %s", w.label, reason)
        log.info("%s: issued the %s notice", w.label, kind)
        issued.append((w.label, kind))
    return issued
