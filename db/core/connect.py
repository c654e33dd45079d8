"""Opening the database: pragmas every connection needs, migration on open, write transactions.

Every process (the daemon, each `desk`) opens its own connections; SQLite in WAL mode lets
readers go on while one writer commits. Writes are short `BEGIN IMMEDIATE` transactions so a
writer takes the lock up front instead of failing half-way when another one holds it. Commands
that only read open the database read-only (`open_reader`): a write there fails, changing nothing.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import sqlite_utils

from db.core import migrations, privacy
from db.core.errors import DeskError

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


def open_reader(
    path: str | Path, *, access: privacy.Access = privacy.OWNER_ONLY
) -> sqlite_utils.Database:
    """Open the database at `path` read-only (SQLite's `mode=ro`): any write raises
    sqlite3.OperationalError ("attempt to write a readonly database").

    A database that does not exist yet is first created empty by `open_db`. One whose schema
    is older than this program is refused (DeskError): upgrading it is a write, and an older
    `desk-ingest` still running on it would then refuse the newer schema; the newer daemon, or
    any command that changes something, upgrades it. A WAL database opened read-only needs its
    -shm and -wal files, which SQLite makes when the folder is writable
    (https://sqlite.org/wal.html#readonly).
    """
    path = Path(path)
    if not path.exists():
        open_db(path, access=access).close()
    db = _read_only(path)
    found, newest = migrations.version(db), len(migrations.MIGRATIONS)
    if found < newest:
        db.close()
        raise DeskError(
            f"{path} has schema version {found}, older than this desk's {newest}; a command "
            "that only reads does not upgrade it: start this version's desk-ingest (or run "
            "`desk window sync`) first."
        )
    return db


def _read_only(path: Path) -> sqlite_utils.Database:
    conn = sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=ro",
        uri=True,
        timeout=BUSY_TIMEOUT_MS / 1000,
        check_same_thread=False,
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return sqlite_utils.Database(conn)


def shrink_memory(db: sqlite_utils.Database) -> None:
    """Free what the connection holds in its page cache (https://sqlite.org/pragma.html#pragma_shrink_memory).

    For a writer that takes turns with others, such as desk-ingest's one connection a source:
    its cache is thrown away at its next transaction anyway once another connection has written
    (WAL), but until then it holds up to `cache_size` (2 MiB), and fuller as the database grows
    (issue 12: 5 sources held 7 MiB after 2,000 messages, 11 MiB after 10,000).
    """
    db.conn.execute("PRAGMA shrink_memory")


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
