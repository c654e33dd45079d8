"""`desk-ingest`: runs every configured source until told to stop, and never dies of a message.

Each source runs in its own thread with its own database connection, so one failing source
never stops the others. Two more threads carry mail out: the notice scheduler issues the
maintenance notices as they fall due, and the sender hands the outbox to `[smtp]`. One more
reads stored mail again with today's parser: what an older version read, after an upgrade, and
what an agent asks for (`ingest/reparse.py`). With `[publish] dir`, one more keeps the status
site there current (`publish/`). SIGTERM or SIGINT sets a stop flag: each finishes
the batch or mail it holds, commits, and returns. `--once` ingests what is there, issues and
sends what is due, reads again what agents asked for, and exits; `--reparse` only reads stored
mail again. One daemon (or `--once`) runs on a database at a time: it holds a lock file beside it.
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
from typing import IO

import sqlite_utils

from db.core import clock, privacy, sla
from db.core.config import Config, Source, load
from db.core.connect import open_db, write
from db.core.errors import DeskError
from db.mailin import sources
from db.mailin.reparse import Scope
from db.mailout import outbox
from db.maintenance import notice_schedule, recurrence
from ingest import imap, maildir, reparse, secrets, sender
from ingest.backoff import Backoff
from ingest.pipeline import Pipeline
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
) -> None:
    """One source under its supervisor (`ingest/supervisor.py`): a fault, the database's
    included, restarts it after a backoff step."""
    db = _open_waiting(config, stop, source.name)
    if db is None:
        return
    reporter = health.for_source(db, source.name)

    def body() -> None:
        _runner(source.kind)(source, Pipeline(db, config, source, pool, reporter), stop, once=once)

    try:
        if not supervise(
            source.name, body, reporter, stop, cap=config.retry_cap_seconds, once=once
        ):
            failed.append(source.name)
    finally:
        db.close()


def _open_waiting(config: Config, stop: threading.Event, who: str):
    """A connection to the database for a thread of the daemon, waited for with backoff while
    the database cannot be opened (locked, full, read-only, gone); None once `stop` is set.
    Without it a fault at the moment a thread starts would end that thread for good."""
    backoff = Backoff(cap=config.retry_cap_seconds)
    while not stop.is_set():
        try:
            return open_db(config.database)
        except Exception as exc:  # noqa: BLE001 - waited out, named in one line
            wait = backoff.next_delay()
            log.error("%s: %s; trying again in %.0f s", who, describe(exc, config.database), wait)
            log.debug("opening the database failed", exc_info=True)
            stop.wait(wait)
    return None


def _notice_thread(config: Config, stop: threading.Event, once: bool) -> None:
    db = _open_waiting(config, stop, "notices")
    if db is None:
        return
    synced = time.monotonic()  # _prepare() has just synced
    try:
        while not stop.is_set():
            try:
                if time.monotonic() - synced >= SYNC_SECONDS:
                    _sync(db, config)
                    synced = time.monotonic()
                notice_schedule.tick(db, config.mail, config.maintenance)
            except Exception:  # noqa: BLE001 - logged; the next tick tries again
                log.exception("materialising recurring windows or issuing notices failed")
            if once:
                return
            stop.wait(NOTICE_SECONDS)
    finally:
        db.close()


def _publish_thread(
    config: Config, stop: threading.Event, once: bool, before: list[threading.Thread]
) -> None:
    """Keep `[publish] dir` current: re-render the status site when the database's digest moves
    (`publish.site.Publisher`); a failure is logged and tried again at the next poll."""
    assert config.publish.dir is not None
    for thread in before:  # with --once, publish what the notices issued, too
        thread.join()
    db = _open_waiting(config, stop, "publish")
    if db is None:
        return
    publisher = Publisher(config.publish.dir, config.publish.url)
    try:
        while not stop.is_set():
            try:
                changed = publisher.refresh(db)
                if changed:
                    log.info(
                        "status site: %d file(s) updated in %s", len(changed), publisher.directory
                    )
            except DeskError as exc:
                log.error("%s", exc.message)
            except Exception:  # noqa: BLE001 - logged; the next poll tries again
                log.exception("publishing the status site failed")
            if once:
                return
            stop.wait(PUBLISH_SECONDS)
    finally:
        db.close()


def _sender_thread(
    config: Config,
    stop: threading.Event,
    once: bool,
    before: list[threading.Thread],
    failed: list[str],
) -> None:
    assert config.mail.smtp is not None
    for thread in before:  # with --once, send what reading and the notices queued, too
        thread.join()
    db = _open_waiting(config, stop, "sender")
    if db is None:
        return
    try:
        lock = sender.lock_file(config.database)
        sender.run(db, config.mail.smtp, stop, once=once, lock=lock)
    except Exception:  # noqa: BLE001 - the sources go on; the outbox keeps the mail
        failed.append("sender")  # exit non-zero, so a supervisor restarts the daemon
        log.exception("the sender stopped by an unexpected error; mail stays in the outbox")
    finally:
        db.close()


def _reparse_thread(config: Config, stop: threading.Event, once: bool) -> None:
    try:
        if once:  # what agents asked for; healing older versions is the running daemon's
            with closing(open_db(config.database)) as db:
                reparse.answer_requests(db)
        else:
            reparse.background(config.database, stop)
    except Exception:  # noqa: BLE001 - new mail goes on; stored mail waits for the next start
        log.exception("reading stored messages again stopped by an unexpected error")


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
    pool = make_pool()
    failed: list[str] = []
    health = Health(config.database)
    threads = [
        threading.Thread(
            target=_source_thread,
            args=(config, s, pool, stop, once, failed, health),
            name=s.name,
            daemon=True,
        )
        for s in config.sources
    ]
    notices = threading.Thread(
        target=_notice_thread, args=(config, stop, once), name="notices", daemon=True
    )
    threads.append(notices)
    threads.append(
        threading.Thread(
            target=_reparse_thread, args=(config, stop, once), name="reparse", daemon=True
        )
    )
    if config.publish.dir is not None:
        threads.append(
            threading.Thread(
                target=_publish_thread,
                args=(config, stop, once, [notices] if once else []),
                name="publish",
                daemon=True,
            )
        )
    if config.mail.smtp is not None:
        threads.append(
            threading.Thread(
                target=_sender_thread,
                args=(config, stop, once, list(threads) if once else [], failed),
                name="sender",
                daemon=True,
            )
        )
    for thread in threads:
        thread.start()
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
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
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
