"""`desk publish [DIR]`: write the status site for the platform's users into DIR (default:
`[publish] dir`) once; `desk-ingest` keeps `[publish] dir` current on its own."""

from __future__ import annotations

import argparse
from pathlib import Path

from db.core.errors import DeskError
from publish import site
from tui.cli import ops


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "publish",
        help="write the status site (status page, status.json, feed, calendar, release notes, "
        "reports) into a directory",
        description="Write the static status site for the platform's users: index.html (windows "
        "in force and coming, what is unavailable, updates, the banner, the last 90 days), "
        "status.json, feed.atom, windows.ics, release-notes/ and reports/. Each file is replaced "
        "atomically, so a web server never serves a half-written one. It only reads the "
        "database. desk-ingest keeps [publish] dir current within a minute of any change.",
        epilog="example: desk publish /var/www/status\n"
        "         desk publish                (into [publish] dir)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dir", nargs="?", type=Path, help="the directory (default: [publish] dir)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config, db = ops.opened(args)
    directory = args.dir or config.publish.dir
    if directory is None:
        raise DeskError(
            f"Name the directory (desk publish DIR) or set [publish] dir in {config.path}."
        )
    changed = site.publish(db, directory, config.publish.url)
    print(f"Published the status site in {directory}: {len(changed)} file(s) changed.")
    return 0
