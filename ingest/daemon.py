"""`desk-ingest`: runs every configured source until told to stop, and never dies of a message.

Each source runs in its own thread with its own database connection, so one failing source
never stops the others. Two more threads carry mail out: the notice scheduler issues the
maintenance notices as they fall due, and the sender hands the outbox to `[smtp]`. One more
reads stored mail again with today's parser: what an older version read, after an upgrade, and
what an agent asks for (`ingest/reparse.py`). With `[publish] dir`, one more keeps the status
site there current (`publish/`). Every thread runs under the same supervisor
(`ingest/supervisor.py`). Under systemd (`Type=notify`) it says when it is ready, how it does
and when it stops, and keeps the watchdog fed (`ingest/notify.py`). SIGTERM or SIGINT sets a
stop flag: each finishes the batch or mail it holds, commits, and returns. `--once` ingests
what is there, issues and sends what is due, reads again what agents asked for, and exits;
`--reparse` only reads stored mail again. One daemon (or `--once`) runs on a database at a
time: it holds a lock file beside it.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import smtplib
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from contextlib import closing
from pathlib import Path
from typing import IO, Any

import sqlite_utils

from db.core import clock, privacy, sla
from db.core.config import Config, Source, load
from db.core.connect import INGEST_BUSY_TIMEOUT_MS, open_db, write
from db.core.errors import DeskError
from db.mailin import search_index, sources
from db.mailin.reparse import Scope
from db.mailout import outbox
from db.maintenance import notice_schedule, recurrence, reports
from ingest import imap, maildir, memory, reparse, secrets, sender
from ingest.backoff import Backoff
from ingest.notify import Notifier
from ingest.pipeline import Pipeline, read_ahead_slots
from ingest.supervisor import Health, describe, supervise
from ingest.workers import make_pool
from publish.site import Publisher

log = logging.getLogger("desk.daemon")
NOTICE_SECONDS = 30.0  # how often the scheduler looks for notices due
# How often the status site's digest is read: the site follows a change within this (the issue
# asks for a minute), at the cost of one aggregate query.
PUBLISH_SECONDS = 15.0
# How often the recurring rules are materialised again, so the horizon moves on with the days.
SYNC_SECONDS = 3600.0
_RUNNERS: dict[str, Callable[..., None]] = {"maildir": maildir.run, "imap": imap.run}


def _runner(kind: str) -> Callable[..., None]:
    if kind in _RUNNERS:
        return _RUNNERS[kind]
    raise DeskError(f"source kind {kind!r} is not supported by this version")


def _source_thread(
    config: Config,
    source: Source,
    pool: Executor | None,
    stop: threading.Event,
    once: bool,
    failed: list[str],
    health: Health,
    read_ahead: threading.Semaphore,
) -> None:
    """One source under its supervisor (`ingest/supervisor.py`): a fault, the database's
    included, restarts it after a backoff step."""
    db = _open_waiting(config, stop, source.name, busy_timeout_ms=INGEST_BUSY_TIMEOUT_MS)
    if db is None:
        return
    reporter = health.for_source(db, source.name)

    def body() -> None:
        _runner(source.kind)(
            source, Pipeline(db, config, source, pool, reporter, read_ahead), stop, once=once
        )

    try:
        if not supervise(
            source.name, body, reporter, stop, cap=config.retry_cap_seconds, once=once
        ):
            failed.append(source.name)
    finally:
        db.close()


def _open_waiting(config: Config, stop: threading.Event, who: str, **options: Any):
    """A connection to the database for a thread of the daemon, waited for with backoff while
    the database cannot be opened (locked, full, read-only, gone); None once `stop` is set.
    Without it a fault at the moment a thread starts would end that thread for good."""
    backoff = Backoff(cap=config.retry_cap_seconds)
    while not stop.is_set():
        try:
            return open_db(config.database, **options)
        except Exception as exc:  # noqa: BLE001 - waited out, named in one line
            wait = backoff.next_delay()
            log.error("%s: %s; trying again in %.0f s", who, describe(exc, config.database), wait)
            log.debug("opening the database failed", exc_info=True)
            stop.wait(wait)
    return None


def _background(
    config: Config,
    name: str,
    body: Callable[[], None],
    stop: threading.Event,
    once: bool,
    failed: list[str],
    health: Health,
) -> None:
    """A thread of the daemon other than a source under the same supervisor as the sources:
    restarted with backoff after any fault; with `once`, a fault fails the run."""
    if not supervise(
        name, body, health.for_thread(name), stop, cap=config.retry_cap_seconds, once=once
    ):
        failed.append(name)


def _notices(config: Config, stop: threading.Event, once: bool) -> None:
    """Issue the maintenance notices as they fall due, every NOTICE_SECONDS; materialise the
    recurring rules again every SYNC_SECONDS; make final the impact counts of the reports whose
    verification period ended."""
    synced = time.monotonic()  # _prepare() has just synced
    with closing(open_db(config.database)) as db:
        while not stop.is_set():
            if time.monotonic() - synced >= SYNC_SECONDS:
                _sync(db, config)
                synced = time.monotonic()
            notice_schedule.tick(db, config.mail, config.maintenance)
            for label in reports.freeze_ended(db):
                log.info("%s: the report's impact counts are final", label)
            if once:
                return
            stop.wait(NOTICE_SECONDS)


def _publish(
    config: Config, stop: threading.Event, once: bool, before: list[threading.Thread]
) -> None:
    """Keep `[publish] dir` current: re-render the status site when the database's digest moves
    (`publish.site.Publisher`); with `once`, after `before` (the notices) issued what is due."""
    assert config.publish.dir is not None
    for thread in before:
        thread.join()
    publisher = Publisher(config.publish.dir, config.publish.url)
    with closing(open_db(config.database)) as db:
        while not stop.is_set():
            changed = publisher.refresh(db)
            if changed:
                log.info("status site: %d file(s) updated in %s", len(changed), publisher.directory)
            if once:
                return
            stop.wait(PUBLISH_SECONDS)


def _send(config: Config, stop: threading.Event, once: bool, before: list[threading.Thread]):
    """The sender's body: hand the outbox to `[smtp]`; with `once`, after `before` (reading and
    the notices) have queued what they would."""
    assert config.mail.smtp is not None
    for thread in before:
        thread.join()
    with closing(open_db(config.database)) as db:
        sender.run(db, config.mail.smtp, stop, once=once, lock=sender.lock_file(config.database))


def _reparse(config: Config, stop: threading.Event, once: bool) -> None:
    if once:  # what agents asked for; healing older versions is the running daemon's
        with closing(open_db(config.database)) as db:
            reparse.answer_requests(db)
    else:
        reparse.background(config.database, stop)


def _sync(db: sqlite_utils.Database, config: Config) -> None:
    """The rules ingest classifies with, and the recurring windows: only the daemon and
    `desk window sync` materialise them. The SLA policy new tickets are held to."""
    recurrence.sync(
        db, config.maintenance, str(config.path.resolve()), notice_schedule.SCHEDULER_ACTOR
    )
    with write(db):
        sla.sync(db, config.sla)


def _prepare(config: Config) -> int:
    """Register the sources and the maintenance rules; returns the mails waiting in the outbox."""
    with closing(open_db(config.database, access=config.database_access)) as db:
        with write(db):
            caught_up = search_index.catch_up(db)
        if caught_up:
            log.warning(
                "%d message(s) stored by an older desk-ingest indexed for search", caught_up
            )
        for source in config.sources:
            sources.register(db, source.name, source.kind, source.function)
        _sync(db, config)
        return outbox.counts(db).get("queued", 0)


def _prepare_until_ready(config: Config, stop: threading.Event, once: bool) -> int | None:
    """`_prepare()`, again with backoff while the database refuses (read-only, locked, full);
    None if stopped first. Raises DeskError naming the fault with `once`, or after
    `[ingest] give_up_minutes`."""
    backoff = Backoff(cap=config.retry_cap_seconds)
    started = time.monotonic()
    while not stop.is_set():
        try:
            waiting = _prepare(config)
        except (sqlite3.Error, OSError) as exc:
            fault = describe(exc, config.database)
            log.debug("preparing the database failed", exc_info=True)
            if once or time.monotonic() - started >= config.give_up_minutes * 60:
                raise DeskError(fault) from None
            kept = {"state": "backing-off", "error": fault, "error_at": clock.now_iso()}
            sources.save_unwritten(config.database, {s.name: kept for s in config.sources})
            wait = backoff.next_delay()
            log.error("%s; trying again in %.1f s", fault, wait)
            stop.wait(wait)
        else:
            if backoff.failures:
                sources.save_unwritten(config.database, {})  # the database has the news again
            return waiting
    return None


def run(config: Config, *, once: bool, stop: threading.Event | None = None) -> bool:
    """Run every source until `stop` (or, with `once`, until each is read); False if one failed
    or if no source made progress for `[ingest] give_up_minutes`. Raises DeskError if the
    database cannot be prepared (see `_prepare_until_ready`)."""
    stop = stop or threading.Event()
    sources.save_unwritten(config.database, {})  # reserves its space while the disk has room
    waiting = _prepare_until_ready(config, stop, once)
    if waiting is None:
        return True
    if waiting and config.mail.smtp is None:
        log.warning(
            "%s: %d mail(s) wait in the outbox but there is no [smtp] to send them through",
            config.path,
            waiting,
        )
    if not config.sources:
        log.warning("%s: no [[source]] configured; nothing to read", config.path)
    memory.limit_arenas()  # before the threads start: see ingest/memory.py
    pool = make_pool()
    failed: list[str] = []
    health = Health(config.database, tuple(s.name for s in config.sources))
    read_ahead = threading.Semaphore(read_ahead_slots(pool))  # shared: see ingest/pipeline.py
    threads = [
        threading.Thread(
            target=_source_thread,
            args=(config, s, pool, stop, once, failed, health, read_ahead),
            name=s.name,
            daemon=True,
        )
        for s in config.sources
    ]

    def background(name: str, body: Callable[[], None]) -> threading.Thread:
        return threading.Thread(
            target=_background,
            args=(config, name, body, stop, once, failed, health),
            name=name,
            daemon=True,
        )

    notices = background("notices", lambda: _notices(config, stop, once))
    threads.append(notices)
    threads.append(background("reparse", lambda: _reparse(config, stop, once)))
    if config.publish.dir is not None:
        first = [notices] if once else []  # with --once, publish what the notices issued
        threads.append(background("publish", lambda: _publish(config, stop, once, first)))
    if config.mail.smtp is not None:
        before = list(threads) if once else []  # with --once, send what the others queued
        threads.append(background("sender", lambda: _send(config, stop, once, before)))
    for thread in threads:
        thread.start()
    notify = Notifier()
    if not once:
        notify.send(READY=1, STATUS=health.summary())
    beat = 0.0  # when the watchdog was last told the daemon is well
    try:
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(timeout=0.2)
            if not once and health.stalled(config.give_up_minutes * 60):
                log.error(
                    "no source has made progress for %g minute(s) ([ingest] give_up_minutes); "
                    "exiting so that the service manager starts desk-ingest afresh",
                    config.give_up_minutes,
                )
                failed.append("all sources")
                break
            if notify.watchdog_seconds and time.monotonic() - beat >= notify.watchdog_seconds:
                # Only from here, while sources progress, idle or wait out a fault shorter
                # than give_up_minutes: a hung supervisor stops it, and systemd restarts us.
                notify.send(WATCHDOG=1, STATUS=health.summary())
                beat = time.monotonic()
    finally:
        stop.set()
        notify.send(STOPPING=1, STATUS="stopping: finishing the batches in hand")
        for thread in threads:
            thread.join()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        notify.close()
    return not failed


def _take_lock(database: Path) -> IO[str]:
    """The lock one desk-ingest holds on `database` while it runs, `<database>.ingest.lock`,
    with its pid written in it; released by the kernel however the process ends. Raises
    DeskError naming the holder if another desk-ingest has it: two would read every source
    twice over."""
    path = sources.ingest_lock_file(database)
    path.parent.mkdir(parents=True, exist_ok=True)  # as opening the database would
    held = open(path, "a+")  # noqa: SIM115 - held open until the process ends
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        held.seek(0)
        pid = held.read().strip()
        held.close()
        raise DeskError(
            f"another desk-ingest{f' (pid {pid})' if pid else ''} is already reading into "
            f"{database} ({path} is locked); stop it first, or give this one another database"
        ) from None
    held.truncate(0)
    held.write(f"{os.getpid()}\n")
    held.flush()
    return held


def _check_smtp(config: Config, to: str) -> int:
    smtp = config.mail.smtp
    if smtp is None:
        print(f"desk-ingest: no [smtp] in {config.path}; mail waits in the outbox", file=sys.stderr)
        return 2
    sender_addr = config.mail.senders.get("general") or next(iter(config.mail.senders.values()), "")
    if to and not sender_addr:
        print("desk-ingest: no address to send the test from: set [addresses]", file=sys.stderr)
        return 2
    try:
        print(sender.check(smtp, sender_addr, to or None))
    except (OSError, smtplib.SMTPException, secrets.SecretError) as exc:
        print(f"desk-ingest: {sender.explain(smtp, exc)}", file=sys.stderr)
        return 1
    return 0


def _scope(args: argparse.Namespace) -> Scope:
    if args.all:
        return Scope()
    if args.unparsed:
        return Scope(unparsed=True)
    if args.since:
        try:
            return Scope(since=clock.iso(clock.parse(args.since)))
        except ValueError:
            raise DeskError(
                f"--since {args.since!r} is not a date; write it as 2026-11-01 or 2026-11-01T08:00"
            ) from None
    return reparse.outdated()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="desk-ingest",
        description="Read the support mailboxes into the desk's database.",
        epilog="example: desk-ingest --config config.toml --once",
    )
    parser.add_argument(
        "--config",
        help="config file (default: $DESK_CONFIG, ./config.toml, "
        "then ~/.config/valuit-desk/config.toml)",
    )
    parser.add_argument("--once", action="store_true", help="ingest what is there, then exit")
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="overrides [ingest] log_level",
    )
    parser.add_argument(
        "--check-smtp",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="connect and log in to [smtp] as the daemon would, and say how it went; with "
        "ADDRESS, also send it a test mail",
    )
    parser.add_argument(
        "--reparse",
        action="store_true",
        help="read stored incoming mail again with this version's parser and update it in place "
        "(default: what an older version read), printing what changed; then exit",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="with --reparse: every message")
    which.add_argument(
        "--unparsed", action="store_true", help="with --reparse: messages that could not be parsed"
    )
    which.add_argument(
        "--since", metavar="DATE", help="with --reparse: messages received since DATE (ISO 8601)"
    )
    parser.add_argument("--dry-run", action="store_true", help="with --reparse: change nothing")
    parser.add_argument("--json", action="store_true", help="with --reparse: print JSON")
    args = parser.parse_args(argv)
    chosen = args.all or args.unparsed or args.since or args.dry_run or args.json
    if chosen and not args.reparse:
        parser.error("--all, --unparsed, --since, --dry-run and --json go with --reparse")
    try:
        config = load(args.config)
        scope = _scope(args) if args.reparse else None
    except DeskError as exc:
        print(f"desk-ingest: {exc.message}", file=sys.stderr)
        return 2
    if args.check_smtp is not None:
        return _check_smtp(config, args.check_smtp)
    if scope is not None:
        try:
            return reparse.command(
                config.database, scope, dry_run=args.dry_run, json_out=args.json, out=sys.stdout
            )
        except KeyboardInterrupt:
            return 130  # what was read again is committed; running it again goes on
        except BrokenPipeError:
            # The reader went away (`desk-ingest --reparse | head`): what was printed is
            # committed; stop quietly, keeping Python's flush at exit from failing too.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 128 + signal.SIGPIPE
    logging.basicConfig(
        level=(args.log_level or config.log_level).upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        lock = _take_lock(config.database)
    except (DeskError, OSError) as exc:
        message = (
            exc.message
            if isinstance(exc, DeskError)
            else f"cannot take the lock beside {config.database}: {exc.strerror} ({exc.filename})"
        )
        print(f"desk-ingest: {message}", file=sys.stderr)
        return 1
    log.info("starting with %d source(s), database %s", len(config.sources), config.database)
    for line in privacy.warnings(config.database, config.database_access):
        log.warning("%s", line)
    try:
        with lock:
            ok = run(config, once=args.once, stop=stop)
    except DeskError as exc:
        log.error("%s", exc.message)
        return 1
    except (sqlite3.Error, OSError) as exc:  # one line here; the traceback at --log-level debug
        log.debug("desk-ingest stopped", exc_info=True)
        log.error("%s", describe(exc, config.database))
        return 1
    log.info("stopped")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
