"""The app's way to the database: one connection, used from worker threads one call at a time.

Workers never share a transaction: `call()` holds a lock for the whole function it runs, so a
read and a write from two workers cannot interleave on the connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from db.core.connect import open_db

T = TypeVar("T")


class Data:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db: sqlite_utils.Database | None = None
        self._lock = threading.Lock()

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(db, *args, **kwargs)`; call from a worker thread, never the UI thread."""
        with self._lock:
            if self._db is None:
                self._db = open_db(self.path, migrate=False)
            return fn(self._db, *args, **kwargs)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
