"""What the status site shows, gathered from the database at one moment: the windows users were
told of (in force, coming, the last 90 days), what each makes unavailable, the updates and
banners users saw, release notes and the users' part of post-maintenance reports.

Statuses use Statuspage's scheduled-maintenance words (scheduled, in_progress, verifying,
completed) plus `cancelled`, which Statuspage has no word for; `desk_status` keeps the desk's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from db.core import clock
from db.maintenance import impact, notices, publication, updates, window_model
from db.maintenance.window_model import Window

HISTORY_DAYS = 90
# A window's status, in Statuspage's words for a scheduled maintenance.
STATUS = {
    "planned": "scheduled",
    "announced": "scheduled",
    "active": "in_progress",
    "overrunning": "in_progress",  # issue 13 item 2: past its expected end, still going
    "completed": "completed",
    "cancelled": "cancelled",
}
IN_FORCE = ("active", "overrunning")
# What each notice told users, as a Statuspage update status.
NOTICE_STATUS = {
    "announcement": "scheduled",
    "reminder": "scheduled",
    "change": "scheduled",
    "start": "in_progress",
    "completion": "completed",
    "cancellation": "cancelled",
    "report": "postmortem",
}
KIND_NAMES = {
    "monthly": "Monthly maintenance",
    "quarterly": "Quarterly deep maintenance",
    "adhoc": "Scheduled maintenance",
    "emergency": "Emergency maintenance",
}


@dataclass(frozen=True)
class Update:
    """One thing users were told about a window, at `at`."""

    id: str  # stable: "notice-12" or "update-3"
    status: str  # Statuspage's update status
    body: str
    at: datetime


@dataclass(frozen=True)
class Shown:
    """A window as its users see it."""

    window: Window
    desk_status: str
    banner: str | None
    updates: tuple[Update, ...]  # newest first
    notes_at: datetime  # when its release notes were last set
    updated_at: datetime
    report: dict[str, str] = field(default_factory=dict)  # the users' sections, by heading
    # Tickets received during it and discrepancy reports after it, as `impact.counts` gives
    # them; None for a window not yet begun.
    support: dict[str, Any] | None = None

    @property
    def status(self) -> str:
        return STATUS[self.desk_status]

    @property
    def in_force(self) -> bool:
        return self.desk_status in IN_FORCE

    @property
    def kind_name(self) -> str:
        return KIND_NAMES.get(self.window.kind, "Maintenance")

    @property
    def impact(self) -> str:
        """Statuspage's impact: `maintenance`, or `major` for an emergency."""
        return "major" if self.window.kind == "emergency" else "maintenance"


@dataclass(frozen=True)
class Site:
    """Everything the site's files are rendered from."""

    now: datetime
    in_force: tuple[Shown, ...]
    coming: tuple[Shown, ...]  # by start
    history: tuple[Shown, ...]  # the last HISTORY_DAYS days, newest first
    emails: tuple[dict[str, Any], ...]  # every email notice of those windows, oldest first

    @property
    def windows(self) -> tuple[Shown, ...]:
        return (*self.in_force, *self.coming, *self.history)

    @property
    def unavailable(self) -> list[str]:
        """The features unavailable now, each once."""
        return list(dict.fromkeys(f for s in self.in_force for f in s.window.features))

    @property
    def banner(self) -> str | None:
        """The dashboard banner now: those of the windows in force, else of the coming ones
        users were told of, one a line (the notice ledger's text, word for word)."""
        shown = [s.banner for s in self.in_force if s.banner] or [
            s.banner for s in self.coming if s.banner and s.desk_status != "cancelled"
        ]
        return "\n".join(shown) or None

    @property
    def updated_at(self) -> datetime | None:
        return max((s.updated_at for s in self.windows), default=None)


def window_updates(db: sqlite_utils.Database, w: Window) -> list[Update]:
    """The free-text progress updates posted on `w` (investigating, identified, monitoring,
    resolved), oldest first; their ids never change."""
    return [
        Update(f"update-{u['id']}", u["status"], u["body"], clock.parse(u["created_at"]))
        for u in updates.listing(db, w.id)
    ]


def public(w: Window, now: datetime) -> bool:
    """Whether users were told of `w`, or lived through it: only such windows are shown."""
    status = w.status(now)
    return w.announced_at is not None or status in (*IN_FORCE, "completed")


_BLANK = re.compile(r"\n\s*\n")


def paragraphs(text: str) -> list[str]:
    """Plain text split at blank lines, for <p> elements; line breaks inside are kept by CSS."""
    return [p.strip("\n") for p in _BLANK.split(text.strip()) if p.strip()]


def gather(db: sqlite_utils.Database, now: datetime | None = None) -> Site:
    """The site's content at `now` (default: the desk's clock)."""
    now = now or clock.now()
    found = [
        w
        for w in window_model.listing(db, ending_after=now - timedelta(days=HISTORY_DAYS))
        if public(w, now)
    ]
    ids = [w.id for w in found]
    banners = notices.banners(db, ids)
    told: dict[int, list[Update]] = {}
    for n in publication.notice_history(db, ids, "banner"):
        at = clock.parse(n["rendered_at"])
        told.setdefault(n["window_id"], []).append(
            Update(f"notice-{n['id']}", NOTICE_STATUS[n["kind"]], n["body"], at)
        )
    changes = publication.last_changes(db, ids)
    counted = impact.counts_many(db, [w for w in found if w.start <= now], now)
    shown = []
    for w in found:
        said = sorted([*told.get(w.id, []), *window_updates(db, w)], key=lambda u: u.at)
        times = changes.get(w.id, {})
        stamps = [w.created_at, *(u.at for u in said)]
        stamps += [clock.parse(times["any"])] if "any" in times else []
        notes = times.get("release-notes")
        found_report = notices.sections(w.report or "")
        shown.append(
            Shown(
                window=w,
                desk_status=w.status(now),
                banner=banners.get(w.id),
                updates=tuple(reversed(said)),
                notes_at=clock.parse(notes) if notes else w.created_at,
                updated_at=max(stamps),
                report={
                    name: found_report[name]
                    for name in notices.REPORT_FOR_USERS
                    if found_report.get(name)
                },
                support=counted.get(w.id),
            )
        )
    coming = [s for s in shown if not s.in_force and s.window.start > now]
    past = [s for s in shown if not s.in_force and s.window.start <= now]
    return Site(
        now=now,
        in_force=tuple(s for s in shown if s.in_force),
        coming=tuple(coming),
        history=tuple(sorted(past, key=lambda s: s.window.start, reverse=True)),
        emails=tuple(publication.notice_history(db, ids, "email")),
    )
