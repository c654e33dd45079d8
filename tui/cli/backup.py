"""`desk backup PATH`: a checked, owner-only copy of the database, taken while desk-ingest runs."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from db.core.backup import backup
from db.core.config import load


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "backup",
        help="copy the database safely while desk-ingest runs",
        description="Copy the database to PATH while desk-ingest may be writing to it (SQLite's "
        "online backup), check the copy with PRAGMA integrity_check, and only then give it the "
        "name PATH. The copy is readable by its owner only (0600).",
        epilog="example: desk backup /var/backups/valuit-desk/desk-$(date +%F).db",
    )
    parser.add_argument("path", type=Path, metavar="PATH", help="file to write the copy to")
    parser.add_argument("--force", action="store_true", help="replace PATH if it exists")
    parser.set_defaults(handler=run)


class _Stopped(Exception):
    """A SIGTERM or SIGINT arrived during the backup: raised where Python next runs, so the
    temporary copy is removed on the way out (`db.core.backup.backup`)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, _frame: object) -> None:
    raise _Stopped(signum)


def run(args: argparse.Namespace) -> int:
    config = load(args.config)
    # SIGTERM's default would end the process on the spot, leaving the hidden temporary copy.
    previous = {signum: signal.signal(signum, _stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        copy = backup(config.database, args.path, force=args.force)
    except _Stopped as stopped:
        name = signal.Signals(stopped.signum).name
        print(
            f"desk backup: stopped by {name}; no copy was written and {args.path} is as it was",
            file=sys.stderr,
        )
        return 128 + stopped.signum
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print(
        f"backed up {config.database} to {copy.path}: {_size(copy.size)}, "
        f"{copy.messages} messages, {copy.tickets} tickets, integrity ok, "
        f"in {copy.seconds:.1f} s"
    )
    return 0


def _size(size: int) -> str:
    """Bytes as a person reads them: 812 KiB, 3.4 MiB, 1.2 GiB."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{max(1, round(size / 1024))} KiB"
