"""Source health and checkpoints: what each mailbox reader is doing, and what it has read.

The daemon writes these; `desk stats` and the TUI read them. An IMAP checkpoint (UIDVALIDITY,
last UID) is written by `checkpoint()` inside the same transaction as the messages it covers.
"""

from __future__ import annotations

from typing import Any

import sqlite_utils

from db.core import clock
from db.core.connect import write

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


def succeeded(db: sqlite_utils.Database, name: str, state: str) -> None:
    with write(db):
        db.execute(
            "UPDATE source_state SET state = ?, last_success = ?, updated_at = ?, "
            "stored_count = (SELECT count(*) FROM message_location WHERE source = ?) "
            "WHERE name = ?",
            [state, clock.now_iso(), clock.now_iso(), name, name],
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
    return list(db.query("SELECT * FROM source_state ORDER BY name"))


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
