"""What a maintenance window is: the stored row as a `Window`, its status by the clock, finding
and listing windows. `windows` changes them and re-exports all of this.

Status follows from the clock (planned → announced → active → completed) except what is said
explicitly: cancelled, completed early. An emergency never completes by the clock: past its
expected end it is *overrunning* until someone completes it (`desk window complete`, or a
"resolved" progress update), since only the people fixing it know it is fixed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from db.core import clock
from db.core.errors import DeskError, NotFoundError

_REF = re.compile(r"[Ww]?(\d{1,9})")
# The statuses of a window in force: users are affected now.
IN_FORCE = ("active", "overrunning")


def open_emergency(table: str = "") -> str:
    """SQL: the window row (of `table`, an alias, when the query joins others) is an emergency
    not yet completed nor cancelled: in force whatever its planned end says, for the queries
    that would otherwise take `ends_at` (its expected end) as its real end."""
    at = f"{table}." if table else ""
    return f"({at}kind = 'emergency' AND {at}completed_at IS NULL AND {at}cancelled_at IS NULL)"


OPEN_EMERGENCY = open_emergency()


def _time(text: str | None) -> datetime | None:
    return clock.parse(text) if text else None


@dataclass(frozen=True)
class Window:
    """One window as stored; times are aware UTC datetimes."""

    id: int
    title: str
    kind: str
    update_type: str
    description: str
    start: datetime
    end: datetime  # as planned; `ends` is when it really ends
    zone: str
    features: tuple[str, ...]
    release_notes: str
    nature: str
    expected_minutes: int | None
    announced_at: datetime | None
    forced_reason: str | None
    cancelled_at: datetime | None
    completed_at: datetime | None
    rule: str | None
    flags: tuple[str, ...]
    rule_gone: str | None  # why its rule no longer makes it, until cancelled or kept
    detached_at: datetime | None  # kept by an operator: no longer follows its rule
    report: str | None
    report_written_at: datetime | None
    revision: int
    created_at: datetime
    created_by: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Window:
        return cls(
            id=row["id"],
            title=row["title"],
            kind=row["kind"],
            update_type=row["update_type"],
            description=row["description"],
            start=clock.parse(row["start_at"]),
            end=clock.parse(row["end_at"]),
            zone=row["zone"],
            features=tuple(json.loads(row["features"])),
            release_notes=row["release_notes"],
            nature=row["nature"],
            expected_minutes=row["expected_minutes"],
            announced_at=_time(row["announced_at"]),
            forced_reason=row["forced_reason"],
            cancelled_at=_time(row["cancelled_at"]),
            completed_at=_time(row["completed_at"]),
            rule=row["rule"],
            flags=tuple(json.loads(row["flags"])),
            rule_gone=row["rule_gone"],
            detached_at=_time(row["detached_at"]),
            report=row["report"],
            report_written_at=_time(row["report_written_at"]),
            revision=row["revision"],
            created_at=clock.parse(row["created_at"]),
            created_by=row["created_by"],
        )

    @property
    def label(self) -> str:
        return f"W{self.id}"

    @property
    def ends(self) -> datetime:
        return self.completed_at or self.end

    def status(self, now: datetime) -> str:
        if self.cancelled_at:
            return "cancelled"
        if self.completed_at:
            return "completed"
        if now >= self.end:
            return "overrunning" if self.kind == "emergency" else "completed"
        if now >= self.start:
            return "active"
        return "announced" if self.announced_at else "planned"

    def report_due(self, now: datetime) -> bool:
        """An emergency's post-maintenance report is due from the moment it ends until written."""
        return (
            self.kind == "emergency"
            and self.status(now) == "completed"
            and self.report_written_at is None
        )

    def as_dict(self, now: datetime, zone: str | None = None) -> dict[str, Any]:
        """Plain data for `--json`: times in UTC and in `zone` (default: the window's)."""
        tz = ZoneInfo(zone or self.zone)
        stamp = lambda t: clock.iso(t) if t else None  # noqa: E731
        return {
            "id": self.label,
            "number": self.id,
            "title": self.title,
            "kind": self.kind,
            "update_type": self.update_type,
            "status": self.status(now),
            "start_at": stamp(self.start),
            "end_at": stamp(self.ends),
            "planned_end_at": stamp(self.end),
            "zone": self.zone,
            "start_local": self.start.astimezone(tz).isoformat(timespec="minutes"),
            "end_local": self.ends.astimezone(tz).isoformat(timespec="minutes"),
            "features": list(self.features),
            "description": self.description,
            "release_notes": self.release_notes,
            "nature": self.nature,
            "expected_minutes": self.expected_minutes,
            "announced_at": stamp(self.announced_at),
            "forced_reason": self.forced_reason,
            "cancelled_at": stamp(self.cancelled_at),
            "completed_at": stamp(self.completed_at),
            "rule": self.rule,
            "flags": list(self.flags),
            "rule_gone": self.rule_gone,
            "detached_at": stamp(self.detached_at),
            "report_due": self.report_due(now),
            "report_written_at": stamp(self.report_written_at),
            "revision": self.revision,
            "created_at": stamp(self.created_at),
            "created_by": self.created_by,
        }


def ref(text: str) -> int:
    """The number in 'W12', 'w12' or '12'."""
    match = _REF.fullmatch(text.strip())
    if match is None:
        raise DeskError(f"{text!r} is not a window; write it as W12 or 12.")
    return int(match.group(1))


def get(db: sqlite_utils.Database, window_id: int) -> Window:
    for row in db.query("SELECT * FROM window WHERE id = ?", [window_id]):
        return Window.from_row(row)
    raise NotFoundError(f"There is no window W{window_id}; `desk window list --all` shows them.")


def listing(db: sqlite_utils.Database, *, ending_after: datetime | None = None) -> list[Window]:
    """Windows by start time; with `ending_after`, only those ending later than it (an open
    emergency has not ended, whatever its expected end)."""
    if ending_after is None:
        rows = db.query("SELECT * FROM window ORDER BY start_at, id")
    else:
        rows = db.query(
            f"SELECT * FROM window WHERE ends_at > ? OR {OPEN_EMERGENCY} ORDER BY start_at, id",
            [clock.iso(ending_after)],
        )
    return [Window.from_row(row) for row in rows]


def events(db: sqlite_utils.Database, window_id: int) -> list[dict[str, Any]]:
    rows = db.query(
        "SELECT at, actor, revision, action, detail FROM window_event WHERE window_id = ? "
        "ORDER BY id",
        [window_id],
    )
    return [{**row, "detail": json.loads(row["detail"])} for row in rows]


def expected_notice(w: Window, now: datetime) -> str:
    """The notice a window's state calls for next."""
    return {
        "planned": "announcement",
        "announced": "reminder",
        "active": "start",
        "overrunning": "start",
        "completed": "completion",
        "cancelled": "cancellation",
    }[w.status(now)]
