"""`desk backup PATH`: a checked, owner-only copy of the database, taken while desk-ingest runs."""

from __future__ import annotations

import argparse
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


def run(args: argparse.Namespace) -> int:
    config = load(args.config)
    copy = backup(config.database, args.path, force=args.force)
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
