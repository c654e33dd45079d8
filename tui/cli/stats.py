"""`desk stats`: counts of messages and tickets and each source's health, for ops and tests."""

from __future__ import annotations

import argparse
import json

from db.config import load
from db.connect import open_db
from db.stats import summary


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stats",
        help="counts and source health",
        description="Counts of messages and tickets, and each mail source's state.",
        epilog="example: desk stats --json | jq .sources",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    db = open_db(load(args.config).database)
    data = summary(db)
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    print(
        f"messages {data['messages']}  tickets {data['tickets']}  unparsed {data['unparsed']}"
        f"  auto-replies {data['auto_replies']}  bounces {data['bounces']}"
    )
    for status, count in sorted(data["tickets_by_status"].items()):
        print(f"  {status:10} {count}")
    for src in data["sources"]:
        error = f"  last error: {src['last_error']}" if src["last_error"] else ""
        print(f"source {src['name']}: {src['state']}, last success {src['last_success']}{error}")
    return 0
