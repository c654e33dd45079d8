"""Notices about a window: the email and dashboard-banner text, and the ledger of those issued.

The text follows the maintenance policy: start and end in UTC and in the reader's zone, the
features unavailable, the update type and release notes, the reminders to back up data and to
log out, and for emergencies the nature of the issue and the expected downtime. The ledger
holds one row per window revision, kind and channel; a notice stands until a change to what
it says supersedes it, and a standing notice is never issued twice.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlite_utils

from db.core import clock
from db.mailout import outbox, subscribers
from db.maintenance import window_model
from db.maintenance.window_model import Window

if TYPE_CHECKING:
    from db.core.config import MailOut

BACKUP = "Please back up any critical data you will need; the help section explains how."
LOG_OUT = "Please log out of your account before the window begins, to prevent data loss."
VERIFY = (
    "Afterwards, please verify your data and transactions, and report any discrepancy "
    "to Valuit support immediately."
)
# Sentences of ours that a customer's reply may carry back unquoted; the discrepancy rule
# ignores lines containing them so our own words never classify a ticket.
BOILERPLATE = (BACKUP, LOG_OUT, VERIFY)

_KIND_PHRASE = {
    "monthly": "our monthly routine maintenance",
    "quarterly": "our quarterly deep maintenance (database cleanup, server optimisation and "
    "performance tuning)",
    "adhoc": "our scheduled maintenance",
    "emergency": "emergency maintenance",
}

_HEADING = re.compile(r"^##\s+(.+?)\s*$", re.MULTILINE)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
# What users are told of a post-maintenance report; impact and timeline stay internal.
REPORT_FOR_USERS = ("Summary", "Root cause", "Steps taken")


def sections(text: str) -> dict[str, str]:
    """The text under each `## heading` of a Markdown report, without comments."""
    clean = _COMMENT.sub("", text)
    found = {}
    matches = list(_HEADING.finditer(clean))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(clean)
        found[match.group(1)] = clean[match.end() : end].strip()
    return found


@dataclass(frozen=True)
class Notice:
    kind: str
    channel: str
    subject: str
    body: str


def span(start: datetime, end: datetime, zone: str) -> str:
    """'Sunday 6 December 2026, 02:00–04:00 GMT', with both dates when it crosses midnight and
    each end's own zone label when the clocks change in between (00:30 BST – 02:30 GMT)."""
    tz = ZoneInfo(zone)
    a, b = start.astimezone(tz), end.astimezone(tz)
    day = f"{a:%A} {a.day} {a:%B %Y}"
    if a.date() != b.date():
        return f"{day}, {a:%H:%M %Z} – {b:%A} {b.day} {b:%B %Y}, {b:%H:%M %Z}"
    if a.tzname() != b.tzname():
        return f"{day}, {a:%H:%M %Z} – {b:%H:%M %Z}"
    return f"{day}, {a:%H:%M}–{b:%H:%M} {b:%Z}"


def utc_span(start: datetime, end: datetime) -> str:
    """'2026-12-06 02:00–04:00 UTC' (both dates when it crosses midnight)."""
    a, b = start.astimezone(UTC), end.astimezone(UTC)
    if a.date() == b.date():
        return f"{a:%Y-%m-%d %H:%M}–{b:%H:%M} UTC"
    return f"{a:%Y-%m-%d %H:%M} – {b:%Y-%m-%d %H:%M} UTC"


def time_of(moment: datetime, zone: str) -> str:
    """'14:45 CET (13:45 UTC)'; '13:45 UTC' in UTC."""
    if zone == "UTC":
        return f"{moment.astimezone(UTC):%H:%M} UTC"
    return f"{moment.astimezone(ZoneInfo(zone)):%H:%M %Z} ({moment.astimezone(UTC):%H:%M} UTC)"


