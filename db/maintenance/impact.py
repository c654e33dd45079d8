"""A maintenance window's impact, counted live from the tickets: those received during it, the
discrepancy reports after it, and the older threads a follow-up during it brought back.

Nothing here is stored: every call counts what the database holds now, so the figures move as
mail arrives and as the discrepancy rule or an agent links tickets. The verification period is
the one the discrepancy rule uses (`[maintenance] verification_hours` after the window ends,
72 by default; the policy's "Post-Maintenance Verification").

- received: tickets opened while the window was active (`ticket.during_window_id`, which the
  discrepancy rule keeps in step with the window's times);
- discrepancies: tickets the rule or an agent made a discrepancy report about the window
  (`kind = 'discrepancy'` and `window_id`, the stored verdict, whatever judged it);
- follow-ups: tickets opened before the window started that got a message from a person
  (not an auto-reply or bounce) while it was active; each is linked to the window as a
  follow-up and is not among `received`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from db.core import clock
from db.core.migrations import FUNCTIONS
from db.maintenance import rule_settings, window_model

RECEIVED, DISCREPANCIES, FOLLOWUPS = "received", "discrepancies", "followups"
# Each kind of link: the tickets it holds, as (window id, ticket id) rows for some windows.
_LINKS = {
    RECEIVED: "SELECT during_window_id, id FROM ticket WHERE during_window_id IN ({marks})",
    DISCREPANCIES: "SELECT window_id, id FROM ticket "
    "WHERE window_id IN ({marks}) AND kind = 'discrepancy'",
}
# A person's message during a window in a ticket opened before it.
_FOLLOWUP = (
    "SELECT DISTINCT w.id, t.id FROM window w "
    # An emergency runs until it is completed, past its expected end (it overruns).
    "JOIN message m ON m.received_at >= w.start_at AND (m.received_at < w.ends_at OR "
    f"{window_model.open_emergency('w')}) "
    "JOIN ticket t ON t.id = m.ticket_id "
    "WHERE w.cancelled_at IS NULL AND m.direction = 'in' AND m.auto = '' "
    "AND t.created_at < w.start_at"
)
# Outer loop over the few windows, a range of `message_received` for each.
_LINKS[FOLLOWUPS] = _FOLLOWUP + " AND w.id IN ({marks})"


def verification_ends(db: sqlite_utils.Database, w: window_model.Window) -> datetime:
    """When the window's verification period ends: `verification_hours` after it ends."""
    return w.ends + timedelta(hours=rule_settings.load(db).verification_hours)


