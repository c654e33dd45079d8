"""Recurring windows: the config's RRULEs turned into occurrences, DST-correct, stored as rows.

A rule's start is a wall-clock time in its zone, so 02:00 stays 02:00 local across a DST
change and the UTC time moves instead. A start in the hour a spring change skips does not
exist: it moves forward by the gap (02:30 becomes 03:30) and is flagged. In the autumn hour
that happens twice, the first one is taken and flagged. As RFC 5545 says, a month without the
day a rule names (BYMONTHDAY=31) has no occurrence; the next occurrence is flagged with the
months skipped, so `desk window preview` shows it.

Occurrences of two rules that overlap (or touch) become one window, so users get one set of
notices for one night: the deeper rule's occurrence absorbs the other (`DEPTH`: quarterly over
monthly over adhoc, then the longer, then the one listed first); the absorbed rule's
`on_overlap` says whether its occurrence is skipped ("skip", the default) or merged into the
deeper window, which then spans both and lists both rules' features ("merge").

Only the daemon and `desk window sync` materialise rules (`sync`): reading never writes. A
future occurrence its rule no longer makes is withdrawn (deleted, with a log line) while no
one has been told of it; once announced, edited or linked to a ticket it stays, flagged
(`rule_gone`), until an operator cancels it or keeps it (`keep`): a config without the rules
must never cancel what users were told.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
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
SKIPPED_FOR = "skipped-for"  # "skipped-for:quarterly@2027-01-02T22:00": a deeper one covers it
MERGED_INTO = "merged-into"  # "merged-into:quarterly@2027-01-02T22:00"
MERGED = "merged"  # on the deeper one: "merged:monthly@2027-01-03T02:00"
DEPTH = {"adhoc": 0, "monthly": 1, "quarterly": 2}
log = logging.getLogger("desk.recurrence")


@dataclass(frozen=True)
class Occurrence:
    rule: str
    key: str  # the nominal local start, e.g. "2026-03-08T02:00": the row's identity
    start: datetime  # UTC
    end: datetime
    zone: str
    flags: tuple[str, ...]
    features: tuple[str, ...] = field(default=())

    @property
    def absorbed(self) -> bool:
        """Skipped for, or merged into, a deeper rule's occurrence: not stored."""
        return self.absorbed_by is not None

    @property
    def absorbed_by(self) -> tuple[str, str] | None:
        """(SKIPPED_FOR or MERGED_INTO, the deeper occurrence's `ref`), or None."""
        for flag in self.flags:
            how, _, host = flag.partition(":")
            if how in (SKIPPED_FOR, MERGED_INTO):
                return how, host
        return None

    @property
    def ref(self) -> str:
        return f"{self.rule}@{self.key}"


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
        key = f"{naive:%Y-%m-%dT%H:%M}"
        found.append(Occurrence(rule.name, key, start, end, rule.zone, flags, rule.features))
        if count is not None and len(found) >= count:
            break
    return found


def _depth(rules: tuple[Recurring, ...]) -> dict[str, tuple[int, int, int]]:
    """Each rule's rank; the higher absorbs the lower (the policy's quarterly "deep"
    maintenance includes the monthly routine)."""
    return {
        r.name: (DEPTH.get(r.kind, 0), r.duration_minutes, -index) for index, r in enumerate(rules)
    }


def _resolve(found: list[Occurrence], rules: tuple[Recurring, ...]) -> list[Occurrence]:
    """`found` with overlaps settled: each occurrence that overlaps or touches a deeper rule's
    is flagged skipped or merged (by its rule's `on_overlap`), and a merge widens the deeper."""
    depth = _depth(rules)
    on_overlap = {r.name: r.on_overlap for r in rules}
    kept: list[Occurrence] = []
    settled: list[Occurrence] = []
    for occ in sorted(found, key=lambda o: (tuple(-d for d in depth[o.rule]), o.start)):
        deeper = next(
            (
                i
                for i, k in enumerate(kept)
                if depth[k.rule] > depth[occ.rule] and k.start <= occ.end and occ.start <= k.end
            ),
            None,
        )
        if deeper is None:
            kept.append(occ)
            continue
        host = kept[deeper]
        if on_overlap[occ.rule] == "merge":
            kept[deeper] = dataclasses.replace(
                host,
                start=min(host.start, occ.start),
                end=max(host.end, occ.end),
                features=tuple(dict.fromkeys((*host.features, *occ.features))),
                flags=(*host.flags, f"{MERGED}:{occ.ref}"),
            )
            mark = MERGED_INTO
        else:
            mark = SKIPPED_FOR
        settled.append(dataclasses.replace(occ, flags=(*occ.flags, f"{mark}:{host.ref}")))
    return sorted([*kept, *settled], key=lambda o: (o.start, o.rule))


