"""What the status site (`publish/`) reads that the window model does not give: a cheap digest
of everything the site shows, the notice history of windows, and when each window last changed.

The digest lets a poller re-render only when something changed: it moves with any window, notice
or audit-trail row, and with the clock crossing a window's start or end or the history's edge.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import sqlite_utils

from db.core import clock


def digest(db: sqlite_utils.Database, now: datetime, since: datetime) -> str:
    """A short hex string that changes whenever the site rendered at `now`, with history from
    `since`, would change. One read of aggregates: cheap enough to run every few seconds."""
    row = db.execute(
        "SELECT (SELECT count(*) || ':' || coalesce(sum(revision), 0) || ':' || "
        "coalesce(max(id), 0) FROM window), "
        "(SELECT count(*) || ':' || coalesce(sum(superseded), 0) || ':' || coalesce(max(id), 0) "
        "FROM notice), "
        "(SELECT count(*) || ':' || coalesce(max(id), 0) FROM window_event), "
        "(SELECT count(*) || ':' || coalesce(max(id), 0) FROM window_update), "
        # the windows' reports to support: tickets linked to them (a mark moves window_id
        # without a new row, hence the sums), and any new message (a follow-up in an older
        # thread); at most one render per poll while mail flows
        "(SELECT count(*) || ':' || coalesce(sum(window_id), 0) || ':' || "
        "coalesce(sum(during_window_id), 0) FROM ticket "
        "WHERE window_id IS NOT NULL OR during_window_id IS NOT NULL), "
        "(SELECT coalesce(max(id), 0) FROM message), "
        "(SELECT count(*) FROM window WHERE start_at <= :now), "
        "(SELECT count(*) FROM window WHERE ends_at <= :now), "
        "(SELECT count(*) FROM window WHERE ends_at > :since)",
        {"now": clock.iso(now), "since": clock.iso(since)},
    ).fetchone()
    return hashlib.sha256(repr(tuple(row)).encode()).hexdigest()[:32]


def notice_history(
    db: sqlite_utils.Database, window_ids: list[int], channel: str
) -> list[dict[str, Any]]:
    """Every notice of `channel` ('email' or 'banner') issued for the windows, superseded ones
    too (they are what users were told at the time), oldest first."""
    if not window_ids:
        return []
    marks = ", ".join("?" * len(window_ids))
    return list(
        db.query(
            "SELECT id, window_id, revision, kind, subject, body, rendered_at, superseded "
            f"FROM notice WHERE channel = ? AND window_id IN ({marks}) ORDER BY id",
            [channel, *window_ids],
        )
    )


def last_changes(db: sqlite_utils.Database, window_ids: list[int]) -> dict[int, dict[str, str]]:
    """Per window, the time of its latest audit-trail entry and of its latest release-notes
    entry ({window_id: {"any": at, "release-notes": at}}); a window without one is absent."""
    if not window_ids:
        return {}
    marks = ", ".join("?" * len(window_ids))
    found: dict[int, dict[str, str]] = {}
    for window_id, action, at in db.execute(
        "SELECT window_id, action, max(at) FROM window_event "
        f"WHERE window_id IN ({marks}) GROUP BY window_id, action",
        window_ids,
    ):
        times = found.setdefault(window_id, {})
        times["any"] = max(times.get("any", at), at)
        if action == "release-notes":
            times["release-notes"] = at
    return found
