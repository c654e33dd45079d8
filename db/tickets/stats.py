"""Counts for scripts and ops: `desk stats --json` prints what `summary()` returns."""

from __future__ import annotations

import statistics
from typing import Any

import sqlite_utils

from db.core import clock, sla
from db.core.migrations import FUNCTIONS, OUTBOX_STATUSES
from db.mailin import sources
from db.mailout import outbox


def summary(db: sqlite_utils.Database) -> dict[str, Any]:
    one = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
    per_function: dict[str, dict[str, int]] = {}
    for function, status, count in db.execute(
        "SELECT f.function, t.status, count(*) FROM ticket_function f "
        "JOIN ticket t ON t.id = f.ticket_id GROUP BY f.function, t.status"
    ):
        per_function.setdefault(function, {})[status] = count
    # The incoming mail by its kind (`message.kind`): a person's, through a list, or a machine's.
    kinds = dict(db.execute("SELECT kind, count(*) FROM message WHERE direction = 'in' GROUP BY 1"))
    return {
        "messages": one("SELECT count(*) FROM message WHERE direction = 'in'"),
        "sent_in_threads": one("SELECT count(*) FROM message WHERE direction = 'out'"),
        "tickets": one("SELECT count(*) FROM ticket"),
        "tickets_by_function": per_function,
        "tickets_by_status": dict(db.execute("SELECT status, count(*) FROM ticket GROUP BY 1")),
        "unparsed": one("SELECT count(*) FROM message WHERE parse_error IS NOT NULL"),
        "auto_replies": kinds.get("auto-reply", 0),
        "bounces": kinds.get("bounce", 0),
        "delay_notices": kinds.get("delay", 0),
        "read_receipts": kinds.get("read-receipt", 0),
        "via_list": kinds.get("list", 0),
        "locations": one("SELECT count(*) FROM message_location"),
        "failures": sources.failures(db),
        "sources": sources.all_states(db),
        "outbox": {status: 0 for status in OUTBOX_STATUSES} | outbox.counts(db),
        "sla": sla_figures(db, clock.now_iso()),
    }


def sla_figures(db: sqlite_utils.Database, now_iso: str) -> dict[str, dict[str, Any]]:
    """Per function (the ticket's main one): {"first_response": {"met", "breached"},
    "resolution": {"met", "breached"}, "median_first_response_minutes"}. Met: the clock
    stopped by its due time; breached: it stopped late, or runs past its due time at `now_iso`
    (`db.core.sla`); a clock still running in time is neither. The median counts business
    minutes from creation to the first reply, over the tickets that had one (None if none)."""
    first, first_params = sla.first_response_breached(now_iso)
    late, late_params = sla.resolution_breached(now_iso)
    figures = {
        fn: {
            "first_response": {"met": 0, "breached": 0},
            "resolution": {"met": 0, "breached": 0},
            "median_first_response_minutes": None,
        }
        for fn in FUNCTIONS
    }
    for fn, first_met, first_late, resolution_met, resolution_late in db.execute(
        "SELECT t.function, "
        "sum(coalesce(t.first_response_at, t.resolved_at) <= t.first_response_due), "
        f"sum({first}), sum(t.resolved_at <= t.resolution_due), sum({late}) "
        # A merged ticket's case goes on in the one it points to: counted there, not twice.
        "FROM ticket t WHERE t.merged_into IS NULL GROUP BY t.function",
        [*first_params, *late_params],
    ):
        figures[fn]["first_response"] = {"met": first_met or 0, "breached": first_late or 0}
        figures[fn]["resolution"] = {"met": resolution_met or 0, "breached": resolution_late or 0}
    policy = sla.load(db)
    waits: dict[str, list[float]] = {}
    for fn, created, answered in db.execute(
        "SELECT function, created_at, first_response_at FROM ticket "
        "WHERE first_response_at IS NOT NULL AND merged_into IS NULL"
    ):
        minutes = policy.calendar_of(fn).minutes_between(
            clock.parse(created), clock.parse(answered)
        )
        waits.setdefault(fn, []).append(minutes)
    for fn, values in waits.items():
        figures[fn]["median_first_response_minutes"] = round(statistics.median(values), 1)
    return figures
