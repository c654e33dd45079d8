"""`desk stats`: counts of messages, tickets and outgoing mail, SLA figures per function and each
source's health, for ops and tests."""

from __future__ import annotations

import argparse

from db.tickets.stats import summary
from tui.cli import ops
from tui.safe import visible


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stats",
        help="counts and source health",
        description="Counts of messages, tickets and outgoing mail, and each mail source's state.",
        epilog="example: desk stats --json | jq .sources",
    )
    ops.add_json(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config, db = ops.read_only(args)
    data = summary(db)
    if args.json:
        ops.print_json(data)
        return 0
    print(
        f"messages {data['messages']}  tickets {data['tickets']}  unparsed {data['unparsed']}"
        f"  auto-replies {data['auto_replies']}  bounces {data['bounces']}"
        f"  delay notices {data['delay_notices']}  read receipts {data['read_receipts']}"
        f"  via list {data['via_list']}"
    )
    for status, count in sorted(data["tickets_by_status"].items()):
        print(f"  {status:10} {count}")
    print("outbox  " + "  ".join(f"{status} {count}" for status, count in data["outbox"].items()))
    for function, sla in data["sla"].items():
        first, resolution = sla["first_response"], sla["resolution"]
        median = sla["median_first_response_minutes"]
        print(
            f"sla {function:10} first response met {first['met']} breached {first['breached']}"
            f"  resolution met {resolution['met']} breached {resolution['breached']}"
            f"  median first response {'-' if median is None else f'{median:g} min'}"
        )
    for src in data["sources"]:
        # The error text comes from a remote server: shown, never interpreted by the terminal.
        error = f"  last error: {visible(src['last_error'])}" if src["last_error"] else ""
        print(f"source {src['name']}: {src['state']}, last success {src['last_success']}{error}")
    return 0