def _when(w: Window, zone: str) -> str:
    if zone == "UTC":
        return f"When: {span(w.start, w.ends, zone)}"
    return f"When ({zone}): {span(w.start, w.ends, zone)}\nWhen (UTC): {utc_span(w.start, w.ends)}"


def _features(w: Window) -> str:
    if not w.features:
        return "No feature is planned to be unavailable, though access may be limited."
    return "Unavailable during the window:\n" + "\n".join(f"  - {f}" for f in w.features)


def _emergency(w: Window, zone: str) -> str:
    return (
        f"Nature of the issue: {w.nature or w.title}\n"
        f"Expected downtime: about {w.expected_minutes} minutes, until {time_of(w.ends, zone)}."
    )


def _notes(w: Window) -> str:
    return f"Release notes:\n{w.release_notes.strip()}" if w.release_notes.strip() else ""


def _in_force(w: Window) -> bool:
    return w.start <= clock.now() and w.completed_at is None and w.cancelled_at is None


def _change(w: Window, zone: str, previous: tuple[datetime, datetime] | None) -> list[str]:
    """The lead of a change notice: what changed, and the time users were told before."""
    what = f"{_KIND_PHRASE[w.kind]} ({w.update_type} update)"
    if _in_force(w):
        longer = previous is not None and w.end > previous[1]
        lead = (
            f"{what[0].upper()}{what[1:]} on the Valuit platform "
            f"{'is taking longer than expected' if longer else 'has changed'}; this notice "
            "replaces the earlier one."
        )
        before = f"We expected it to end at {time_of(previous[1], zone)}." if previous else ""
        return [lead, _emergency(w, zone) if w.kind == "emergency" else "", before]
    if previous is None:
        when = span(w.start, w.ends, zone)
        return [
            f"We have changed the details of {what}, planned for {when}; this notice replaces "
            "the earlier one. The new details:"
        ]
    old = f"{span(*previous, zone)} ({utc_span(*previous)})"
    return [
        f"We have moved {what}, which we announced for {old}; this notice replaces the "
        "earlier one. The new details:"
    ]


def _subject(w: Window, kind: str, zone: str) -> str:
    if w.kind == "emergency":
        until = w.ends.astimezone(ZoneInfo(zone))
        return {
            "start": f"Emergency maintenance in progress: {w.title}",
            "change": f"Emergency maintenance update: {w.title}, now until {until:%H:%M %Z}",
            "completion": f"Emergency maintenance completed: {w.title}",
            "report": f"Emergency maintenance report: {w.title}",
        }.get(kind, f"Emergency maintenance: {w.title}")
    when = span(w.start, w.ends, zone)
    return {
        "announcement": f"Valuit maintenance {when}: {w.title}",
        "reminder": f"Reminder: Valuit maintenance {when}: {w.title}",
        "change": f"Changed: Valuit maintenance {when}: {w.title}",
        "start": f"Valuit maintenance in progress: {w.title}",
        "completion": f"Valuit maintenance completed: {w.title}",
        "report": f"Valuit maintenance report: {w.title}",
        "cancellation": f"Cancelled: Valuit maintenance {when}",
    }[kind]