def plan(rules: tuple[Recurring, ...], after: datetime, until: datetime) -> list[Occurrence]:
    """Every rule's occurrences starting after `after` up to `until`, overlaps settled (the
    absorbed ones are in the list, flagged; `Occurrence.absorbed`)."""
    if not rules:
        return []
    # Look a rule's length either side, so an occurrence already running, or one just past
    # `until`, still absorbs the ones it overlaps.
    reach = timedelta(minutes=max(r.duration_minutes for r in rules))
    found = [o for r in rules for o in occurrences(r, after - reach, until=until + reach)]
    return [o for o in _resolve(found, rules) if after < o.start <= until]


def preview(
    settings: Maintenance, *, count: int = 6, rule_name: str | None = None
) -> list[Occurrence]:
    """The next `count` occurrences of each rule (or of one), by start time, overlaps settled."""
    rules = [r for r in settings.recurring if rule_name in (None, r.name)]
    if rule_name is not None and not rules:
        names = ", ".join(r.name for r in settings.recurring) or "none configured"
        raise DeskError(f"There is no recurring rule {rule_name!r} ({names}).")
    now = clock.now()
    nexts = [o.start for r in rules for o in occurrences(r, now, count=count)]
    if not nexts:
        return []
    shown: dict[str, int] = {r.name: 0 for r in rules}
    found = []
    for occ in plan(settings.recurring, now, max(nexts)):
        if shown.get(occ.rule, count) < count:
            shown[occ.rule] += 1
            found.append(occ)
    return found


def digest(rules: tuple[Recurring, ...]) -> str:
    """A SHA-256 of the rules as configured, to tell whether two configs make the same windows."""
    data = [dataclasses.asdict(r) for r in rules]
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class SyncReport:
    """What one sync did, by window label or occurrence (`rule@local start`)."""

    added: list[int] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)  # "monthly@2027-01-03T02:00 (W7)"
    flagged: list[int] = field(default_factory=list)  # rule_gone newly set
    restored: list[int] = field(default_factory=list)  # rule_gone cleared: the rule is back
    absorbed: list[Occurrence] = field(default_factory=list)  # within the horizon


def _gone_reason(rule: str, key: str, names: set[str], absorbed: dict) -> str:
    if rule not in names:
        return f"its rule is gone: {rule!r} is no longer in the config"
    if (rule, key) in absorbed:
        return f"its rule now leaves it out: it overlaps {absorbed[rule, key].absorbed_by[1]}"
    return f"its rule no longer makes it: {rule!r} has changed"


def _told(db: sqlite_utils.Database, window_id: int) -> bool:
    """Whether anyone may know of the window: a notice issued or a ticket linked to it."""
    return bool(
        db.execute(
            "SELECT EXISTS (SELECT 1 FROM notice WHERE window_id = :id) "
            "OR EXISTS (SELECT 1 FROM ticket WHERE window_id = :id OR during_window_id = :id)",
            {"id": window_id},
        ).fetchone()[0]
    )


