"""Service-level targets: business calendars, due times, and the SLA state kept on each ticket.

A ticket has two clocks, both counted in its function's business time (weekdays and hours in
the function's zone, less public holidays from the `holidays` library and extra closed dates):

- first response: from creation until the first agent reply, or until the ticket is resolved
  or closed without one (`first_response_due`); reopened still without a reply, it goes on
  where it stood, its due time later by the business time it spent settled;
- resolution: from creation until resolved or closed (`resolution_due`); while the ticket is
  pending (waiting on the customer) this clock pauses when `pause_when_pending` is on, and the
  due time moves later by the business time spent waiting; a settled ticket that is reopened
  goes on where its clock stood.

Targets come from `[sla]` in config.toml (`db.core.config` checks them) per priority, with
per-function overrides. Every process computes due times with the policy last saved in the
database (`sync()`), as the daemon stores mail where no configuration is at hand.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import sqlite_utils

from db.core import clock

DONE = ("resolved", "closed")  # the statuses that stop both clocks
_DONE_SQL = "(" + ", ".join(f"'{s}'" for s in DONE) + ")"
MAX_DAYS = 3660  # a due time further than ten years of calendar days is a calendar with no hours
# Business minutes by priority (the priority names are `migrations.PRIORITIES`).
FIRST_RESPONSE = {"urgent": 60, "high": 120, "normal": 480, "low": 1440}
RESOLUTION = {"urgent": 540, "high": 1080, "normal": 2700, "low": 5400}


@dataclass(frozen=True)
class Calendar:
    """Business time of one function: `weekdays` (0 = Monday) from `opens` to `closes`
    (minutes after local midnight, 1440 = 24:00) in `zone`, less the public holidays of
    `country`/`subdivision` (ISO 3166 codes, "" for none) and the `closed` dates."""

    zone: str = "UTC"
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    opens: int = 9 * 60
    closes: int = 18 * 60
    country: str = ""
    subdivision: str = ""
    closed: tuple[str, ...] = ()  # ISO dates

    def add(self, start: datetime, minutes: float) -> datetime:
        """The moment `minutes` business minutes after `start` (aware); ValueError if the
        calendar has no open hour within MAX_DAYS."""
        remaining = timedelta(minutes=minutes)
        day = start.astimezone(ZoneInfo(self.zone)).date()
        for _ in range(MAX_DAYS):
            span = _span(self, day)
            if span is not None:
                begin, end = max(span[0], start), span[1]
                if begin < end:
                    if begin + remaining <= end:
                        return begin + remaining
                    remaining -= end - begin
            day += timedelta(days=1)
        raise ValueError(f"no business hours within {MAX_DAYS} days after {start.isoformat()}")

    def minutes_between(self, start: datetime, end: datetime) -> float:
        """Business minutes from `start` to `end` (0 when `end` is not after `start`)."""
        total = timedelta()
        day = start.astimezone(ZoneInfo(self.zone)).date()
        last = end.astimezone(ZoneInfo(self.zone)).date()
        while day <= last:
            span = _span(self, day)
            if span is not None:
                begin, finish = max(span[0], start), min(span[1], end)
                if begin < finish:
                    total += finish - begin
            day += timedelta(days=1)
        return total.total_seconds() / 60


@lru_cache(maxsize=64)
def public_holidays(country: str, subdivision: str) -> holidays.HolidayBase:
    """The holiday calendar of `country` (ISO 3166-1 alpha-2) and `subdivision` (its ISO
    3166-2 part, "" for the whole country), filled year by year as dates are asked of it;
    NotImplementedError, naming the code, when the library has no such place."""
    return holidays.country_holidays(country, subdiv=subdivision or None)


@lru_cache(maxsize=8192)
def _span(calendar: Calendar, day: date) -> tuple[datetime, datetime] | None:
    """The open hours of `day` as UTC instants, None when closed. Wall times are turned into
    instants one by one, so a day with a DST change is as long as the clocks say."""
    if day.weekday() not in calendar.weekdays or day.isoformat() in calendar.closed:
        return None
    if calendar.country and day in public_holidays(calendar.country, calendar.subdivision):
        return None
    zone, midnight = ZoneInfo(calendar.zone), datetime.combine(day, time())
    begin, end = (
        (midnight + timedelta(minutes=m)).replace(tzinfo=zone).astimezone(UTC)
        for m in (calendar.opens, calendar.closes)
    )
    return (begin, end) if begin < end else None


@dataclass(frozen=True)
class Override:
    """One function's departures from the base policy: a calendar, and targets by priority."""

    calendar: Calendar | None = None
    first_response: dict[str, int] = field(default_factory=dict)
    resolution: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Policy:
    """The `[sla]` section: a base calendar and targets (business minutes by priority), the
    overrides per function, and whether pending pauses the resolution clock."""

    calendar: Calendar = field(default_factory=Calendar)
    first_response: dict[str, int] = field(default_factory=lambda: dict(FIRST_RESPONSE))
    resolution: dict[str, int] = field(default_factory=lambda: dict(RESOLUTION))
    functions: dict[str, Override] = field(default_factory=dict)
    pause_when_pending: bool = True

    def calendar_of(self, function: str) -> Calendar:
        own = self.functions.get(function)
        return own.calendar if own and own.calendar else self.calendar

    def target(self, clock_name: str, function: str, priority: str) -> int:
        """Business minutes of `clock_name` ("first_response" or "resolution")."""
        own = self.functions.get(function)
        minutes = getattr(own, clock_name, {}).get(priority) if own else None
        return minutes or getattr(self, clock_name)[priority]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Policy:
        data = json.loads(text)

        def calendar(raw: dict[str, Any] | None) -> Calendar | None:
            if raw is None:
                return None
            return Calendar(**{**raw, "weekdays": tuple(raw["weekdays"]),
                               "closed": tuple(raw["closed"])})  # fmt: skip

        return cls(
            calendar=calendar(data["calendar"]) or Calendar(),
            first_response=data["first_response"],
            resolution=data["resolution"],
            functions={
                fn: Override(calendar(o["calendar"]), o["first_response"], o["resolution"])
                for fn, o in data["functions"].items()
            },
            pause_when_pending=data["pause_when_pending"],
        )