def _email(
    w: Window, kind: str, zone: str, previous: tuple[datetime, datetime] | None, update: str
) -> tuple[str, str]:
    phrase = _KIND_PHRASE[w.kind]
    what = f"{phrase} ({w.update_type} update)"
    when = span(w.start, w.ends, zone)
    stay_out = LOG_OUT.replace("before the window begins", "until it ends")
    if kind == "change" and _in_force(w):
        parts = [*_change(w, zone, previous), _when(w, zone), _features(w), stay_out, VERIFY]
    elif kind in ("announcement", "reminder", "change"):
        lead = {
            "reminder": [f"Reminder: we will carry out {what} on the Valuit platform."],
            "change": _change(w, zone, previous),
        }.get(kind, [f"We will carry out {what} on the Valuit platform."])
        parts = [
            *lead,
            _when(w, zone),
            _features(w),
            w.description.strip(),
            f"Before the window begins:\n  - {BACKUP}\n  - {LOG_OUT}",
            _notes(w),
            VERIFY,
        ]
    elif kind == "start":
        parts = [
            f"{phrase[0].upper()}{phrase[1:]} ({w.update_type} update) has begun on the Valuit "
            "platform.",
            _emergency(w, zone) if w.kind == "emergency" else "",
            _when(w, zone),
            _features(w),
            stay_out,
            VERIFY,
        ]
    elif kind == "completion":
        parts = [
            f"{phrase[0].upper()}{phrase[1:]} ({w.update_type} update) is complete; the platform "
            "is fully available again.",
            update,
            _when(w, zone),
            _notes(w),
            VERIFY,
        ]
    elif kind == "report":
        found = sections(w.report or "")
        parts = [
            f"Here is our report on {what} of {when}.",
            *(f"{name}:\n{found[name]}" for name in REPORT_FOR_USERS if found.get(name)),
            VERIFY,
        ]
    else:
        parts = [
            f"We have cancelled {phrase} planned for {when} ({utc_span(w.start, w.ends)}). "
            "The platform stays available; no action is needed.",
        ]
    body = "Dear Valuit user,\n\n" + "\n\n".join(p for p in parts if p)
    signed = body + f"\n\nValuit support\n({w.label}, revision {w.revision})\n"
    return _subject(w, kind, zone), signed


def _banner(w: Window, kind: str, zone: str) -> str:
    local, utc = span(w.start, w.ends, zone), utc_span(w.start, w.ends)
    down = f"{', '.join(w.features)} unavailable. " if w.features else ""
    if kind in ("start", "change") and _in_force(w):
        if w.kind == "emergency":
            return (
                f"Emergency maintenance in progress: {w.nature or w.title}. {down}"
                f"Expected downtime about {w.expected_minutes} minutes ({local}; {utc}). "
                "Please log out."
            )
        return f"Maintenance in progress ({local}; {utc}): {down}Please log out until it ends."
    if kind in ("announcement", "reminder", "change"):
        changed = "Rescheduled: " if kind == "change" else ""
        return (
            f"{changed}Scheduled maintenance {local} ({utc}): {down}"
            "Back up your data and log out before it begins."
        )
    if kind == "report":
        return f"The report on the maintenance of {local} is published; see your email."
    if kind == "completion":
        return (
            f"Maintenance completed ({local}). Please verify your data and transactions and "
            "report any discrepancy to support."
        )
    return f"The maintenance planned for {local} ({utc}) is cancelled."


def render(
    w: Window,
    kind: str,
    zone: str | None = None,
    *,
    previous: tuple[datetime, datetime] | None = None,
    update: str = "",
) -> list[Notice]:
    """The email and the banner for notice `kind` about `w`, in `zone` (default: the window's).
    `previous`: the start and end users were told before (a change notice names them);
    `update`: the progress update a completion carries (an emergency resolved)."""
    zone = zone or w.zone
    subject, body = _email(w, kind, zone, previous, update)
    return [
        Notice(kind, "email", subject, body),
        Notice(kind, "banner", "", _banner(w, kind, zone)),
    ]


def told_times(db: sqlite_utils.Database, w: Window) -> tuple[datetime, datetime] | None:
    """The start and planned end users were last told of by email, when the window has moved
    since; None when it has not (or nothing was told)."""
    told = db.execute(
        "SELECT max(revision) FROM notice WHERE window_id = ? AND channel = 'email' "
        "AND kind IN ('announcement', 'reminder', 'change', 'start')",
        [w.id],
    ).fetchone()[0]
    if told is None:
        return None
    start, end = w.start, w.end
    # Undo, newest first, each move made after that revision: the times as they were told.
    for (detail,) in db.execute(
        "SELECT detail FROM window_event WHERE window_id = ? AND revision > ? ORDER BY id DESC",
        [w.id, told],
    ):
        diff = json.loads(detail)
        start = clock.parse(diff["start_at"][0]) if "start_at" in diff else start
        end = clock.parse(diff["end_at"][0]) if "end_at" in diff else end
    return None if (start, end) == (w.start, w.end) else (start, end)


