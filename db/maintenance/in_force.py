"""What is in force at a moment: active windows (an emergency past its expected end among them,
overrunning), the next ones, overdue reports, open discrepancy reports, and the impact of the
windows still counting it. `desk now` prints it; the desk's header can show the same."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlite_utils

from db.core import clock
from db.maintenance import discrepancy, impact, reports, windows

CLEAR, ACTIVE, UPCOMING, OVERRUNNING = "clear", "active", "upcoming", "overrunning"


def summary(
    db: sqlite_utils.Database, *, within_hours: float = 48.0, zone: str | None = None
) -> dict[str, Any]:
    """The state (`overrunning` beats `active` beats `upcoming` beats `clear`) and what makes
    it so: "active" lists every window in force, each with its "status" ("active" or
    "overrunning")."""
    now = clock.now()
    soon = now + timedelta(hours=within_hours)
    current = windows.listing(db, ending_after=now)
    active = [w for w in current if w.status(now) in windows.IN_FORCE]
    upcoming = [w for w in current if w.status(now) in ("planned", "announced") and w.start <= soon]
    overrunning = any(w.status(now) == "overrunning" for w in active)
    state = OVERRUNNING if overrunning else ACTIVE if active else UPCOMING if upcoming else CLEAR
    return {
        "now": clock.iso(now),
        "state": state,
        "within_hours": within_hours,
        "active": [w.as_dict(now, zone) for w in active],
        "upcoming": [w.as_dict(now, zone) for w in upcoming],
        "overdue_reports": [w.as_dict(now, zone) for w in reports.overdue(db, now)],
        "open_discrepancies": discrepancy.listing(db, open_only=True),
        # Active windows and those in their verification period: their impact still moves.
        "impact": [counted for _, counted in impact.recent(db, now)],
    }
