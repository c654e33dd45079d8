"""`desk search QUERY`: the desk's `/` search from the command line, for scripts and quick looks.

The query is read by the same parser as in the desk (`db.tickets.search`), so `fn:sales
status:open printer` finds here what it finds there, newest activity first.
"""

from __future__ import annotations

import argparse
import sys

from db.core import clock
from db.tickets import search, tickets
from tui import safe, settings
from tui.cli import ops
from tui.format import count_text, local

CAP = tickets.COUNT_CAP


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search",
        help="find tickets with the desk's search syntax",
        description="List the tickets a query finds, newest activity first, as `/` does in the\n"
        "desk: filters (fn:, status:, priority:, assignee:me, is:unassigned, age:>2h, #42 …)\n"
        "and free text, in any script. The count stops at 1,000+.",
        epilog='example: desk search "fn:technical status:open printer"\n'
        "         desk search 打印机 --json | jq '.tickets[].id'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("query", nargs="+", metavar="QUERY", help="what to look for")
    parser.add_argument(
        "--limit", type=int, default=50, metavar="N", help="list at most N tickets (default 50)"
    )
    ops.add_json(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config, db = ops.read_only(args)
    desk = settings.load(config)
    parsed = search.parse(" ".join(args.query), desk.agent)
    for problem in parsed.problems:
        print(f"desk: {safe.visible(problem)}", file=sys.stderr)
    # The list's tickets, as `/` in the desk finds them: merged ones only when asked for.
    where = search.where(parsed, clock.now(), db, hide_merged=True)
    rows, found = tickets.first_page(db, *where, "newest", max(0, args.limit), CAP)
    if args.json:
        ops.print_json(
            {
                "count": min(found, CAP - 1),
                "more": found >= CAP,
                "problems": parsed.problems,
                "tickets": [
                    {
                        key: row[key]
                        for key in (
                            "id",
                            "status",
                            "priority",
                            "function",
                            "assignee",
                            "requester_addr",
                            "requester_name",
                            "subject",
                            "last_message_at",
                        )  # fmt: skip
                    }
                    for row in rows
                ],
            }
        )
        return 0
    for row in rows:
        # Subjects and names come from mail: shown, never interpreted by the terminal.
        print(
            f"#{row['id']:<7}{row['status']:<9}{row['function']:<11}"
            f"{safe.visible(row['requester_addr']):<32} {safe.visible(row['subject'])}  "
            f"[{local(row['last_message_at'], desk.zone)}]"
        )
    shown = f", {len(rows)} shown" if len(rows) < min(found, CAP - 1) else ""
    print(f"{count_text(found, found >= CAP)}{shown}")
    return 0
