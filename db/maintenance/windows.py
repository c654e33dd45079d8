"""Maintenance windows: scheduling under the notice rule, edits, cancel, complete, extend,
emergencies, release notes and issuing notices; reading them is re-exported from `window_model`.

Every change bumps the revision and is recorded in `window_event`; a change to what a notice
says supersedes the standing notices; a change to when a window is re-judges the tickets around
it. Scheduled windows keep the notice rule: announced at least `announce_hours` (48) before
they start, unless forced with a reason, and do not overlap another window unless the operator
says both are meant (`allow_overlap`; see `overlap`).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from db.core import clock
from db.core.config import MailOut
from db.core.connect import write
from db.core.errors import ConflictError, DeskError
from db.core.migrations import NOTICE_KINDS, UPDATE_TYPES
from db.mailout import outbox
from db.maintenance import discrepancy, notices
from db.maintenance.overlap import OverlapError as OverlapError
from db.maintenance.overlap import check_overlap
from db.maintenance.window_model import IN_FORCE as IN_FORCE
from db.maintenance.window_model import Window as Window
from db.maintenance.window_model import events as events
from db.maintenance.window_model import expected_notice as expected_notice
from db.maintenance.window_model import get as get
from db.maintenance.window_model import listing as listing
from db.maintenance.window_model import ref as ref

SCHEDULED_KINDS = ("monthly", "quarterly", "adhoc")
# What notices print: changing any of these makes the standing notices stale.
_NOTICE_FIELDS = {
    "title", "update_type", "description", "start_at", "end_at", "features", "release_notes",
    "nature", "expected_minutes",
}  # fmt: skip
# Changing these means users must be told again, 48 hours ahead.
_SCHEDULE_FIELDS = {"start_at", "end_at", "features"}
_TIME_FIELDS = {"start_at", "end_at", "completed_at", "cancelled_at"}
_EDITABLE = {"title", "update_type", "description", "start_at", "end_at", "features", "zone"}
# A notice given this soon after its window was scheduled counts as given at the scheduling: a
# window added exactly 48 hours ahead is announced on time by the daemon's next tick.
PROMPT = timedelta(minutes=5)


class NoticeRuleError(DeskError):
    """A scheduled window would be announced less than the required hours before it starts."""

    def __init__(self, message: str) -> None:
        super().__init__(message, title="Too little notice")


def audit(
    db: sqlite_utils.Database, window_id: int, revision: int, actor: str, action: str, detail: dict
) -> None:
    """Record `action` on the window's audit trail (inside the caller's transaction)."""
    db.execute(
        "INSERT INTO window_event (window_id, at, actor, revision, action, detail) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [window_id, clock.now_iso(), actor, revision, action, json.dumps(detail, default=str)],
    )


def record(
    db: sqlite_utils.Database, window_id: int, actor: str, action: str, detail: dict
) -> None:
    """Add to the audit trail at the window's current revision (inside the caller's
    transaction): for what changes no notice, like a sync flagging that its rule is gone."""
    (revision,) = db.execute("SELECT revision FROM window WHERE id = ?", [window_id]).fetchone()
    audit(db, window_id, revision, actor, action, detail)


def check_notice(
    kind: str,
    start: datetime,
    hours: float,
    forced_reason: str | None,
    zone: str,
    told_at: datetime | None = None,
) -> None:
    """Refuse a scheduled window that starts less than `hours` after `told_at` (default now:
    the earliest it can be announced), unless a reason for forcing it is on record.
    Raises NoticeRuleError; the rule is the policy's "at least 48 hours in advance"."""
    now = clock.now()
    told = told_at or now
    if kind == "emergency" or forced_reason or start - told >= timedelta(hours=hours):
        return
    lead = max(start - now, timedelta())
    earliest = (now + timedelta(hours=hours)).astimezone(ZoneInfo(zone))
    raise NoticeRuleError(
        f"The window would start in {lead.days * 24 + lead.seconds // 3600} h "
        f"{lead.seconds % 3600 // 60:02d} min, less than the {hours:g} hours' notice the "
        f"policy requires; start it at {earliest:%Y-%m-%d %H:%M %Z} or later, "
        "or pass --force --reason TEXT."
    )


def told_at(db: sqlite_utils.Database, w: Window, now: datetime) -> datetime:
    """When a notice issued `now` counts as given: when the window's start was last set, if
    that is within `PROMPT`; else now."""
    row = db.execute(
        "SELECT max(at) FROM window_event WHERE window_id = ? "
        "AND (action = 'created' OR json_extract(detail, '$.start_at') IS NOT NULL)",
        [w.id],
    ).fetchone()
    scheduled = clock.parse(row[0]) if row and row[0] else w.created_at
    return scheduled if now - scheduled <= PROMPT else now