def _linked(db: sqlite_utils.Database, kind: str, window_ids: list[int]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    marks = ", ".join("?" * len(window_ids))
    for window_id, ticket_id in db.execute(_LINKS[kind].format(marks=marks), window_ids):
        found.setdefault(window_id, []).append(ticket_id)
    return found


def _functions(db: sqlite_utils.Database, ticket_ids: Iterable[int]) -> dict[int, list[str]]:
    ids = sorted(set(ticket_ids))
    found: dict[int, list[str]] = {}
    # In chunks: SQLite caps the number of parameters of one statement.
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        for ticket_id, function in db.execute(
            f"SELECT ticket_id, function FROM ticket_function WHERE ticket_id IN "
            f"({', '.join('?' * len(chunk))})",
            chunk,
        ):
            found.setdefault(ticket_id, []).append(function)
    return found


def _per_function(ticket_ids: list[int], functions: dict[int, list[str]]) -> dict[str, int]:
    counts = dict.fromkeys(FUNCTIONS, 0)
    for ticket_id in ticket_ids:
        for function in functions.get(ticket_id, ()):
            counts[function] += 1
    return {**counts, "total": len(ticket_ids)}


def counts_many(
    db: sqlite_utils.Database, found: list[window_model.Window], now: datetime | None = None
) -> dict[int, dict[str, Any]]:
    """`counts` for each window of `found`, by window id: the same few queries whatever their
    number (for lists)."""
    if not found:
        return {}
    ids = [w.id for w in found]
    links = {kind: _linked(db, kind, ids) for kind in _LINKS}
    functions = _functions(
        db, (t for per in links.values() for tickets in per.values() for t in tickets)
    )
    now = now or clock.now()
    hours = rule_settings.load(db).verification_hours
    result = {}
    for w in found:
        until = w.ends + timedelta(hours=hours)
        result[w.id] = {
            "window": w.label,
            RECEIVED: _per_function(links[RECEIVED].get(w.id, []), functions),
            DISCREPANCIES: _per_function(links[DISCREPANCIES].get(w.id, []), functions),
            "linked_followups": len(links[FOLLOWUPS].get(w.id, [])),
            "verification_ends_at": clock.iso(until),
            "final": now >= until,
        }
    return result


def counts(db: sqlite_utils.Database, window_id: int) -> dict[str, Any]:
    """The impact of a window as it stands now:

        {"window": "W12",
         "received": {"technical": n, "sales": n, "compliance": n, "general": n,
                      "marketing": n, "total": n},
         "discrepancies": {same keys},
         "linked_followups": n,
         "verification_ends_at": "2026-06-06T12:00:00.000Z",  # UTC
         "final": bool}

    Every function is present (0 when none). A ticket addressed to two functions counts under
    both, and once in "total". "linked_followups" counts older tickets with a follow-up during
    the window (not in "received"). "final" is true once the verification period is over:
    the rule links no more reports to the window (an agent still may). Raises NotFoundError
    for a window never made.
    """
    w = window_model.get(db, window_id)
    return counts_many(db, [w])[w.id]


def tickets(
    db: sqlite_utils.Database, window_id: int, kinds: tuple[str, ...] = tuple(_LINKS)
) -> dict[str, list[dict[str, Any]]]:
    """The tickets behind `counts`, oldest first, for each of `kinds` (default all):
    {"received": [...], "discrepancies": [...], "followups": [...]}, each {"ticket": id,
    "subject", "function" (the ticket's first), "functions": [all it was sent to], "status",
    "created_at"}."""
    links = {kind: _linked(db, kind, [window_id]).get(window_id, []) for kind in kinds}
    every = sorted({t for ids in links.values() for t in ids})
    functions = _functions(db, every)
    rows = {}
    for i in range(0, len(every), 500):
        chunk = every[i : i + 500]
        for row in db.query(
            "SELECT id AS ticket, subject, function, status, created_at FROM ticket "
            f"WHERE id IN ({', '.join('?' * len(chunk))})",
            chunk,
        ):
            rows[row["ticket"]] = {**row, "functions": sorted(functions.get(row["ticket"], []))}
    return {kind: [rows[t] for t in sorted(ids) if t in rows] for kind, ids in links.items()}


def followed_up(db: sqlite_utils.Database, ticket_id: int) -> list[int]:
    """The windows a follow-up in this ticket (opened before them) arrived during, oldest
    first: the ticket is linked to each as a follow-up."""
    rows = db.execute(f"{_FOLLOWUP} AND t.id = ? ORDER BY w.id", [ticket_id])
    return [window_id for window_id, _ in rows]


def recent(
    db: sqlite_utils.Database, now: datetime
) -> list[tuple[window_model.Window, dict[str, Any]]]:
    """Windows whose impact is still moving, oldest first, with their `counts`: those in force
    (overrunning emergencies too) and those in their verification period (not cancelled)."""
    hours = rule_settings.load(db).verification_hours
    found = [
        w
        for w in window_model.listing(db, ending_after=now - timedelta(hours=hours))
        if w.status(now) in (*window_model.IN_FORCE, "completed")
    ]
    impacts = counts_many(db, found, now)
    return [(w, impacts[w.id]) for w in found]


def _by_function(part: dict[str, int]) -> str:
    found = ", ".join(f"{fn} {part[fn]}" for fn in FUNCTIONS if part[fn])
    return f" ({found})" if found else ""


def summary(counted: dict[str, Any]) -> str:
    """One line of `counts` for people: 'received 3 (technical 2, sales 1) · 1 follow-up in
    older threads · discrepancy reports 1 (compliance 1)'."""
    received, reports = counted[RECEIVED], counted[DISCREPANCIES]
    followups = counted["linked_followups"]
    return " · ".join(
        (
            f"received {received['total']}{_by_function(received)}",
            f"{followups} follow-up{'' if followups == 1 else 's'} in older threads",
            f"discrepancy reports {reports['total']}{_by_function(reports)}",
        )
    )


def state(counted: dict[str, Any]) -> str:
    """'live until 2026-06-06 12:00 UTC' or 'final since …': whether the counts still move."""
    until = counted["verification_ends_at"][:16].replace("T", " ")
    return f"final since {until} UTC" if counted["final"] else f"live until {until} UTC"
