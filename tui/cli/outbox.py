"""`desk outbox …`: the mail the desk sends (replies, acknowledgements, notices): list it, read
one as it will go out, queue a failed one again, or withdraw one not yet sent.

desk-ingest sends what is queued through `[smtp]`; without that section mail waits in the
queue, and these commands say so.
"""

from __future__ import annotations

import argparse
import sys
from email import message_from_bytes, policy
from typing import Any

import sqlite_utils

from db.core.config import Config
from db.core.migrations import OUTBOX_STATUSES
from db.mailout import outbox
from tui import safe
from tui.cli import ops

EPILOG = """\
example: desk outbox --status queued,failed
         desk outbox show 17
         desk outbox retry 17
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "outbox",
        help="mail the desk sends: list, show, retry, cancel",
        description="The outgoing mail: replies, acknowledgements and notices, newest first, "
        "with where each stands (queued, sending, sent, failed, cancelled).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _list_options(parser, inherit=False)
    parser.set_defaults(handler=run_list)
    sub = parser.add_subparsers(dest="outbox_command", metavar="ACTION")

    p = ops.command(
        sub, "list", "mails newest first (the default action)", "desk outbox list --status failed"
    )
    _list_options(p, inherit=True)
    p.set_defaults(handler=run_list)

    p = ops.command(
        sub, "show", "one mail's headers and text, as it goes out", "desk outbox show 17"
    )
    _id_arg(p)
    ops.add_json(p)
    p.set_defaults(handler=run_show)

    p = ops.command(
        sub, "retry", "queue a failed or cancelled mail again, now", "desk outbox retry 17"
    )
    _id_arg(p)
    p.set_defaults(handler=run_retry)

    p = ops.command(sub, "cancel", "withdraw a queued mail", "desk outbox cancel 17")
    _id_arg(p)
    p.set_defaults(handler=run_cancel)


def _statuses(text: str) -> list[str]:
    found = [s.strip() for s in text.split(",") if s.strip()]
    for status in found:
        if status not in OUTBOX_STATUSES:
            raise argparse.ArgumentTypeError(
                f"{status!r} is not a mail status; use {', '.join(OUTBOX_STATUSES)}"
            )
    return found


def _limit(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return int(text)


def _list_options(parser: argparse.ArgumentParser, *, inherit: bool) -> None:
    """--status, --limit and --json; with `inherit` (on `list`), an option not given there
    keeps what `desk outbox` read before the action, as in `desk outbox --json list`."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if inherit else value

    parser.add_argument(
        "--status",
        type=_statuses,
        action="append",
        default=default(None),
        metavar="STATUS[,STATUS]",
        help=f"only mails in these states ({', '.join(OUTBOX_STATUSES)}); may be repeated",
    )
    parser.add_argument(
        "--limit", type=_limit, default=default(100), metavar="N", help="at most N (default 100)"
    )
    parser.add_argument("--json", action="store_true", default=default(False), help=ops.JSON_HELP)


def _id_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", type=int, metavar="ID", help="the mail's number in `desk outbox`")


def warn_unsent(config: Config, queued: int) -> None:
    """Say that queued mail is going nowhere when there is no server to send it to."""
    if queued and config.mail.smtp is None:
        print(f"desk: no [smtp] in {config.path}: queued mail is not sent.", file=sys.stderr)


def mailed(queued: int) -> str:
    """'2 mails queued to the subscribers', or why none were."""
    if not queued:
        return "no mail queued (no subscribers; `desk subscribers add` adds them)"
    return f"{queued} mail{'' if queued == 1 else 's'} queued to the subscribers"


def _stamp(at: str) -> str:
    """'2026-06-01T10:00:00.000Z' → '2026-06-01 10:00Z'."""
    return f"{at[:10]} {at[11:16]}Z"


def _when(row: dict[str, Any]) -> str:
    """When a queued mail is tried next, or when a sent one went; '' otherwise."""
    if row["status"] == "queued":
        return f"next {_stamp(row['next_attempt_at'])}"
    if row["status"] == "sent" and row["sent_at"]:
        return f"sent {_stamp(row['sent_at'])}"
    return ""


def _line(row: dict[str, Any]) -> str:
    # Addresses, subjects and server replies come from outside: shown, never interpreted.
    error = f"  [{safe.visible(row['last_error'])}]" if row["last_error"] else ""
    return (
        f"{row['id']:>5} {row['kind']:<7}{row['status']:<10}{safe.visible(row['rcpt']):<30} "
        f"{row['attempts']:>5}  {_when(row) or '-':<23}{safe.visible(row['subject'])}{error}"
    )


def run_list(args: argparse.Namespace) -> int:
    config, db = ops.opened(args)
    statuses = tuple(dict.fromkeys(s for group in args.status or () for s in group))
    rows = outbox.listing(db, statuses, args.limit)
    if args.json:
        ops.print_json(rows)
    elif rows:
        print(f"{'ID':>5} {'KIND':<7}{'STATUS':<10}{'TO':<30} {'TRIES':>5}  {'WHEN':<23}SUBJECT")
        for row in rows:
            print(_line(row))
    else:
        which = f" {' or '.join(statuses)}" if statuses else ""
        print(f"No{which} mail in the outbox.")
    warn_unsent(config, outbox.counts(db).get("queued", 0))
    return 0


def _read(
    db: sqlite_utils.Database, outbox_id: int
) -> tuple[dict[str, Any], list[tuple[str, str]], str]:
    """The mail's outbox row (without its bytes), its headers, and its text."""
    row = outbox.get(db, outbox_id)
    msg = message_from_bytes(row.pop("raw"), policy=policy.default)
    body = msg.get_body(preferencelist=("plain",))
    # Stored as it goes on the wire, with CRLF line ends; read with the newlines we print.
    text = body.get_content().replace("\r\n", "\n") if body is not None else "(no text part)"
    return row, [(name, str(value)) for name, value in msg.items()], text


def run_show(args: argparse.Namespace) -> int:
    _, db = ops.opened(args)
    row, headers, text = _read(db, args.id)
    if args.json:
        ops.print_json({**row, "headers": headers, "text": text})
        return 0
    about = [f"ticket #{row['ticket_id']}"] if row["ticket_id"] else []
    about += [f"window W{row['window_id']}"] if row["window_id"] else []
    when = f"; {_when(row)}" if _when(row) else ""
    print(
        f"Mail {row['id']}: {row['kind']}{''.join(f', {a}' for a in about)}; {row['status']}, "
        f"{row['attempts']} attempt{'' if row['attempts'] == 1 else 's'}{when}"
    )
    if row["last_error"]:
        print(f"last error: {safe.visible(row['last_error'])}")
    print()
    for name, value in headers:
        print(f"{name}: {safe.visible(value)}")
    print()
    print(safe.visible(text, multiline=True), end="" if text.endswith("\n") else "\n")
    return 0


def run_retry(args: argparse.Namespace) -> int:
    config, db = ops.opened(args)
    outbox.retry(db, args.id, ops.actor())
    row = outbox.get(db, args.id)
    print(f"Mail {row['id']} to {safe.visible(row['rcpt'])} is queued again.")
    warn_unsent(config, 1)
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    _, db = ops.opened(args)
    outbox.cancel(db, args.id, ops.actor())
    row = outbox.get(db, args.id)
    print(f"Cancelled mail {row['id']} to {safe.visible(row['rcpt'])}; it will not be sent.")
    return 0