def _check_span(start: datetime, end: datetime) -> None:
    if end <= start:
        raise DeskError("A window must end after it starts; check --end or --duration.")


def _reason(force_reason: str | None) -> str | None:
    if force_reason is not None and not force_reason.strip():
        raise DeskError("Forcing the notice rule needs a reason; pass --reason TEXT.")
    return force_reason.strip() if force_reason else None


def insert(
    db: sqlite_utils.Database,
    *,
    title: str,
    kind: str,
    update_type: str,
    start: datetime,
    end: datetime,
    zone: str,
    actor: str,
    features: tuple[str, ...] = (),
    description: str = "",
    nature: str = "",
    expected_minutes: int | None = None,
    announced: bool = False,
    forced_reason: str | None = None,
    rule: str | None = None,
    occurrence: str | None = None,
    flags: tuple[str, ...] = (),
) -> int | None:
    """Insert a window (inside the caller's transaction); None when its rule's occurrence
    already exists, so materialising twice adds nothing."""
    _check_span(start, end)
    if update_type not in UPDATE_TYPES:
        raise DeskError(f"{update_type!r} is not an update type; use {', '.join(UPDATE_TYPES)}.")
    now = clock.now_iso()
    cursor = db.execute(
        "INSERT OR IGNORE INTO window (title, kind, update_type, description, start_at, end_at, "
        "zone, features, nature, expected_minutes, announced_at, forced_reason, rule, "
        "occurrence, flags, created_at, created_by) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            title,
            kind,
            update_type,
            description,
            clock.iso(start),
            clock.iso(end),
            zone,
            json.dumps(list(features)),
            nature,
            expected_minutes,
            now if announced else None,
            forced_reason,
            rule,
            occurrence,
            json.dumps(list(flags)),
            now,
            actor,
        ],
    )
    if not cursor.rowcount:
        return None
    window_id = cursor.lastrowid
    detail = {"rule": rule, "occurrence": occurrence} if rule else {}
    audit(db, window_id, 1, actor, "created", {**detail, "forced_reason": forced_reason})
    discrepancy.reevaluate_span(db, clock.iso(start), clock.iso(end))
    return window_id


def add(
    db: sqlite_utils.Database,
    *,
    title: str,
    kind: str,
    update_type: str,
    start: datetime,
    end: datetime,
    zone: str,
    actor: str,
    features: tuple[str, ...] = (),
    description: str = "",
    announce_hours: float = 48.0,
    force_reason: str | None = None,
    allow_overlap: bool = False,
) -> Window:
    """Schedule a window under the notice rule; raises NoticeRuleError, or OverlapError when
    it overlaps another window and `allow_overlap` is not given."""
    if kind not in SCHEDULED_KINDS:
        raise DeskError(
            f"{kind!r} is not a scheduled kind ({', '.join(SCHEDULED_KINDS)}); "
            "an emergency starts with `desk window emergency`."
        )
    reason = _reason(force_reason)
    _check_span(start, end)
    check_notice(kind, start, announce_hours, reason, zone)
    with write(db):
        overlaps = check_overlap(db, start, end, zone, allowed=allow_overlap)
        window_id = insert(
            db,
            title=title,
            kind=kind,
            update_type=update_type,
            start=start,
            end=end,
            zone=zone,
            actor=actor,
            features=features,
            description=description,
            forced_reason=reason,
        )
        assert window_id is not None  # only rule occurrences are ever ignored
        if overlaps:
            audit(db, window_id, 1, actor, "overlap-allowed", {"overlaps": overlaps})
    return get(db, window_id)


def change(
    db: sqlite_utils.Database,
    w: Window,
    actor: str,
    action: str,
    changes: dict[str, Any],
    *,
    note: dict[str, Any] | None = None,
) -> Window:
    """Apply `changes` (column → new stored value) as the next revision (inside a transaction);
    `note` adds to what the audit trail records."""
    current = next(db.query("SELECT * FROM window WHERE id = ?", [w.id]))
    diff = {k: [current[k], v] for k, v in changes.items() if current[k] != v}
    if not diff:
        return w
    if diff.keys() & _SCHEDULE_FIELDS and current["announced_at"] and w.kind != "emergency":
        diff["announced_at"] = [current["announced_at"], None]
    sets = ", ".join(f"{k} = ?" for k in diff)
    db.execute(
        f"UPDATE window SET {sets}, revision = revision + 1 WHERE id = ?",
        [*(new for _, new in diff.values()), w.id],
    )
    audit(db, w.id, w.revision + 1, actor, action, {**diff, **(note or {})})
    if diff.keys() & _NOTICE_FIELDS:
        notices.supersede(db, w.id, w.revision + 1)
    changed = get(db, w.id)
    if diff.keys() & _TIME_FIELDS:
        discrepancy.reevaluate_span(
            db, clock.iso(min(w.start, changed.start)), clock.iso(max(w.ends, changed.ends))
        )
    return changed