@lru_cache(maxsize=4)
def _parsed(text: str) -> Policy:
    return Policy.from_json(text)


def load(db: sqlite_utils.Database) -> Policy:
    """The policy last saved by `sync()`, or the defaults before any."""
    row = db.execute("SELECT data FROM sla_setting WHERE id = 1").fetchone()
    return _parsed(row[0]) if row else Policy()


def sync(db: sqlite_utils.Database, policy: Policy) -> int:
    """Save `policy` (inside the caller's transaction) and, when it differs from the saved one,
    recompute the due times of the tickets whose clocks still run; the number recomputed. The
    daemon does this when it starts and hourly (the desk only reads). Settled tickets keep the
    targets they were held to, except at the first sync, which replaces the migration's
    defaults."""
    text = policy.to_json()
    row = db.execute("SELECT data FROM sla_setting WHERE id = 1").fetchone()
    if row and row[0] == text:
        return 0
    db.execute(
        "INSERT INTO sla_setting (id, data, updated_at) VALUES (1, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
        [text, clock.now_iso()],
    )
    running = f"WHERE status NOT IN {_DONE_SQL}" if row else ""
    ids = [i for (i,) in db.execute(f"SELECT id FROM ticket {running}")]
    for ticket_id in ids:
        refresh(db, ticket_id, policy)
    return len(ids)


def refresh(db: sqlite_utils.Database, ticket_id: int, policy: Policy | None = None) -> None:
    """Compute the ticket's due times from its creation, function, priority and the business
    time it spent paused (inside the caller's transaction)."""
    created, function, priority, paused, first_paused = db.execute(
        "SELECT created_at, function, priority, sla_paused_minutes, sla_first_paused_minutes "
        "FROM ticket WHERE id = ?",
        [ticket_id],
    ).fetchone()
    due = due_times(policy or load(db), function, priority, created, paused, first_paused)
    _store_due(db, ticket_id, due)


def _store_due(db: sqlite_utils.Database, ticket_id: int, due: tuple[str, str]) -> None:
    db.execute(
        "UPDATE ticket SET first_response_due = ?, resolution_due = ? WHERE id = ?",
        [*due, ticket_id],
    )


def due_times(
    policy: Policy,
    function: str,
    priority: str,
    created: str,
    paused: float = 0,
    first_paused: float = 0,
) -> tuple[str, str]:
    """(first response due, resolution due) as stored times, for a ticket created at `created`
    (a stored time) whose resolution clock stood `paused` business minutes (pending or settled)
    and its first response clock `first_paused` (settled before any reply)."""
    calendar, start = policy.calendar_of(function), clock.parse(created)
    first = calendar.add(start, policy.target("first_response", function, priority) + first_paused)
    resolution = calendar.add(start, policy.target("resolution", function, priority) + paused)
    return clock.iso(first), clock.iso(resolution)


