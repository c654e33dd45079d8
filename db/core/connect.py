"""Opening the database: pragmas every connection needs, migration on open, write transactions.

Every process (the daemon, each `desk`) opens its own connections; SQLite in WAL mode lets
readers go on while one writer commits. Writes are short `BEGIN IMMEDIATE` transactions so a
writer takes the lock up front instead of failing half-way when another one holds it.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import sqlite_utils

from db.core import migrations, privacy

BUSY_TIMEOUT_MS = 30_000
# desk-ingest's sources wait less: a lock held longer is then named in `desk stats` while it
# lasts (the source backs off and tries again) instead of after half a minute of silence.
INGEST_BUSY_TIMEOUT_MS = 5_000
# Writers in one process queue here rather than in SQLite's busy handler, which sleeps in
# growing steps (up to 100 ms) and so idles the lock between short transactions. Re-entrant, so
# a nested write() fails loudly in SQLite ("transaction within a transaction") instead of hanging.
_PROCESS_WRITE_LOCK = threading.RLock()


def open_db(
    path: str | Path,
    *,
    migrate: bool = True,
    access: privacy.Access = privacy.OWNER_ONLY,
    busy_timeout_ms: int = BUSY_TIMEOUT_MS,
) -> sqlite_utils.Database:
    """Open (creating if needed) the database at `path`, ready for use; a statement waits up
    to `busy_timeout_ms` for another process's lock, then raises "database is locked".

    A new database (and its folder) is made with `access`, owner-only unless the configuration
    says otherwise (`Config.database_access`); an existing one is left as it is. Raises DeskError
    if the configured group cannot be given.
    """
    path = Path(path)
    privacy.create(path, access)  # before SQLite, which would create it as the umask says
    conn = sqlite3.connect(str(path), timeout=busy_timeout_ms / 1000, check_same_thread=False)
    db = sqlite_utils.Database(conn)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA foreign_keys = ON")
    # NORMAL is durable in WAL mode except for the last commit on power loss, never corrupting;
    # a message lost that way is re-read, because its source is only marked after commit.
    conn.execute("PRAGMA synchronous = NORMAL")
    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        with contextlib.suppress(sqlite3.OperationalError):
            # Another process may be switching it at this very moment; either way it ends WAL.
            conn.execute("PRAGMA journal_mode = WAL")
    if migrate:
        migrations.migrate(db)
    return db


@contextlib.contextmanager
def write(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """One write transaction, holding the write lock from its first statement.

    sqlite-utils operations inside nest as savepoints, so they commit with this block or not
    at all.
    """
    with _PROCESS_WRITE_LOCK:
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
            raise
        else:
            db.conn.execute("COMMIT")
