"""Maintenance windows as the desk shows them: the banner's state, hours marked on the volume
chart, window titles, and the windows a ticket can be linked to.

Windows are read only through issue 4's `db.maintenance.windows`, `db.maintenance.impact` and
`db.maintenance.discrepancy` API.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from db.maintenance import impact, notices
from db.maintenance import windows as windows_db

FOLLOWUPS_SHOWN = 20  # follow-up tickets listed per window; the count covers them all
LINKABLE_DAYS = 30  # windows offered for linking: those that ended in the last month or later


def overview(
    db: sqlite_utils.Database, now: datetime, hours: int, ahead: timedelta
) -> dict[str, Any]:
    """{"active" (in force: "status" says "active" or "overrunning"), "upcoming" (starting
    within `ahead`: the notice rule's span), "overdue_reports", "rule_gone" (windows not over
    whose recurring rule no longer makes them, however far ahead)} for the banner, each with
    the dashboard banner its users see; "hours" (True where a window was in force, oldest hour
    first) for the chart; "titles" by id; "impact": the windows active or in their
    verification period, oldest first, each {"id", "title", "counts" (`impact.counts`),
    "followups": [{"ticket", "subject"}, ...]}."""
    every = windows_db.listing(db)
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    live = [w for w in every if w.status(now) != "cancelled"]
    active = [w for w in live if w.status(now) in windows_db.IN_FORCE]
    upcoming = [
        w for w in live if w.status(now) in ("planned", "announced") and w.start - now <= ahead
    ]
    users_see = notices.banners(db, [w.id for w in active + upcoming])

    def shown(w: windows_db.Window) -> dict[str, Any]:
        return {
            "id": w.id,
            "title": w.title,
            "status": w.status(now),
            "start_at": w.start.isoformat(),
            "end_at": w.ends.isoformat(),
            "features": list(w.features),
            "banner": users_see.get(w.id),
            "rule_gone": w.rule_gone,
        }

    return {
        "active": [shown(w) for w in active],
        "upcoming": [shown(w) for w in upcoming],
        "overdue_reports": [shown(w) for w in every if w.report_due(now)],
        "rule_gone": [shown(w) for w in live if w.rule_gone and w.status(now) != "completed"],
        "hours": [
            any(
                w.start < start + timedelta(hours=h + 1) and w.ends > start + timedelta(hours=h)
                for w in live
            )
            for h in range(hours)
        ],
        "titles": {w.id: w.title for w in every},
        "impact": [
            {
                "id": w.id,
                "title": w.title,
                "counts": counted,
                "followups": impact.tickets(db, w.id, (impact.FOLLOWUPS,))[impact.FOLLOWUPS][
                    :FOLLOWUPS_SHOWN
                ],
            }
            for w, counted in impact.recent(db, now)
        ],
    }


def with_followups(db: sqlite_utils.Database, ticket: dict[str, Any]) -> dict[str, Any]:
    """`ticket` with "followup_windows": the windows a follow-up in it arrived during, when it
    was opened before them (`impact.followed_up`), for its facts line."""
    return {**ticket, "followup_windows": impact.followed_up(db, ticket["id"])}


def linkable(db: sqlite_utils.Database, now: datetime) -> list[tuple[str, str]]:
    """(window id, label) of the windows a ticket may be about, newest first."""
    recent = windows_db.listing(db, ending_after=now - timedelta(days=LINKABLE_DAYS))
    return [
        (str(w.id), f"{w.label}  {w.title}  ({w.status(now)}, {w.start:%Y-%m-%d %H:%M} UTC)")
        for w in reversed(recent)
        if w.status(now) != "cancelled"
    ]