def status_changed(db: sqlite_utils.Database, ticket_id: int, old: str, new: str, at: str) -> None:
    """Stop, pause or restart the clocks for a status change at `at` (inside the caller's
    transaction). Resolved or closed stops both clocks (`resolved_at`) and pauses resolution;
    pending pauses it too (with `pause_when_pending`). Leaving the pause (reopened, or the
    customer answered) adds the business time it lasted to the resolution due time, so a
    reopened ticket goes on where its clock stood; reopened before any reply, the time it was
    settled is added to the first response's due time too."""
    if old == new:
        return
    policy = load(db)
    function, paused_at, resolved_at, replied_at = db.execute(
        "SELECT function, sla_paused_at, resolved_at, first_response_at FROM ticket WHERE id = ?",
        [ticket_id],
    ).fetchone()
    calendar = policy.calendar_of(function)
    pause = new in DONE or (new == "pending" and policy.pause_when_pending)
    waited = first_waited = 0.0
    if paused_at is not None and not pause:
        waited = calendar.minutes_between(clock.parse(paused_at), clock.parse(at))
    if resolved_at is not None and new not in DONE and replied_at is None:
        first_waited = calendar.minutes_between(clock.parse(resolved_at), clock.parse(at))
    db.execute(
        "UPDATE ticket SET sla_paused_minutes = sla_paused_minutes + ?, "
        "sla_first_paused_minutes = sla_first_paused_minutes + ?, "
        "sla_paused_at = CASE WHEN ? THEN coalesce(sla_paused_at, ?) END, "
        "resolved_at = CASE WHEN ? THEN coalesce(resolved_at, ?) END WHERE id = ?",
        [round(waited), round(first_waited), pause, at, new in DONE, at, ticket_id],
    )
    if waited or first_waited:
        refresh(db, ticket_id, policy)


def overdue(row: dict[str, Any], now_iso: str) -> bool:
    """A ticket row (`SELECT * FROM ticket`) whose running clock is past its due time now."""
    if row["status"] in DONE:
        return False
    first = row["first_response_due"]
    if not row["first_response_at"] and first and first < now_iso:
        return True
    due = row.get("resolution_due")
    return bool(due) and row.get("sla_paused_at") is None and due < now_iso


def first_response_breached(now_iso: str) -> tuple[str, list[object]]:
    """A condition on `ticket t` and its parameter: the first response came late, or has not
    come and its due time is past `now_iso`."""
    return (
        "(coalesce(t.first_response_at, t.resolved_at) > t.first_response_due OR "
        "(t.first_response_at IS NULL AND t.resolved_at IS NULL AND t.first_response_due < ?))",
        [now_iso],
    )


def resolution_breached(now_iso: str) -> tuple[str, list[object]]:
    """A condition on `ticket t` and its parameter: resolved late, or unresolved, not paused,
    and past its due time at `now_iso`."""
    return (
        "(t.resolved_at > t.resolution_due OR "
        "(t.resolved_at IS NULL AND t.sla_paused_at IS NULL AND t.resolution_due < ?))",
        [now_iso],
    )


def breached(now_iso: str) -> tuple[str, list[object]]:
    """Either target missed (`is:breached`)."""
    (first, p1), (second, p2) = first_response_breached(now_iso), resolution_breached(now_iso)
    return f"({first} OR {second})", [*p1, *p2]


def backfill(db: sqlite_utils.Database) -> None:
    """Give existing tickets their SLA state under the default policy (schema migration):
    when a settled ticket was settled, from its audit trail; the due times of every ticket."""
    db.execute(
        f"UPDATE ticket SET resolved_at = coalesce((SELECT max(e.at) FROM ticket_event e "
        "WHERE e.ticket_id = ticket.id AND e.action = 'status' "
        f"AND json_extract(e.detail, '$.to') IN {_DONE_SQL}), updated_at) "
        f"WHERE status IN {_DONE_SQL}"
    )
    db.execute(
        "UPDATE ticket SET sla_paused_at = coalesce((SELECT max(e.at) FROM ticket_event e "
        "WHERE e.ticket_id = ticket.id AND e.action = 'status' "
        "AND json_extract(e.detail, '$.to') = 'pending'), updated_at) WHERE status = 'pending'"
    )
    db.execute("UPDATE ticket SET sla_paused_at = resolved_at WHERE resolved_at IS NOT NULL")
    # Nothing has paused yet; read only the columns this step's schema has (`refresh` reads
    # later ones).
    policy = Policy()
    rows = db.execute("SELECT id, function, priority, created_at FROM ticket").fetchall()
    for ticket_id, function, priority, created in rows:
        _store_due(db, ticket_id, due_times(policy, function, priority, created))
