"""What the ops commands (`desk now`, `desk window …`, `desk discrepancies`, `desk outbox …`,
`desk subscribers …`) share: opening the database (in step with the config), who is acting,
reading times and windows, printing."""

from __future__ import annotations

import argparse
import getpass
import json
import os
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlite_utils

from db.core import clock
from db.core.config import Config, load
from db.core.connect import open_db, open_reader
from db.core.errors import DeskError
from db.maintenance import windows
from tui import safe

JSON_HELP = "print JSON for scripts"


def opened(args: argparse.Namespace) -> tuple[Config, sqlite_utils.Database]:
    """The config and the database as they are, for commands that change something. Recurring
    rules are materialised only by the daemon and `desk window sync`."""
    config = load(args.config)
    return config, open_db(config.database, access=config.database_access)


def read_only(args: argparse.Namespace) -> tuple[Config, sqlite_utils.Database]:
    """The config and the database opened read-only, for commands that only read: one that
    tried to write would fail rather than change anything (issue 13)."""
    config = load(args.config)
    return config, open_reader(config.database, access=config.database_access)


def actor() -> str:
    """Who is acting, for the audit trail: `DESK_USER`, else the login name."""
    return os.environ.get("DESK_USER") or getpass.getuser()


def zone_of(args: argparse.Namespace, config: Config) -> str:
    """`--zone`, else the `[maintenance]` zone."""
    name = getattr(args, "zone", None) or config.maintenance.zone
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DeskError(f"{name!r} is not an IANA time zone (e.g. Europe/London).") from exc
    return name


def when(text: str, zone: str) -> datetime:
    """A user's time: with an offset or Z it is absolute; without, it is local time in `zone`."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise DeskError(f"{text!r} is not a time; write it as 2026-12-06 02:00.") from exc
    if moment.tzinfo is not None:
        return clock.parse(moment.isoformat())
    local = moment.replace(tzinfo=ZoneInfo(zone))
    instant = clock.parse(local.isoformat())
    if instant.astimezone(ZoneInfo(zone)).replace(tzinfo=None) != moment:
        raise DeskError(f"{text} does not exist in {zone} (the clocks skip it); pick another time.")
    return instant


def features(text: str | None) -> tuple[str, ...]:
    """'Trading, Statements' → ('Trading', 'Statements')."""
    return tuple(f.strip() for f in (text or "").split(",") if f.strip())


def command(
    sub: argparse._SubParsersAction, name: str, summary: str, example: str
) -> argparse.ArgumentParser:
    """A subcommand whose --help says what it does and shows an example."""
    return sub.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog=f"example: {example}",
    )


def window_ref(text: str) -> int:
    """`windows.ref` for argparse, which reports a bad value with the usage line."""
    try:
        return windows.ref(text)
    except DeskError as exc:
        raise argparse.ArgumentTypeError(exc.message) from exc


def window_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("window", type=window_ref, help="the window, e.g. W12")


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help=JSON_HELP)


def add_zone(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--zone", help="show times in this IANA zone (default: [maintenance] zone)")


def print_json(data: Any) -> None:
    # ASCII only: JSON's \u escapes keep a C1 control or a bidi override from mail (a subject,
    # a server's error) from reaching the terminal raw, and parse back to the same text.
    print(json.dumps(data, indent=2, ensure_ascii=True))


def local(moment: datetime, zone: str, fmt: str = "%a %Y-%m-%d %H:%M %Z") -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime(fmt)


def local_span(start: datetime, end: datetime, zone: str) -> str:
    """'Sun 2026-04-05 02:00–04:00 BST', with the end's date when it is another day and the
    start's own zone label when the clocks change in between (00:30 BST–02:30 GMT)."""
    a, b = start.astimezone(ZoneInfo(zone)), end.astimezone(ZoneInfo(zone))
    tail = local(end, zone, "%H:%M %Z" if a.date() == b.date() else "%a %Y-%m-%d %H:%M %Z")
    head = "%a %Y-%m-%d %H:%M" + (" %Z" if a.tzname() != b.tzname() else "")
    return f"{local(start, zone, head)}–{tail}"


def window_line(w: windows.Window, now: datetime, zone: str) -> str:
    """One line per window: id, state, kind, type, local start–end, title, flags."""
    notes = [
        *w.flags,
        *([w.rule_gone] if w.rule_gone else []),
        *(["report due"] if w.report_due(now) else []),
    ]
    extra = f"  [{'; '.join(notes)}]" if notes else ""
    return (
        f"{w.label:<6}{w.status(now):<12}{w.kind:<10}{w.update_type:<12}"
        f"{local_span(w.start, w.ends, zone)}  "
        f"{safe.visible(w.title)}{extra}"
    )


def force_reason(args: argparse.Namespace) -> str | None:
    """The recorded reason for breaking the notice rule: `--force` and `--reason` go together."""
    if args.force and not args.reason:
        raise DeskError("--force needs --reason TEXT saying why the notice rule is broken.")
    if args.reason and not args.force:
        raise DeskError("--reason goes with --force; without --force the notice rule holds.")
    return args.reason if args.force else None


def print_notices(shown: list[dict[str, Any]]) -> None:
    """Notices as a reader gets them: the email with its subject, the dashboard banner."""
    for n in shown:
        body = safe.visible(n["body"], multiline=True)
        if n["channel"] == "email":
            print(f"Subject: {safe.visible(n['subject'])}\n\n{body}")
        else:
            print(f"Banner: {body}")
