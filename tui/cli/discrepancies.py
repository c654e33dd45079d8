"""`desk discrepancies`: the discrepancy reports windows drew, and an agent's mark or unmark."""

from __future__ import annotations

import argparse

from db.core import clock
from db.maintenance import discrepancy, marking
from tui import safe
from tui.cli import ops


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "discrepancies",
        help="discrepancy reports after maintenance windows",
        description="Tickets reporting that data or transactions differ after a maintenance "
        "window, found by the rule at ingest or marked by an agent. A report found by the rule "
        "shows why: the words that said so and their language. An agent's mark or unmark "
        "wins over the rule until --by-rule hands the ticket back.",
        epilog="example: desk discrepancies --window W12 --json\n"
        "         desk discrepancies --mark 42 --window W12\n"
        "         desk discrepancies --unmark 43",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--window", type=ops.window_ref, help="only those linked to this window")
    parser.add_argument("--open", action="store_true", help="only tickets not resolved or closed")
    act = parser.add_mutually_exclusive_group()
    act.add_argument("--mark", type=int, metavar="TICKET", help="mark ticket N as a report")
    act.add_argument("--unmark", type=int, metavar="TICKET", help="mark ticket N as not one")
    act.add_argument("--by-rule", type=int, metavar="TICKET", help="let the rule decide again")
    ops.add_json(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    changing = (args.mark, args.unmark, args.by_rule) != (None, None, None)
    _, db = ops.opened(args) if changing else ops.read_only(args)
    if args.mark is not None:
        marking.mark(db, args.mark, ops.actor(), window_id=args.window)
        print(f"#{args.mark} is marked as a discrepancy report.")
        return 0
    if args.unmark is not None:
        marking.unmark(db, args.unmark, ops.actor())
        print(f"#{args.unmark} is marked as not a discrepancy report.")
        return 0
    if args.by_rule is not None:
        marking.release(db, args.by_rule, ops.actor())
        print(f"#{args.by_rule} is decided by the rule again.")
        return 0
    found = discrepancy.listing(db, window_id=args.window, open_only=args.open)
    if args.json:
        ops.print_json(found)
        return 0
    if not found:
        print("No discrepancy reports.")
    now = clock.now()
    for t in found:
        window = f"W{t['window_id']}" if t["window_id"] else "-"
        age = now - clock.parse(t["created_at"])
        print(
            f"#{t['ticket']:<6}{window:<6}{t['function']:<11}{t['status']:<9}{t['priority']:<7}"
            f"{t['kind_set_by'] or '':<6}{age.days}d {age.seconds // 3600}h  "
            f"{safe.visible(t['requester_addr'])}: {safe.visible(t['subject'])}"
        )
        why = discrepancy.reason(t["kind_reason"])
        if why:
            print(f"{'':6}why: {safe.visible(why)}")
    return 0
