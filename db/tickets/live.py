"""Noticing that the database changed, cheaply: `PRAGMA data_version` on a dedicated connection.

SQLite bumps a connection's data_version whenever another connection (any process) commits, so
one tiny query tells whether anything at all may have changed; nothing is re-read otherwise.
"""

from __future__ import annotations

from pathlib import Path

from db.core.connect import open_db


class Watcher:
    """Polled from one thread; `changed()` is True once after each batch of others' commits."""

    def __init__(self, path: str | Path) -> None:
        # Its own connection: data_version ignores the connection's own commits, so it must
        # never be used for anything else.
        self._db = open_db(path, migrate=False)
        self._seen = self._version()

    def _version(self) -> int:
        return self._db.execute("PRAGMA data_version").fetchone()[0]

    def changed(self) -> bool:
        current = self._version()
        if current == self._seen:
            return False
        self._seen = current
        return True

    def close(self) -> None:
        self._db.close()
