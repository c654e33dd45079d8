"""Recurring windows: the config's RRULEs turned into occurrences, DST-correct, stored as rows.

A rule's start is a wall-clock time in its zone, so 02:00 stays 02:00 local across a DST
change and the UTC time moves instead. A start in the hour a spring change skips does not
exist: it moves forward by the gap (02:30 becomes 03:30) and is flagged. In the autumn hour
that happens twice, the first one is taken and flagged. As RFC 5545 says, a month without the
day a rule names (BYMONTHDAY=31) has no occurrence; the next occurrence is flagged with the
months skipped, so `desk window preview` shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlite_utils
from dateutil import rrule

from db.core import clock
from db.core.config import Maintenance, Recurring
from db.core.connect import write
from db.core.errors import DeskError
from db.maintenance import rule_settings, windows

ACTOR = "config"
MOVED = "moved-from-skipped-hour"
REPEATED = "repeated-hour"
SKIPPED = "skipped-months"


@dataclass(frozen=True)
class Occurrence:
    rule: str
    key: str  # the nominal local start, e.g. "2026-03-08T02:00": the row's identity
    start: datetime  # UTC
    end: datetime
    zone: str
    flags: tuple[str, ...]


def _localise(naive: datetime, zone: ZoneInfo) -> tuple[datetime, tuple[str, ...]]:
    """The instant a local wall-clock time names, and flags when DST makes that unclear."""
    first = naive.replace(tzinfo=zone)  # fold=0: the earlier reading, PEP 495
    instant = first.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != naive:
        # Skipped: fold=0 reads it with the offset before the change, which lands the gap's
        # length later on the clock after it: forward, as a person resetting a clock would.
        return instant, (MOVED,)
    if naive.replace(tzinfo=zone, fold=1).utcoffset() != first.utcoffset():
        return instant, (REPEATED,)
    return instant, ()


def _month_step(rule: Recurring) -> int | None:
    """A monthly rule's INTERVAL; None for other frequencies, which skip no months."""
    parts = dict(p.split("=", 1) for p in rule.rrule.upper().split(";") if "=" in p)
    return int(parts.get("INTERVAL", "1")) if parts.get("FREQ") == "MONTHLY" else None


def _months_skipped(step: int | None, previous: datetime | None, naive: datetime) -> list[str]:
    if previous is None or step is None:
        return []
    index = lambda d: d.year * 12 + d.month - 1  # noqa: E731
    return [
        f"{m // 12:04d}-{m % 12 + 1:02d}" for m in range(index(previous) + step, index(naive), step)
    ]


def occurrences(
    rule: Recurring, after: datetime, *, count: int | None = None, until: datetime | None = None
) -> list[Occurrence]:
    """Occurrences starting after `after`, up to `count` of them or up to `until`."""
    zone = ZoneInfo(rule.zone)
    rr = rrule.rrulestr(rule.rrule, dtstart=datetime.combine(rule.anchor, rule.start))
    # Iterate in local wall-clock time from a day early: the zone's offset is under a day.
    local_after = after.astimezone(zone).replace(tzinfo=None) - timedelta(days=1)
    previous = rr.before(local_after)
    step = _month_step(rule)
    found: list[Occurrence] = []
    for naive in rr.xafter(local_after, inc=True):
        start, flags = _localise(naive, zone)
        skipped = _months_skipped(step, previous, naive)
        previous = naive
        if start <= after:
            continue
        if until is not None and start > until:
            break
        if skipped:
            flags = (*flags, f"{SKIPPED}:{','.join(skipped)}")
        end = start + timedelta(minutes=rule.duration_minutes)
        found.append(Occurrence(rule.name, f"{naive:%Y-%m-%dT%H:%M}", start, end, rule.zone, flags))
        if count is not None and len(found) >= count:
            break
    return found


def preview(
    settings: Maintenance, *, count: int = 6, rule_name: str | None = None
) -> list[Occurrence]:
    """The next `count` occurrences of each rule (or of one), by start time."""
    rules = [r for r in settings.recurring if rule_name in (None, r.name)]
    if rule_name is not None and not rules:
        names = ", ".join(r.name for r in settings.recurring) or "none configured"
        raise DeskError(f"There is no recurring rule {rule_name!r} ({names}).")
    now = clock.now()
    return sorted(
        (o for r in rules for o in occurrences(r, now, count=count)), key=lambda o: o.start
    )


def materialise(db: sqlite_utils.Database, settings: Maintenance) -> list[int]:
    """Store the occurrences due within the horizon (inside the caller's transaction), and
    cancel future ones a changed or removed rule no longer makes, unless edited by hand.
    Returns the ids of the windows added."""
    now = clock.now()
    horizon = now + timedelta(days=settings.horizon_days)
    existing = db.execute(
        "SELECT id, rule, occurrence, start_at, revision FROM window WHERE rule IS NOT NULL "
        "AND cancelled_at IS NULL AND start_at > ?",
        [clock.iso(now)],
    ).fetchall()
    added: list[int] = []
    produced: set[tuple[str, str]] = set()
    for rule in settings.recurring:
        latest = max((clock.parse(r[3]) for r in existing if r[1] == rule.name), default=now)
        for occ in occurrences(rule, now, until=max(horizon, latest)):
            produced.add((rule.name, occ.key))
            if occ.start > horizon:
                continue
            window_id = windows.insert(
                db,
                title=rule.title,
                kind=rule.kind,
                update_type=rule.update_type,
                start=occ.start,
                end=occ.end,
                zone=rule.zone,
                actor=ACTOR,
                features=rule.features,
                description=rule.description,
                rule=rule.name,
                occurrence=occ.key,
                flags=occ.flags,
            )
            if window_id is not None:
                added.append(window_id)
    for window_id, rule_name, key, _, revision in existing:
        if (rule_name, key) not in produced and revision == 1:
            windows.cancel_within(db, window_id, ACTOR, f"rule {rule_name!r} no longer makes it")
    return added


def sync(db: sqlite_utils.Database, settings: Maintenance) -> list[int]:
    """Save the settings ingest classifies with and materialise the recurring windows, in one
    short transaction: when the daemon starts and before each `desk window` command."""
    with write(db):
        rule_settings.save(db, rule_settings.settings_of(settings))
        return materialise(db, settings)
