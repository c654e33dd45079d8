"""Supervision of the daemon's sources: restart after any fault, and health that outlives one.

Each source, and each other thread of the daemon, runs under `supervise()`, which restarts it
with backoff (capped at `[ingest] retry_cap_seconds`, 60 s by default) after any exception,
including one raised while the source handled another. What a source reports goes through
`Health`: written to `source_state` when the database takes it, kept in memory and in
`<database>.ingest.health` (read by `desk stats`) when it does not, and written once the
database is back; the other threads' faults go to the log and to the service manager's status.
A database fault is named plainly ("the disk holding desk.db is full"), never as SQLite's text
or a traceback.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlite_utils

from db.core import clock
from db.core.errors import DeskError
from db.mailin import sources
from ingest.backoff import Backoff

log = logging.getLogger("desk.supervisor")


def db_fault(exc: BaseException, database: Path) -> str | None:
    """One sentence naming a fault of the database itself, or None if `exc` is not one.

    The SQLite texts matched are its result codes' messages (SQLITE_FULL, SQLITE_BUSY,
    SQLITE_READONLY, SQLITE_CANTOPEN: https://sqlite.org/rescode.html).
    """
    name = database.name
    text = str(exc).lower()
    number = getattr(exc, "errno", None)
    if "disk is full" in text or number == errno.ENOSPC:
        return f"the disk holding {name} is full ({database.parent}); free some space"
    if isinstance(exc, sqlite3.Error) and ("locked" in text or "busy" in text):
        return f"{name} is locked by another process ({database}); ingest waits for it"
    if "readonly" in text or "read-only" in text or number in (errno.EROFS, errno.EACCES):
        return f"{name} is read-only ({database}); give the daemon's user write access to it"
    if isinstance(exc, sqlite3.Error) and "unable to open" in text:
        return f"{name} cannot be opened ({database}); check that its folder exists and is writable"
    return None


def describe(exc: BaseException, database: Path) -> str:
    """One sentence for any fault: the database's, a DeskError's own, or the exception's text."""
    fault = db_fault(exc, database)
    if fault is not None:
        return fault
    if isinstance(exc, DeskError):
        return exc.message
    if isinstance(exc, sqlite3.Error):
        return f"{database.name} failed: {exc}"
    return f"unexpected {type(exc).__name__}: {exc}"


class Health:
    """What every source last reported, written through to `source_state` when it can be.

    A report the database refuses is kept (the latest per source), logged once per change,
    saved to `<database>.ingest.health` for `desk stats`, and written with the next report that
    gets through. Also tracks, per source, since when it has been failing: `stalled(seconds)`
    is True once every source has failed for that long without a success in between.
    """

    def __init__(self, database: Path, names: tuple[str, ...] = ()) -> None:
        """`names`: the sources to expect, counted in `summary()` before they start."""
        self.database = database
        self._lock = threading.Lock()
        self._unwritten: dict[str, dict[str, Any]] = {}
        self._failing_since: dict[str, float | None] = dict.fromkeys(names)
        self._errors: dict[str, str] = {}  # the current fault of a source or thread, by name
        self._threads: set[str] = set()  # the daemon's other threads: notices, sender, reparse

    def for_source(self, db: sqlite_utils.Database, name: str) -> SourceHealth:
        with self._lock:
            self._failing_since.setdefault(name, None)
        return SourceHealth(self, db, name)

    def report(
        self,
        db: sqlite_utils.Database,
        name: str,
        state: str,
        *,
        ok: bool,
        database_down: bool = False,
        **fields: Any,
    ) -> bool:
        """Record `state` (with `error`, `server_count`); True if the database took it.

        With `database_down` (the error is the database's own fault) it is not even tried:
        a locked database would hold the report for the whole busy timeout first."""
        now = time.monotonic()
        with self._lock:
            if ok:
                self._failing_since[name] = None
                self._errors.pop(name, None)
            elif fields.get("error"):
                self._failing_since[name] = self._failing_since.get(name) or now
                self._errors[name] = fields["error"]
            earlier = self._unwritten.pop(name, None)
        try:
            if database_down:
                raise sqlite3.OperationalError(fields.get("error") or "")
            if earlier is not None and earlier.get("error"):
                sources.set_state(db, name, earlier["state"], error=earlier["error"])
            if ok:
                sources.succeeded(db, name, state, server_count=fields.get("server_count"))
            else:
                sources.set_state(db, name, state, **fields)
        except (sqlite3.Error, OSError) as exc:
            fault = db_fault(exc, self.database) or str(exc)
            record = {"state": state, "server_count": fields.get("server_count")}
            error = fields.get("error") or (earlier or {}).get("error") or fault
            record |= {"error": error, "error_at": clock.now_iso()}
            with self._lock:
                self._unwritten[name] = record
                snapshot = dict(self._unwritten)
            if not database_down:
                log.warning("%s: %s; kept until the database takes it: %s", name, state, error)
                log.debug("%s: writing health failed", name, exc_info=True)
            sources.save_unwritten(self.database, snapshot)
            return False
        with self._lock:
            snapshot = dict(self._unwritten)
        if earlier is not None:
            sources.save_unwritten(self.database, snapshot)
        return True

    def for_thread(self, name: str) -> ThreadHealth:
        with self._lock:
            self._threads.add(name)
        return ThreadHealth(self, name)

    def thread_state(self, name: str, error: str | None) -> None:
        """Record a background thread's fault (`error`), or its recovery (None)."""
        with self._lock:
            if error:
                self._errors[name] = error
            else:
                self._errors.pop(name, None)

    def summary(self) -> str:
        """One line on how the daemon does, for the service manager's status (`STATUS=`):
        "3 source(s): 2 working, 1 backing off (sales-imap: ...)", and any thread at fault."""
        with self._lock:
            sources_ = list(self._failing_since)
            errors = dict(self._errors)
            threads = sorted(self._threads)
        failing = [n for n in sources_ if n in errors]
        line = f"{len(sources_)} source(s): {len(sources_) - len(failing)} working"
        if failing:
            line += (
                f", {len(failing)} backing off ("
                + "; ".join(f"{n}: {errors[n]}" for n in failing)
                + ")"
            )
        for name in threads:
            if name in errors:
                line += f"; {name} backing off ({errors[name]})"
        return line

    def stalled(self, seconds: float) -> bool:
        """True if there are sources and every one has been failing for `seconds` or more."""
        now = time.monotonic()
        with self._lock:
            since = list(self._failing_since.values())
        return bool(since) and all(s is not None and now - s >= seconds for s in since)