def _current(db: sqlite_utils.Database, window_id: int, expected_revision: int | None) -> Window:
    w = get(db, window_id)
    if expected_revision is not None and w.revision != expected_revision:
        raise ConflictError(
            f"{w.label} is at revision {w.revision}, not {expected_revision}: someone changed it; "
            "look at `desk window show` and try again."
        )
    return w


def edit(
    db: sqlite_utils.Database,
    window_id: int,
    actor: str,
    changes: dict[str, Any],
    *,
    announce_hours: float = 48.0,
    force_reason: str | None = None,
    expected_revision: int | None = None,
    allow_overlap: bool = False,
) -> Window:
    """Change title, type, description, times (aware datetimes), features or zone; moving it
    onto another window raises OverlapError unless `allow_overlap`."""
    unknown = changes.keys() - _EDITABLE
    if unknown:
        raise DeskError(f"These cannot be edited: {', '.join(sorted(unknown))}.")
    reason = _reason(force_reason)
    with write(db):
        w = _current(db, window_id, expected_revision)
        now = clock.now()
        status = w.status(now)
        start, end = changes.get("start_at", w.start), changes.get("end_at", w.end)
        moved = start != w.start or end != w.end
        if status in ("cancelled", "completed") and (moved or "features" in changes):
            raise DeskError(f"{w.label} is {status}; its times and features can no longer change.")
        if status in IN_FORCE and start != w.start:
            raise DeskError(f"{w.label} has started; only its end can move now.")
        if status in IN_FORCE and end <= now:
            raise DeskError(f"{w.label} would end in the past; use `desk window complete`.")
        _check_span(start, end)
        zone = changes.get("zone", w.zone)
        if moved and status not in IN_FORCE:
            check_notice(w.kind, start, announce_hours, reason, zone)
        overlaps = (
            check_overlap(db, start, end, zone, exclude=w.id, allowed=allow_overlap)
            if moved
            else []
        )
        note = {"overlaps": overlaps} if overlaps else None
        stored = {k: clock.iso(v) if k in ("start_at", "end_at") else v for k, v in changes.items()}
        if "features" in stored:
            stored["features"] = json.dumps(list(stored["features"]))
        if moved:
            stored["forced_reason"] = reason
        return change(db, w, actor, "edited", stored, note=note)


def cancel(db: sqlite_utils.Database, window_id: int, actor: str, reason: str = "") -> Window:
    """Call off a window that has not started."""
    with write(db):
        return cancel_within(db, window_id, actor, reason)


def cancel_within(
    db: sqlite_utils.Database, window_id: int, actor: str, reason: str = ""
) -> Window:
    """`cancel`, inside the caller's transaction."""
    w = get(db, window_id)
    status = w.status(clock.now())
    if status in (*IN_FORCE, "completed", "cancelled"):
        hint = "; complete it instead" if status in IN_FORCE else ""
        raise DeskError(f"{w.label} is {status} and cannot be cancelled{hint}.")
    changes = {"cancelled_at": clock.now_iso()}
    outbox.cancel_window_notices(db, w.id, "the window was cancelled")
    return change(db, w, actor, "cancelled", changes, note={"reason": reason})


def complete(db: sqlite_utils.Database, window_id: int, actor: str) -> Window:
    """End a window in force now (earlier or later than planned)."""
    with write(db):
        return complete_within(db, get(db, window_id), actor)


def complete_within(db: sqlite_utils.Database, w: Window, actor: str) -> Window:
    """`complete`, inside the caller's transaction, with `w` read in it."""
    status = w.status(clock.now())
    if status not in IN_FORCE:
        raise DeskError(f"{w.label} is {status}; only a window in force can be completed.")
    return change(db, w, actor, "completed", {"completed_at": clock.now_iso()})