def render_for(
    db: sqlite_utils.Database, w: Window, kind: str, zone: str | None = None, update: str = ""
) -> list[Notice]:
    """`render`, with what only the database knows: for a change, the times told before."""
    previous = told_times(db, w) if kind == "change" else None
    return render(w, kind, zone, previous=previous, update=update)


def standing(db: sqlite_utils.Database, window_id: int, kind: str) -> list[dict[str, Any]]:
    """The notices of `kind` already issued for the window and not superseded."""
    return list(
        db.query(
            "SELECT * FROM notice WHERE window_id = ? AND kind = ? AND superseded = 0 "
            "ORDER BY channel",
            [window_id, kind],
        )
    )


def record(
    db: sqlite_utils.Database,
    w: Window,
    kind: str,
    actor: str,
    zone: str | None = None,
    mail: MailOut | None = None,
    update: str = "",
) -> tuple[list[dict[str, Any]], bool]:
    """Enter notice `kind` for `w` in the ledger (inside the caller's transaction); with `mail`,
    queue its email to every subscriber in the same transaction. `update`: see `render`.

    Returns the standing notices and whether they were issued now; a standing notice is
    returned as it is, so nothing goes out twice.
    """
    existing = standing(db, w.id, kind)
    if existing:
        return existing, False
    now = clock.now_iso()
    for notice in render_for(db, w, kind, zone, update):
        db.execute(
            "INSERT INTO notice (window_id, revision, kind, channel, subject, body, rendered_at, "
            "issued_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [w.id, w.revision, kind, notice.channel, notice.subject, notice.body, now, actor],
        )
    issued = standing(db, w.id, kind)
    if mail is not None:
        for row in issued:
            if row["channel"] == "email":
                subscribers.queue_notice(db, row, mail, actor)
    return issued, True


def supersede(db: sqlite_utils.Database, window_id: int, revision: int) -> int:
    """Mark every standing notice of the window stale (its text no longer holds) and cancel
    the mails of them not yet sent, such as a reminder of the old time."""
    outbox.cancel_window_notices(db, window_id, f"superseded by revision {revision}")
    return db.execute(
        "UPDATE notice SET superseded = 1 WHERE window_id = ? AND superseded = 0", [window_id]
    ).rowcount


def ledger(db: sqlite_utils.Database, window_id: int) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT id, revision, kind, channel, subject, rendered_at, issued_by, superseded "
            "FROM notice WHERE window_id = ? ORDER BY id",
            [window_id],
        )
    )


def current_email(db: sqlite_utils.Database, now: datetime) -> dict[str, Any] | None:
    """The newest standing email notice of the window in force, else of the next one."""
    return next(
        db.query(
            "SELECT n.* FROM notice n JOIN window w ON w.id = n.window_id "
            "WHERE n.channel = 'email' AND n.superseded = 0 AND w.cancelled_at IS NULL "
            f"AND (w.ends_at > ? OR {window_model.open_emergency('w')}) "
            "ORDER BY w.start_at <= ? DESC, w.start_at, n.id DESC LIMIT 1",
            [clock.iso(now), clock.iso(now)],
        ),
        None,
    )


def banners(db: sqlite_utils.Database, window_ids: list[int]) -> dict[int, str]:
    """The standing dashboard banner of each window that has one: what its users see now."""
    if not window_ids:
        return {}
    marks = ", ".join("?" * len(window_ids))
    return dict(
        db.execute(
            f"SELECT window_id, body FROM notice WHERE channel = 'banner' AND superseded = 0 "
            f"AND window_id IN ({marks}) ORDER BY id",
            window_ids,
        ).fetchall()
    )
