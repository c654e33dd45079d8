"""`desk-ingest`: runs every configured source until told to stop, and never dies of a message.

Each source runs in its own thread with its own database connection, so one failing source
never stops the others. SIGTERM or SIGINT sets a stop flag: sources finish the batch they hold,
commit it, and return. `--once` ingests what is there and exits.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Executor

from db import recurrence, sources
from db.config import Config, Source, load
from db.connect import open_db
from db.errors import DeskError
from ingest import imap, maildir
from ingest.pipeline import Pipeline, make_pool

log = logging.getLogger("desk.daemon")
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
) -> None:
    db = open_db(config.database)
    try:
        _runner(source.kind)(source, Pipeline(db, config, source, pool), stop, once=once)
    except DeskError as exc:  # the source said why it gave up; no traceback needed
        failed.append(source.name)
        log.error("%s", exc.message)
    except Exception as exc:  # noqa: BLE001 - a source's crash is logged, the others go on
        failed.append(source.name)
        log.exception("%s: stopped by an unexpected error", source.name)
        sources.set_state(db, source.name, "stopped", error=f"{type(exc).__name__}: {exc}")
    finally:
        db.close()


def run(config: Config, *, once: bool, stop: threading.Event | None = None) -> bool:
    """Run every source until `stop` (or, with `once`, until each is read); False if one failed."""
    stop = stop or threading.Event()
    db = open_db(config.database)
    for source in config.sources:
        sources.register(db, source.name, source.kind, source.function)
    recurrence.sync(db, config.maintenance)  # the rules ingest classifies with, and windows
    db.close()
    if not config.sources:
        log.warning("%s: no [[source]] configured; nothing to read", config.path)
    pool = make_pool()
    failed: list[str] = []
    threads = [
        threading.Thread(
            target=_source_thread,
            args=(config, s, pool, stop, once, failed),
            name=s.name,
            daemon=True,
        )
        for s in config.sources
    ]
    for thread in threads:
        thread.start()
    try:
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(timeout=0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return not failed


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
    args = parser.parse_args(argv)
    try:
        config = load(args.config)
    except DeskError as exc:
        print(f"desk-ingest: {exc.message}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=(args.log_level or config.log_level).upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log.info("starting with %d source(s), database %s", len(config.sources), config.database)
    try:
        ok = run(config, once=args.once, stop=stop)
    except DeskError as exc:
        log.error("%s", exc.message)
        return 1
    log.info("stopped")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
