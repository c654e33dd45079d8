"""Online backup of the database: a consistent copy taken while `desk-ingest` writes, checked
before it takes the backup's name.

SQLite's online backup API (`sqlite3.Connection.backup`) copies the pages of one snapshot: the
source connection holds a read transaction through every step, so pages committed meanwhile by
the daemon are not mixed in and the copy never restarts. In WAL mode a reader never blocks the
writer, so the daemon goes on committing throughout; the copy is the database as it was when
the backup began.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from db.core.connect import BUSY_TIMEOUT_MS
from db.core.errors import DeskError

# Pages per step (4 KiB each: 16 MiB): between steps the source's pages are released to the
# page cache and the file system, and the copy grows in pieces a full disk stops early.
STEP_PAGES = 4096


@dataclass(frozen=True)
class Copy:
    """What `backup()` wrote: the file, its size in bytes, the incoming messages and the tickets
    it holds, and how long the copy and its check took, in seconds."""

    path: Path
    size: int
    messages: int
    tickets: int
    seconds: float


def backup(source: Path, target: Path, *, force: bool = False) -> Copy:
    """Copy the database at `source` to `target`, consistent as of the start, owner-only (0600).

    The copy is written to a temporary file beside `target`, checked with `PRAGMA
    integrity_check`, and renamed to `target` only when the check passes; on any failure the
    temporary file is removed and `target` is left as it was.

    Raises `DeskError` (one sentence) when `source` is not there or cannot be read, `target` is
    a folder or exists and `force` is false, `target`'s folder cannot be written, the disk fills,
    or the check fails.
    """
    started = time.monotonic()
    source, target = Path(source), Path(target)
    if not source.is_file():
        raise DeskError(f"there is no database at {source}: check [database] path in the config.")
    if target.is_dir():
        raise DeskError(f"{target} is a folder: give the backup a file name.")
    if _is_the_database(source, target):
        raise DeskError(f"{target} is the database itself: back it up to another path.")
    if target.exists() and not force:
        raise DeskError(f"{target} already exists: choose another path, or pass --force.")
    temporary: Path | None = None
    try:
        # Named before it is made, so that a signal at any moment finds what to remove; made
        # 0600 and exclusively, before a byte of mail is in it.
        temporary = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        messages, tickets = _copy(source, temporary)
        _fsync(temporary)
        temporary.replace(target)
        _fsync(target.parent)
    except OSError as exc:
        _remove(temporary)
        raise _os_error(exc, target) from exc
    except BaseException:  # a signal's exception too (`desk backup` stopped by SIGTERM)
        _remove(temporary)
        raise
    return Copy(target, target.stat().st_size, messages, tickets, time.monotonic() - started)


def _copy(source: Path, temporary: Path) -> tuple[int, int]:
    """Back up `source` into the empty file `temporary`, check it; return (messages, tickets)."""
    # mode=rw: a wrong path is an error here, never a new empty database.
    src = sqlite3.connect(
        f"{source.resolve().as_uri()}?mode=rw",
        uri=True,
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
    )
    dst = sqlite3.connect(str(temporary), isolation_level=None)
    try:
        try:
            # Hold one snapshot across all steps (see the module docstring).
            src.execute("BEGIN")
            src.execute("SELECT count(*) FROM sqlite_master").fetchone()
            # The progress call runs Python between steps, where a signal's handler can raise
            # (`desk backup` stopped by SIGTERM): the copy ends there and is removed.
            src.backup(dst, pages=STEP_PAGES, progress=_between_steps)
            src.execute("COMMIT")
            # The copy is one self-contained file, with no -wal beside it to lose; `open_db`
            # turns WAL back on when it is restored.
            dst.execute("PRAGMA journal_mode = DELETE")
            _check(dst, source)
            # Incoming messages, as `desk stats` counts them, so the two can be compared.
            counts = dst.execute(
                "SELECT (SELECT count(*) FROM message WHERE direction = 'in'),"
                " (SELECT count(*) FROM ticket)"
            ).fetchone()
        except sqlite3.Error as exc:
            raise _sqlite_error(exc, source, temporary) from exc
    finally:
        dst.close()
        src.close()
    return counts[0], counts[1]


def _between_steps(_status: int, _remaining: int, _total: int) -> None:
    """Nothing to do: being called is what lets a pending signal handler run."""


def _check(copy: sqlite3.Connection, source: Path) -> None:
    """Raise `DeskError` unless `PRAGMA integrity_check` finds the copy sound. The copy holds the
    source's pages as they were, so a fault found here is most likely in the source."""
    report = [
        line for (row,) in copy.execute("PRAGMA integrity_check") for line in row.splitlines()
    ]
    if report == ["ok"]:
        return
    problems = [line for line in report if not line.startswith("*** in database")]
    raise _damaged(source, problems[0] + (" and more" if len(problems) > 1 else ""))


def _damaged(source: Path, problem: str) -> DeskError:
    return DeskError(
        f"the copy of {source} failed its integrity check ({problem}), so nothing was written; "
        f"check the database itself with `sqlite3 {source} 'PRAGMA integrity_check'`."
    )


def _remove(temporary: Path | None) -> None:
    """Remove the unfinished copy, if made, with any journal SQLite left beside it (the copy is
    in WAL mode, as its source, until it is switched to a rollback journal)."""
    if temporary is None:
        return
    for path in [temporary, *(Path(f"{temporary}{end}") for end in ("-journal", "-wal", "-shm"))]:
        # Best effort: a name never made (a signal came first, or the folder refused it)
        # raises here, for want of the file or of the folder.
        with contextlib.suppress(OSError):
            path.unlink()


def _is_the_database(source: Path, target: Path) -> bool:
    """Whether `target` is the database or one of its side files (by name, link or inode):
    renaming a copy over it would cut the running daemon off from the file it writes."""
    live = [source, *(source.with_name(source.name + s) for s in ("-wal", "-shm", "-journal"))]
    resolved = target.resolve()
    for path in live:
        if path.resolve() == resolved:
            return True
        try:
            if target.exists() and path.exists() and os.path.samefile(path, target):
                return True
        except OSError:
            continue
    return False


def _fsync(path: Path) -> None:
    """Flush `path` (a file, or a folder after a rename in it) to disk, so a backup reported
    written survives a power cut."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sqlite_error(exc: sqlite3.Error, source: Path, temporary: Path) -> DeskError:
    """The sentence for an SQLite error while copying; its primary result code says which."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # extended codes keep it in the low byte
    if code == sqlite3.SQLITE_FULL:
        return DeskError(f"the disk holding {temporary.parent} is full: free space and run again.")
    if code == sqlite3.SQLITE_CORRUPT:  # so damaged that the check itself stops
        return _damaged(source, str(exc))
    if code in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM):
        return DeskError(
            f"cannot read {source} ({exc}): run desk backup as the user desk-ingest runs as, "
            f"who may read it and write the {source.name}-shm beside it."
        )
    if "no such table" in str(exc):
        return DeskError(f"{source} is not a desk database ({exc}).")
    return DeskError(f"cannot copy {source}: {exc}.")


def _os_error(exc: OSError, target: Path) -> DeskError:
    if exc.errno == errno.ENOSPC:
        return DeskError(f"the disk holding {target.parent} is full: free space and run again.")
    reason = exc.strerror or str(exc)
    return DeskError(f"cannot write a backup in {target.parent}: {reason.lower()}.")