def materialise(db: sqlite_utils.Database, settings: Maintenance) -> SyncReport:
    """Store the occurrences due within the horizon (inside the caller's transaction); withdraw
    the future ones no rule makes any more that no one was told of, flag the others."""
    now = clock.now()
    horizon = now + timedelta(days=settings.horizon_days)
    existing = db.execute(
        "SELECT id, rule, occurrence, start_at, revision, announced_at, rule_gone FROM window "
        "WHERE rule IS NOT NULL AND detached_at IS NULL AND cancelled_at IS NULL AND start_at > ?",
        [clock.iso(now)],
    ).fetchall()
    latest = max((clock.parse(r[3]) for r in existing), default=now)
    planned = plan(settings.recurring, now, max(horizon, latest))
    rules = {r.name: r for r in settings.recurring}
    report = SyncReport()
    hosts: dict[str, list[Occurrence]] = {}
    for occ in planned:
        if occ.absorbed_by:
            hosts.setdefault(occ.absorbed_by[1], []).append(occ)
    for occ in planned:
        if occ.start > horizon:
            continue
        if occ.absorbed:
            report.absorbed.append(occ)
            continue
        rule = rules[occ.rule]
        window_id = windows.insert(
            db,
            title=rule.title,
            kind=rule.kind,
            update_type=rule.update_type,
            start=occ.start,
            end=occ.end,
            zone=rule.zone,
            actor=ACTOR,
            features=occ.features,
            description=rule.description,
            rule=rule.name,
            occurrence=occ.key,
            flags=occ.flags,
        )
        if window_id is not None:
            report.added.append(window_id)
            for other in hosts.get(occ.ref, []):
                how = "skipped" if other.absorbed_by[0] == SKIPPED_FOR else "merged into it"
                log.info("W%d (%s) overlaps %s: one window for the night, %s is %s "
                         "(on_overlap)", window_id, occ.ref, other.ref, other.ref, how)  # fmt: skip
    produced = {(o.rule, o.key) for o in planned if not o.absorbed}
    absorbed = {(o.rule, o.key): o for o in planned if o.absorbed}
    for window_id, rule_name, key, _, revision, announced_at, gone in existing:
        if (rule_name, key) in produced:
            if gone is not None:
                db.execute("UPDATE window SET rule_gone = NULL WHERE id = ?", [window_id])
                windows.record(db, window_id, ACTOR, "rule-back", {"was": gone})
                log.info("W%d: its rule %r makes it again", window_id, rule_name)
                report.restored.append(window_id)
            continue
        reason = _gone_reason(rule_name, key, set(rules), absorbed)
        if announced_at is None and revision == 1 and not _told(db, window_id):
            # Nobody knows of it: gone without a trace but this line, so the occurrence is
            # made afresh if its rule comes back. (Cancelling would keep the row and its
            # UNIQUE (rule, occurrence) would block that.)
            db.execute("DELETE FROM window WHERE id = ?", [window_id])
            log.info("W%d (%s@%s) withdrawn before it was announced: %s", window_id, rule_name,
                     key, reason)  # fmt: skip
            report.withdrawn.append(f"{rule_name}@{key} (W{window_id})")
        elif gone != reason:
            db.execute("UPDATE window SET rule_gone = ? WHERE id = ?", [reason, window_id])
            windows.record(db, window_id, ACTOR, "rule-gone", {"reason": reason})
            log.warning(
                "W%d: %s; it stays until an operator cancels it (desk window cancel W%d) or "
                "keeps it (desk window keep W%d)", window_id, reason, window_id, window_id,
            )  # fmt: skip
            report.flagged.append(window_id)
    return report


def sync(
    db: sqlite_utils.Database, settings: Maintenance, config_path: str, actor: str
) -> SyncReport:
    """Save the settings ingest classifies with, materialise the recurring windows and record
    which config they came from (`last_sync`), in one short transaction: the daemon does this
    when it starts and every hour, `desk window sync` when asked. Never from a read."""
    with write(db):
        rule_settings.save(db, rule_settings.settings_of(settings))
        report = materialise(db, settings)
        db.execute(
            "INSERT INTO recurring_sync (id, config_path, digest, synced_at, synced_by) "
            "VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET config_path = "
            "excluded.config_path, digest = excluded.digest, synced_at = excluded.synced_at, "
            "synced_by = excluded.synced_by",
            [config_path, digest(settings.recurring), clock.now_iso(), actor],
        )
    return report


def last_sync(db: sqlite_utils.Database, config_path: str, settings: Maintenance) -> dict[str, Any]:
    """The last sync, compared with the config at `config_path`: {"synced_at", "config",
    "synced_by" (None when never synced), "same_config", "same_rules"}."""
    row = db.execute(
        "SELECT config_path, digest, synced_at, synced_by FROM recurring_sync WHERE id = 1"
    ).fetchone()
    if row is None:
        return {"synced_at": None, "config": None, "synced_by": None, "same_config": False,
                "same_rules": False}  # fmt: skip
    path, stored, at, by = row
    return {
        "synced_at": at,
        "config": path,
        "synced_by": by,
        "same_config": path == config_path,
        "same_rules": stored == digest(settings.recurring),
    }


def rule_gone(db: sqlite_utils.Database, now: datetime) -> list[windows.Window]:
    """Windows not yet over whose rule no longer makes them, by start: an operator cancels
    or keeps each."""
    return [
        w
        for w in windows.listing(db, ending_after=now)
        if w.rule_gone and w.status(now) not in ("cancelled", "completed")
    ]


def keep(db: sqlite_utils.Database, window_id: int, actor: str) -> windows.Window:
    """Detach a recurring window from its rule: it stays as it is, no sync withdraws or flags
    it, and its rule (if it comes back) does not make that occurrence again. Raises DeskError
    for a window no rule made, or one cancelled or over."""
    with write(db):
        w = windows.get(db, window_id)
        if w.rule is None:
            raise DeskError(
                f"{w.label} was not made by a recurring rule; there is nothing to keep."
            )
        status = w.status(clock.now())
        if status in ("cancelled", "completed"):
            raise DeskError(f"{w.label} is {status}; there is nothing to keep.")
        if w.detached_at is not None:
            return w
        return windows.change(
            db, w, actor, "kept", {"detached_at": clock.now_iso(), "rule_gone": None}
        )
