"""When a window's notices fall due, and issuing them; the daemon calls `tick` every half minute.

A scheduled window is announced `announce_days` before it starts (never less than the notice
rule's hours), reminded `reminder_hours` before, and told of at its start and completion; an
emergency's start notice goes out when it is declared. A window whose schedule changed after it
was announced gets a change notice (its reminders not yet sent were cancelled by the change); a
cancelled window that was announced gets a cancellation; a written report goes out as a notice.
Each kind is issued once per revision: the ledger says what stands.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlite_utils

from db import clock, notices, windows
from db.config import MailOut, Maintenance

log = logging.getLogger("desk.notices")
SCHEDULER_ACTOR = "desk-ingest"
RECENT = timedelta(days=7)  # a window that ended (or was cancelled) before this gets no notice
_TOLD = {"announcement", "change"}


def due(
    w: windows.Window,
    now: datetime,
    ever: set[str],
    standing: set[str],
    mail: MailOut,
    announce_hours: float,
) -> str | None:
    """The notice `w` needs now, given the kinds ever issued and those standing, or None."""
    status = w.status(now)
    told = bool(ever & _TOLD)
    if status == "planned":
        if told:
            return "change"
        lead = max(timedelta(days=mail.announce_days), timedelta(hours=announce_hours))
        return "announcement" if now >= w.start - lead else None
    if status == "announced":
        point = w.start - timedelta(hours=mail.reminder_hours)
        early_enough = w.announced_at is not None and w.announced_at < point
        return "reminder" if "reminder" not in standing and now >= point and early_enough else None
    if status == "active":
        return None if "start" in standing else "start"
    if status == "cancelled":
        recent = w.cancelled_at is not None and now - w.cancelled_at <= RECENT
        return "cancellation" if told and recent and "cancellation" not in standing else None
    # completed
    if "completion" not in standing and (told or "start" in ever) and now - w.ends <= RECENT:
        return "completion"
    written = w.report_written_at
    if written is not None and "report" not in standing and now - written <= RECENT:
        return "report"
    return None


def tick(
    db: sqlite_utils.Database, mail: MailOut, maintenance: Maintenance
) -> list[tuple[str, str]]:
    """Issue every notice due now; (window label, kind) of each issued."""
    now = clock.now()
    issued = []
    for w in windows.listing(db, ending_after=now - RECENT - timedelta(days=30)):
        for _ in range(3):  # a window may owe several at once: its completion, then its report
            ledger = [n for n in notices.ledger(db, w.id) if n["channel"] == "email"]
            ever = {n["kind"] for n in ledger}
            standing = {n["kind"] for n in ledger if not n["superseded"]}
            kind = due(w, now, ever, standing, mail, maintenance.announce_hours)
            if kind is None:
                break
            late = (
                kind in _TOLD
                and not w.forced_reason
                and w.start - now < timedelta(hours=maintenance.announce_hours)
            )
            reason = (
                f"announced late by {SCHEDULER_ACTOR}, {w.start - now} before the start: it was "
                "not running when the notice fell due"
                if late
                else None
            )
            if late:
                log.warning("%s: %s", w.label, reason)
            windows.issue_notice(
                db,
                w.id,
                kind,
                SCHEDULER_ACTOR,
                announce_hours=maintenance.announce_hours,
                force_reason=reason,
                mail=mail,
            )
            log.info("%s: issued the %s notice", w.label, kind)
            issued.append((w.label, kind))
            w = windows.get(db, w.id)
    return issued