def extend(
    db: sqlite_utils.Database,
    window_id: int,
    actor: str,
    *,
    until: datetime | None = None,
    minutes: int | None = None,
    mail: MailOut | None = None,
) -> tuple[Window, list[dict[str, Any]]]:
    """Move the expected end of a window in force: to `until`, or `minutes` past its expected
    end (past now, when that has gone by). Issues the update notice at once (with `mail`,
    queued to the subscribers): what is wrong and the new expected downtime, as the policy
    asks of emergencies. Returns the window and the notices issued."""
    if (until is None) == (minutes is None):
        raise DeskError("Say how long: give --by MINUTES or --until TIME.")
    if minutes is not None and minutes <= 0:
        raise DeskError("--by must be a positive number of minutes.")
    now = clock.now()
    with write(db):
        w = get(db, window_id)
        status = w.status(now)
        if status not in IN_FORCE:
            raise DeskError(
                f"{w.label} is {status}; only a window in force can be extended "
                "(`desk window edit` moves one that has not started)."
            )
        end = until or max(w.end, now) + timedelta(minutes=minutes or 0)
        if end <= now:
            raise DeskError(f"{w.label} would end in the past; give a later time.")
        changes = {"end_at": clock.iso(end)}
        if w.kind == "emergency":
            changes["expected_minutes"] = round((end - w.start).total_seconds() / 60)
        w = change(db, w, actor, "extended", changes)
        issued, _ = notices.record(db, w, "change", actor, mail=mail)
    return w, issued


def emergency(
    db: sqlite_utils.Database,
    *,
    title: str,
    expected_minutes: int,
    nature: str,
    actor: str,
    zone: str,
    features: tuple[str, ...] = (),
    update_type: str = "security",
    mail: MailOut | None = None,
) -> tuple[Window, list[dict[str, Any]]]:
    """Start an emergency window now and issue its start notice at once (with `mail`, queued
    to the subscribers in the same transaction)."""
    if expected_minutes <= 0:
        raise DeskError("The expected downtime must be a positive number of minutes.")
    now = clock.now()
    with write(db):
        window_id = insert(
            db,
            title=title,
            kind="emergency",
            update_type=update_type,
            start=now,
            end=now + timedelta(minutes=expected_minutes),
            zone=zone,
            actor=actor,
            features=features,
            nature=nature,
            expected_minutes=expected_minutes,
            announced=True,
        )
        assert window_id is not None
        w = get(db, window_id)
        issued, _ = notices.record(db, w, "start", actor, mail=mail)
    return w, issued


def set_notes(db: sqlite_utils.Database, window_id: int, text: str, actor: str) -> Window:
    with write(db):
        return change(db, get(db, window_id), actor, "release-notes", {"release_notes": text})


def issue_notice(
    db: sqlite_utils.Database,
    window_id: int,
    kind: str,
    actor: str,
    *,
    announce_hours: float = 48.0,
    force_reason: str | None = None,
    zone: str | None = None,
    mail: MailOut | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """Enter a notice in the ledger (with `mail`, queue its email to the subscribers); an
    announcement or change notice marks the window announced, under the notice rule. Returns
    the standing notices and whether they were issued now."""
    if kind not in NOTICE_KINDS:
        raise DeskError(f"{kind!r} is not a notice kind; use {', '.join(NOTICE_KINDS)}.")
    reason = _reason(force_reason)
    with write(db):
        w = get(db, window_id)
        return issue_notice_within(
            db, w, kind, actor, announce_hours=announce_hours, force_reason=reason, zone=zone,
            mail=mail,
        )  # fmt: skip


_FITS = {
    "announcement": ("planned", "announced"),
    "change": ("planned", "announced", *IN_FORCE),
    "reminder": ("announced",),
    "start": IN_FORCE,
    "completion": ("completed",),
    "cancellation": ("cancelled",),
    "report": ("completed",),
}


def issue_notice_within(
    db: sqlite_utils.Database,
    w: Window,
    kind: str,
    actor: str,
    *,
    announce_hours: float,
    force_reason: str | None,
    zone: str | None,
    mail: MailOut | None,
    late: str | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """`issue_notice`, inside the caller's transaction, with `w` read in it. `late` says why an
    announcement goes out with less notice than the rule asks when no one forced it (the
    daemon was not running when it fell due): it goes out, and the audit trail says so."""
    now = clock.now()
    status = w.status(now)
    if kind == "report" and w.report_written_at is None:
        raise DeskError(f"{w.label} has no report yet; `desk window report` writes it.")
    if status not in _FITS[kind]:
        raise DeskError(f"{w.label} is {status}, so a {kind} notice does not fit it now.")
    standing = notices.standing(db, w.id, kind)
    if standing:
        return standing, False
    if kind in ("announcement", "change") and status not in IN_FORCE:
        if late is None:
            check_notice(
                w.kind, w.start, announce_hours, force_reason or w.forced_reason, w.zone,
                told_at(db, w, now),
            )  # fmt: skip
        db.execute(
            "UPDATE window SET announced_at = ?, forced_reason = coalesce(?, forced_reason) "
            "WHERE id = ?",
            [clock.iso(now), force_reason, w.id],
        )
        detail = {"forced_reason": force_reason, **({"late": late} if late else {})}
        audit(db, w.id, w.revision, actor, "announced", detail)
    return notices.record(db, w, kind, actor, zone, mail)