class SourceHealth:
    """One source's side of `Health`: what its reader calls to say how it is doing."""

    def __init__(self, health: Health, db: sqlite_utils.Database, name: str) -> None:
        self.health = health
        self.db = db
        self.name = name

    def state(
        self,
        state: str,
        *,
        error: str | None = None,
        server_count: int | None = None,
        database_down: bool = False,
    ) -> bool:
        """Record `state`, with `error` if the source is at fault (`database_down`: the
        database's own fault, see `Health.report`); never raises."""
        return self.health.report(
            self.db,
            self.name,
            state,
            ok=False,
            database_down=database_down,
            error=error,
            server_count=server_count,
        )

    def ok(self, state: str, *, server_count: int | None = None) -> bool:
        """Record a success in `state`: the source made progress; never raises."""
        return self.health.report(self.db, self.name, state, ok=True, server_count=server_count)

    def started(self) -> None:
        """(Re)started by `supervise`: a source says itself when it has made progress."""


class ThreadHealth:
    """A background thread's side of `Health` (the notice scheduler, the sender, the healer):
    its faults go to the log and to `Health.summary()`; `source_state` holds sources only."""

    def __init__(self, health: Health, name: str) -> None:
        self.health = health
        self.name = name

    def state(self, state: str, *, error: str | None = None, database_down: bool = False) -> bool:
        self.health.thread_state(self.name, error)
        return True

    def ok(self, state: str) -> bool:
        self.health.thread_state(self.name, None)
        return True

    def started(self) -> None:
        """(Re)started by `supervise`: its fault, if any, is over until it raises again."""
        self.ok("running")


def supervise(
    name: str,
    body: Callable[[], None],
    health: SourceHealth | ThreadHealth,
    stop: threading.Event,
    *,
    cap: float,
    once: bool,
) -> bool:
    """Run `body` until it returns or `stop` is set, restarting it after any exception with
    backoff up to `cap` seconds. With `once`, a fault ends it instead. False if it failed."""
    backoff = Backoff(cap=cap)
    while not stop.is_set():
        started = time.monotonic()
        health.started()
        try:
            body()
            return True
        except BaseException as exc:  # noqa: BLE001 - any fault, even one raised while handling another
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            message = describe(exc, health.health.database)
            down = db_fault(exc, health.health.database) is not None
            if not down and not isinstance(exc, DeskError):
                log.exception("%s: %s", name, message)
            else:
                log.debug("%s: %s", name, message, exc_info=True)
            if once:
                log.error("%s: %s", name, message)
                health.state("stopped", error=message, database_down=down)
                return False
            if time.monotonic() - started > cap:
                backoff.reset()  # it ran well for a while: this is a new fault
            wait = backoff.next_delay()
            log.error("%s: %s; restarting in %.1f s", name, message, wait)
            health.state("backing-off", error=message, database_down=down)
            stop.wait(wait)
    return True
