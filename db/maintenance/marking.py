"""An agent's word on whether a ticket is a discrepancy report, as the desk and `desk
discrepancies` give it.

A mark moves the impact counts of the window it links, so the reports whose verification period
is already over are frozen first (`reports.freeze_ended`): their final counts are those at the
end of the period, as the daemon would have stored them (issue 14). `discrepancy` cannot do this
itself, because `reports` sits above it.
"""

from __future__ import annotations

import sqlite_utils

from db.maintenance import discrepancy, reports

__all__ = ["mark", "release", "unmark"]


def mark(
    db: sqlite_utils.Database, ticket_id: int, actor: str, *, window_id: int | None = None
) -> None:
    """`discrepancy.mark` after freezing the ended reports; raises `NotFoundError` as it does."""
    reports.freeze_ended(db)
    discrepancy.mark(db, ticket_id, actor, window_id=window_id)


def unmark(db: sqlite_utils.Database, ticket_id: int, actor: str) -> None:
    """`discrepancy.unmark` after freezing the ended reports."""
    reports.freeze_ended(db)
    discrepancy.unmark(db, ticket_id, actor)


def release(db: sqlite_utils.Database, ticket_id: int, actor: str) -> None:
    """`discrepancy.release` after freezing the ended reports; raises `DeskError` as it does."""
    reports.freeze_ended(db)
    discrepancy.release(db, ticket_id, actor)
