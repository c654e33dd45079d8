"""`desk subscribers …`: who gets maintenance notices by email: list, add, remove, import.

The addresses in `[notices] subscribers` of the configuration are listed with the ones added
here, but only the configuration can drop them. Whoever unsubscribed (by the List-Unsubscribe
mail or one-click link of a notice, or `remove`) is listed after them with when and how they
left, and gets no notices even when the configuration lists them; `add` takes them back.
Adding or importing carries on past an entry that is not an address, names it on stderr, and
exits 2 so a script notices.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sqlite_utils

from db.core.config import Config
from db.core.errors import DeskError
from db.mailout import subscribers
from tui import safe
from tui.cli import ops

EPILOG = """\
example: desk subscribers add 'Dana Lee <dana@example.com>' ops@example.com
         desk subscribers import people.txt      (one address a line, '#' comments)
         desk subscribers list --json | jq -r '.[] | select(.left_at == null) | .addr'
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "subscribers",
        help="who gets maintenance notices by email: list, add, remove, import",
        description="The people every maintenance notice is mailed to: those in [notices] "
        "subscribers of the configuration and those added here.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="subscribers_command", metavar="ACTION", required=True)

    p = ops.command(
        sub,
        "list",
        "every subscriber and where it comes from, then who left and when",
        "desk subscribers list --json",
    )
    ops.add_json(p)
    p.set_defaults(handler=run_list)

    p = ops.command(
        sub,
        "add",
        "subscribe addresses, written 'Name <address>' or 'address'",
        "desk subscribers add 'Dana Lee <dana@example.com>' ops@example.com",
    )
    p.add_argument("entries", nargs="+", metavar="ADDR")
    p.set_defaults(handler=run_add)

    p = ops.command(
        sub,
        "remove",
        "unsubscribe an address added here (config ones are removed in the config)",
        "desk subscribers remove dana@example.com",
    )
    p.add_argument("addr", metavar="ADDR")
    p.set_defaults(handler=run_remove)

    p = ops.command(
        sub,
        "import",
        "subscribe the addresses in a file: one a line, '#' comments and blank lines skipped",
        "desk subscribers import people.txt",
    )
    p.add_argument("file", type=Path, metavar="FILE")
    p.set_defaults(handler=run_import)


_VIA = {"mail": "by mail", "web": "by the one-click link", "desk": "removed"}


def run_list(args: argparse.Namespace) -> int:
    config, db = ops.opened(args)
    people = subscribers.listing(db, config.mail)
    gone = subscribers.departed(db, config.mail)
    if args.json:
        # One list: the subscribers (left_at null), then who left.
        ops.print_json(
            [{**p, "left_at": None, "left_via": None, "left_by": None} for p in people]
            + [
                {
                    "addr": g["addr"],
                    "name": "",
                    "added_at": None,
                    "origin": "config" if g["in_config"] else "desk",
                    "added_by": None,
                    **{k: g[k] for k in ("left_at", "left_via", "left_by")},
                }
                for g in gone
            ]  # fmt: skip
        )
        return 0
    if not people:
        print(
            "No subscribers: `desk subscribers add ADDR` adds one, or list them in "
            f"[notices] subscribers of {config.path}."
        )
    for person in people:
        added = (
            f"  (added {person['added_at'][:10]} by {safe.visible(person['added_by'])})"
            if person["origin"] == "desk"
            else ""
        )
        line = f"{safe.visible(person['addr']):<34}{person['origin']:<8}"
        print(f"{line}{safe.visible(person['name'])}{added}".rstrip())
    for g in gone:
        by = f" {safe.visible(g['left_by'])}" if g["left_via"] == "desk" else ""
        still = "  (still in [notices] subscribers; remove it there)" if g["in_config"] else ""
        when = g["left_at"][:16].replace("T", " ")
        print(f"{safe.visible(g['addr']):<34}left    {when} UTC {_VIA[g['left_via']]}{by}{still}")
    return 0


def _addresses(db: sqlite_utils.Database, config: Config) -> set[str]:
    return {person["addr"] for person in subscribers.listing(db, config.mail)}


def _added(before: set[str], after: set[str], given: int, refused: int) -> str:
    """'Added 2 subscribers; 1 was already subscribed.': what changed for the reader, so an
    address already in the config does not count as added."""
    new = len(after - before)
    already = given - refused - new
    noun = "subscriber" if new == 1 else "subscribers"
    return f"Added {new} {noun}" + (f"; {already} already subscribed." if already else ".")


def run_add(args: argparse.Namespace) -> int:
    config, db = ops.opened(args)
    before = _addresses(db, config)
    _, refused = subscribers.add(db, args.entries, ops.actor())
    for why in refused:
        print(f"desk: refused {safe.visible(why)}", file=sys.stderr)
    print(_added(before, _addresses(db, config), len(args.entries), len(refused)))
    return 2 if refused else 0


def run_remove(args: argparse.Namespace) -> int:
    config, db = ops.opened(args)
    subscribers.remove(db, args.addr, config.mail, ops.actor())
    print(f"Removed {safe.visible(args.addr.strip().lower())}; it gets no further notices.")
    return 0


def _entries(text: str) -> list[tuple[int, str]]:
    """The numbered entries of an import file: blank lines and '#' comments left out."""
    numbered = []
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.strip()
        if entry and not entry.startswith("#"):
            numbered.append((number, entry))
    return numbered


def run_import(args: argparse.Namespace) -> int:
    config, db = ops.opened(args)
    try:
        text = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise DeskError(f"Cannot read {args.file}: {why}.") from exc
    found = _entries(text)
    before = _addresses(db, config)
    _, refused = subscribers.add_numbered(db, found, ops.actor())
    for number, why in refused:
        print(f"desk: {args.file}, line {number}: refused {safe.visible(why)}", file=sys.stderr)
    print(_added(before, _addresses(db, config), len(found), len(refused)))
    return 2 if refused else 0
