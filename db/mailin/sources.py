"""Source health and checkpoints: what each mailbox reader is doing, and what it has read.

The daemon writes these; `desk stats` and the TUI read them. An IMAP checkpoint (UIDVALIDITY,
last UID) is written by `checkpoint()` inside the same transaction as the messages it covers.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Any

import sqlite_utils

from db.core import clock
from db.core.connect import write


def durable_commits(db: sqlite_utils.Database) -> None:
    """Make each commit on `db` reach the disk before it returns (`PRAGMA synchronous = FULL`:
    in WAL mode, an fsync of the log per commit; https://sqlite.org/pragma.html#pragma_synchronous).

    For a source that marks what it read after the commit (a drop folder's file moved to `cur/`
    or `done/`, IMAP's `after_ingest = "seen"` or `"move:…"`): under the default NORMAL a power
    loss can take back the latest commits, and a message marked read or moved out of the folder
    after them would never be read again. One fsync a batch.
    """
    db.execute("PRAGMA synchronous = FULL")


STATES = (
    "starting",
    "connecting",
    "syncing",
    "idle",
    "watching",
    "backing-off",
    "failed-auth",
    "stopped",
)
GIVE_UP_AFTER = 3  # attempts before a message that keeps failing is skipped


def register(db: sqlite_utils.Database, name: str, kind: str, function: str) -> None:
    with write(db):
        db.execute(
            "INSERT INTO source_state (name, kind, function, state, updated_at) "
            "VALUES (?, ?, ?, 'starting', ?) ON CONFLICT (name) DO UPDATE SET kind = "
            "excluded.kind, function = excluded.function, state = 'starting', "
            "updated_at = excluded.updated_at",
            [name, kind, function, clock.now_iso()],
        )


def set_state(
    db: sqlite_utils.Database,
    name: str,
    state: str,
    *,
    error: str | None = None,
    server_count: int | None = None,
) -> None:
    """Record what a source is doing; the last error stays, with its time, as history beside
    `last_success`: a success later than it means the source has recovered."""
    now = clock.now_iso()
    with write(db):
        db.execute(
            "UPDATE source_state SET state = ?, updated_at = ?, "
            "last_error = coalesce(?, last_error), "
            "last_error_at = CASE WHEN ? IS NULL THEN last_error_at ELSE ? END, "
            "server_count = coalesce(?, server_count) WHERE name = ?",
            [state, now, error, error, now, server_count, name],
        )


def succeeded(
    db: sqlite_utils.Database, name: str, state: str, *, server_count: int | None = None
) -> None:
    with write(db):
        db.execute(
            "UPDATE source_state SET state = ?, last_success = ?, updated_at = ?, "
            "stored_count = (SELECT count(*) FROM message_location WHERE source = ?), "
            "server_count = coalesce(?, server_count) WHERE name = ?",
            [state, clock.now_iso(), clock.now_iso(), name, server_count, name],
        )


def checkpoint(db: sqlite_utils.Database, name: str, uidvalidity: int, last_uid: int) -> None:
    """Move an IMAP source's checkpoint; call inside the batch's transaction."""
    db.execute(
        "UPDATE source_state SET uidvalidity = ?, last_uid = ?, last_success = ?, updated_at = ? "
        "WHERE name = ?",
        [uidvalidity, last_uid, clock.now_iso(), clock.now_iso(), name],
    )


def get(db: sqlite_utils.Database, name: str) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM source_state WHERE name = ?", [name]))
    return rows[0] if rows else None


def all_states(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every source's row, with what a running daemon could not write into it laid over it
    (`save_unwritten`): the database's own fault is the news then."""
    rows = list(db.query("SELECT * FROM source_state ORDER BY name"))
    main = next((f for _seq, n, f in db.execute("PRAGMA database_list") if n == "main"), "")
    unwritten = _unwritten(Path(main)) if main else {}
    for row in rows:
        if row["name"] in unwritten:
            kept = unwritten[row["name"]]
            row["state"] = kept["state"]
            row["last_error"], row["last_error_at"] = kept["error"], kept["error_at"]
            if kept.get("server_count") is not None:
                row["server_count"] = kept["server_count"]
    return rows


def ingest_lock_file(database: Path) -> Path:
    """The lock a running desk-ingest holds on `database`: `<database>.ingest.lock`."""
    return database.with_name(database.name + ".ingest.lock")


def health_file(database: Path) -> Path:
    """Where the daemon keeps source health its database refused: `<database>.ingest.health`."""
    return database.with_name(database.name + ".ingest.health")


HEALTH_FILE_SIZE = 65536  # reserved up front: rewriting it in place needs no new disk space


def save_unwritten(database: Path, states: dict[str, dict[str, Any]]) -> None:
    """Keep `states` (source name: state, error, error_at, server_count) beside the database,
    overwriting the file in place within the space reserved for it, so a full disk still takes
    it. Never raises: this is the fallback of last resort, and the log has the same news."""
    data = json.dumps(states).encode()[: HEALTH_FILE_SIZE - 1]
    try:
        fd = os.open(health_file(database), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return
    with contextlib.suppress(OSError), os.fdopen(fd, "r+b") as out:
        with contextlib.suppress(OSError):
            os.posix_fallocate(out.fileno(), 0, HEALTH_FILE_SIZE)
        out.write(data.ljust(HEALTH_FILE_SIZE - 1) + b"\n")


def _unwritten(database: Path) -> dict[str, dict[str, Any]]:
    """What `save_unwritten` kept, if the daemon that kept it still runs (holds its lock)."""
    try:
        with open(ingest_lock_file(database)) as held:
            fcntl.flock(held, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return {}  # no daemon runs: whatever the file says is over
    except BlockingIOError:
        pass
    except OSError:
        return {}
    try:
        kept = json.loads(health_file(database).read_bytes() or b"{}")
    except (OSError, ValueError):
        return {}
    return kept if isinstance(kept, dict) else {}


def record_failure(db: sqlite_utils.Database, source: str, key: str, error: str) -> bool:
    """Count a failed attempt at one message; True once it should be skipped for good."""
    now = clock.now_iso()
    with write(db):
        db.execute(
            "INSERT INTO message_failure (source, key, error, first_at, last_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (source, key) DO UPDATE SET "
            "attempts = attempts + 1, error = excluded.error, last_at = excluded.last_at, "
            f"skipped = (attempts + 1 >= {GIVE_UP_AFTER})",
            [source, key, error[:1000], now, now],
        )
        row = db.execute(
            "SELECT skipped FROM message_failure WHERE source = ? AND key = ?", [source, key]
        ).fetchone()
    return bool(row[0])


def skipped_keys(db: sqlite_utils.Database, source: str) -> set[str]:
    """The keys of a source's messages that failed too often and are no longer tried."""
    return {
        key
        for (key,) in db.execute(
            "SELECT key FROM message_failure WHERE source = ? AND skipped", [source]
        )
    }


def failures(db: sqlite_utils.Database, source: str | None = None) -> list[dict[str, Any]]:
    where, params = ("WHERE source = ?", [source]) if source else ("", [])
    return list(db.query(f"SELECT * FROM message_failure {where} ORDER BY last_at", params))


def clear_failures(db: sqlite_utils.Database, source: str, keys: list[str]) -> None:
    """Forget earlier failed attempts at messages that have now been stored."""
    with write(db):
        db.conn.executemany(
            "DELETE FROM message_failure WHERE source = ? AND key = ?", [(source, k) for k in keys]
        )


def forget_other_uidvalidity(db: sqlite_utils.Database, name: str, uidvalidity: int) -> None:
    """Drop an IMAP source's locations from before a UIDVALIDITY change; the messages stay.

    The old UIDs name nothing on the server any more, and keeping them would count every
    message twice in `stored_count`. Call inside the batch's transaction.
    """
    db.execute(
        "DELETE FROM message_location WHERE source = ? AND key NOT LIKE ?",
        [name, f"{uidvalidity}/%"],
    )
