"""Noticing what changed in the database, cheaply: `PRAGMA data_version`, then the audit trail.

SQLite bumps a connection's data_version whenever another connection (any process) commits, so
one tiny query tells whether anything at all may have changed; nothing is re-read otherwise.
When something did, the audit trail (`ticket_event`, appended in the same transaction as every
change to a ticket: `db.core.events.record_event`) is the change feed: the events after the last
one seen name the tickets that changed, found through its primary key whatever the table holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from db.core.connect import open_db

# Beyond this many events in one poll (a bulk import, a big merge) the desk reloads as a whole
# rather than reading a long list of ids it would not use one by one.
MAX_NAMED = 500


@dataclass(frozen=True)
class Change:
    """What a batch of others' commits touched: `tickets` names the changed tickets (empty when
    only other tables changed: sources' health, the outbox, windows), None when too many to
    name."""

    tickets: frozenset[int] | None


class Watcher:
    """Polled from one thread; `changed()` returns a Change once after each batch of others'
    commits, else None."""

    def __init__(self, path: str | Path) -> None:
        # Its own connection: data_version ignores the connection's own commits, so it must
        # never be used for anything else.
        self._db = open_db(path, migrate=False)
        self._seen = self._version()
        self._last_event = self._db.execute(
            "SELECT coalesce(max(id), 0) FROM ticket_event"
        ).fetchone()[0]

    def _version(self) -> int:
        return self._db.execute("PRAGMA data_version").fetchone()[0]

    def changed(self) -> Change | None:
        current = self._version()
        if current == self._seen:
            return None
        self._seen = current
        rows = self._db.execute(
            "SELECT id, ticket_id FROM ticket_event WHERE id > ? ORDER BY id LIMIT ?",
            [self._last_event, MAX_NAMED + 1],
        ).fetchall()
        if len(rows) > MAX_NAMED:
            self._last_event = self._db.execute("SELECT max(id) FROM ticket_event").fetchone()[0]
            return Change(None)
        if rows:
            self._last_event = rows[-1][0]
        return Change(frozenset(ticket for _, ticket in rows))

    def close(self) -> None:
        self._db.close()
