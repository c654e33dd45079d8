"""Maintenance windows as the desk shows them: the banner's state, hours marked on the volume
chart, window titles, and linking a ticket to a window.

The window store (issue 4) is read through its own `db` API only. Where that API is not in this
build, the desk shows no windows and the window key says so in one sentence.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlite_utils


def overview(db: sqlite_utils.Database, now: datetime, hours: int) -> dict[str, Any] | None:
    """{"active", "upcoming", "overdue_reports", "hours", "titles"} or None without windows."""
    return None


def choose_and_link(screen: Any, ticket: dict[str, Any]) -> None:
    screen.notify("Maintenance windows are not available in this build yet.", severity="warning")
