"""Windows that overlap: two windows in one night are two sets of notices for the same users,
so `add` and `edit` refuse one that would overlap another unless the operator says both are
meant. Recurring occurrences that overlap are `recurrence`'s business."""

from __future__ import annotations

from datetime import datetime

import sqlite_utils

from db.core import clock
from db.core.errors import DeskError
from db.maintenance import notices
from db.maintenance.window_model import OPEN_EMERGENCY, Window


class OverlapError(DeskError):
    """A window would overlap another one that is not cancelled."""

    def __init__(self, message: str) -> None:
        super().__init__(message, title="Overlapping windows")


def overlapping(
    db: sqlite_utils.Database, start: datetime, end: datetime, exclude: int | None = None
) -> list[Window]:
    """The windows, not cancelled, that share some of `start`–`end` (an overrunning emergency
    lasts until now, at least)."""
    rows = db.query(
        "SELECT * FROM window WHERE cancelled_at IS NULL AND id IS NOT ? AND start_at < ? "
        f"AND (ends_at > ? OR ({OPEN_EMERGENCY} AND ? > ?)) ORDER BY start_at, id",
        [exclude, clock.iso(end), clock.iso(start), clock.now_iso(), clock.iso(start)],
    )
    return [Window.from_row(row) for row in rows]


def check_overlap(
    db: sqlite_utils.Database,
    start: datetime,
    end: datetime,
    zone: str,
    *,
    exclude: int | None = None,
    allowed: bool = False,
) -> list[str]:
    """Refuse (OverlapError, naming the other windows) a window from `start` to `end` that
    overlaps another, unless `allowed`; the labels of those it overlaps."""
    others = overlapping(db, start, end, exclude)
    if others and not allowed:
        named = "; ".join(
            f"{o.label} “{o.title}” ({notices.span(o.start, o.ends, zone)})" for o in others
        )
        raise OverlapError(
            f"The window would overlap {named}; move it, or pass --allow-overlap if both are "
            "meant (subscribers get the notices of each)."
        )
    return [o.label for o in others]
