"""`desk export [QUERY] --format json|csv|mbox`: tickets out of the desk for other tools.

- json: JSON Lines (https://jsonlines.org), one ticket a line with its `messages`; a line is a
  whole ticket, so a reader can stream it as we write it.
- csv: one row per ticket (RFC 4180 quoting, a header row), no messages.
- mbox: the stored messages as they were received, in mboxrd form (a `From ` line before each,
  and every line of a message that starts with `>*From ` given one more `>`), so a mail client
  or `mailbox.mbox` reads them back; messages of one ticket follow each other in thread order.

Rows are read and written one ticket at a time (`db.tickets.export`): memory stays flat at
100,000 tickets. A file is written owner-only (0600) under a temporary name and takes its name
only when complete, never replacing a file without --force.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from db.core import clock
from db.core.errors import DeskError
from db.core.privacy import owner_only
from db.tickets import export, search
from tui import safe, settings
from tui.cli import ops

FORMATS = ("json", "csv", "mbox")
# mboxrd: a line starting with any number of '>' and then "From " gets one more '>'
# (https://www.loc.gov/preservation/digital/formats/fdd/fdd000385.shtml).
_FROM_LINE = re.compile(rb"^(>*From )", re.MULTILINE)
_ENVELOPE = re.compile(r"[!-~]+@[!-~]+")  # an address fit for the From_ line: no space, ASCII


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write tickets as JSON Lines, CSV or an mbox",
        description="Write the tickets a query finds (all without one; the syntax of `/`), by\n"
        "ticket number: json gives JSON Lines, one ticket a line with its messages; csv one\n"
        "row a ticket; mbox the raw messages as received (mboxrd). Memory stays flat.",
        epilog="example: desk export --format mbox --output desk.mbox\n"
        '         desk export "fn:sales status:closed" --format csv --output sales.csv',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("query", nargs="*", metavar="QUERY", help="which tickets (default: all)")
    parser.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    parser.add_argument(
        "--output", type=Path, metavar="FILE", help="write to FILE (0600) instead of stdout"
    )
    parser.add_argument("--force", action="store_true", help="replace FILE if it exists")
    parser.set_defaults(handler=run)


def json_lines(tickets: Iterator[dict]) -> Iterator[bytes]:
    for ticket in tickets:
        # ASCII: a control code or bidi override from mail stays an escape, even on a terminal.
        yield json.dumps(ticket, ensure_ascii=True).encode() + b"\n"


def csv_rows(tickets: Iterator[dict]) -> Iterator[bytes]:
    """A header row, then a row per ticket; functions and tags joined by commas."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values: Iterable[object]) -> bytes:
        writer.writerow(values)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text.encode()

    yield line(export.TICKET_FIELDS)
    for ticket in tickets:
        ticket["functions"] = ",".join(ticket["functions"])
        ticket["tags"] = ",".join(ticket["tags"])
        yield line(ticket[name] for name in export.TICKET_FIELDS)


def mboxrd(messages: Iterator[tuple[int, str, str, bytes]]) -> Iterator[bytes]:
    for _ticket, sender, received, raw in messages:
        envelope = sender if _ENVELOPE.fullmatch(sender or "") else "MAILER-DAEMON"
        date = time.asctime(clock.parse(received).timetuple())
        body = _FROM_LINE.sub(rb">\1", raw)
        if not body.endswith(b"\n"):
            body += b"\n"
        yield f"From {envelope} {date}\n".encode() + body + b"\n"


def _write(chunks: Iterator[bytes], out: BinaryIO) -> int:
    written = 0
    for chunk in chunks:
        out.write(chunk)
        written += 1
    return written


def _to_file(chunks: Iterator[bytes], path: Path, force: bool) -> int:
    """Write to a hidden file beside `path`, then give it the name: a reader never sees half an
    export, and a crash leaves no file with the wanted name."""
    if path.exists() and not force:
        raise DeskError(f"{path} already exists: choose another path, or pass --force.")
    if path.is_dir():
        raise DeskError(f"{path} is a folder: give a file name.")
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(partial, "xb", opener=owner_only) as out:
            written = _write(chunks, out)
        if force:
            os.replace(partial, path)
        else:
            # A link fails where a file appeared meanwhile; a rename would replace it.
            os.link(partial, path)
    except FileExistsError:
        raise DeskError(f"{path} already exists: choose another path, or pass --force.") from None
    except (FileNotFoundError, PermissionError) as exc:
        raise DeskError(
            f"cannot write {path} ({exc.strerror}): check that its folder exists and is yours."
        ) from exc
    finally:
        partial.unlink(missing_ok=True)
    return written


def run(args: argparse.Namespace) -> int:
    config, db = ops.read_only(args)
    parsed = search.parse(" ".join(args.query), settings.load(config).agent)
    for problem in parsed.problems:
        print(f"desk: {safe.visible(problem)}", file=sys.stderr)
    where = search.where(parsed, clock.now())
    if args.format == "json":
        chunks = json_lines(export.with_messages(db, *where))
    elif args.format == "csv":
        chunks = csv_rows(export.ticket_rows(db, *where))
    else:
        chunks = mboxrd(export.raw_messages(db, *where))
    if args.output is None:
        if args.format != "json" and sys.stdout.isatty():
            # Raw mail and CSV cells carry whatever the sender wrote, control codes included.
            raise DeskError(
                f"{args.format} holds mail as it came, control codes included: "
                "give --output FILE or pipe it to a program."
            )
        _write(chunks, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return 0
    written = _to_file(chunks, args.output, args.force)
    if args.format == "csv":
        written -= 1  # the header
    unit = "messages" if args.format == "mbox" else "tickets"
    print(f"exported {written} {unit} to {args.output}", file=sys.stderr)
    return 0
