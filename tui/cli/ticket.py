"""`desk ticket …`: one ticket from the command line: show it with its messages and the
customer's other tickets, merge it into another, undo a merge, split a message out of it."""

from __future__ import annotations

import argparse
from typing import Any

from db.mailin import threads
from db.tickets import customer, merge, tickets
from tui import safe
from tui.cli import ops

EPILOG = """\
example: desk ticket show 42
         desk ticket merge 43 42        (43's messages, notes and tags go to 42)
         desk ticket unmerge 43
         desk ticket split 317 --following
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ticket",
        help="one ticket: show, merge, unmerge, split",
        description="One ticket: its messages and the customer's other tickets; merging it "
        "into another (undoable), and splitting a message out into a new ticket.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="ticket_command", metavar="ACTION", required=True)

    p = ops.command(
        sub,
        "show",
        "a ticket, its messages (with the ids split takes) and the customer's other tickets",
        "desk ticket show 42 --json",
    )
    p.add_argument("ticket", type=int, help="the ticket number")
    ops.add_json(p)
    p.set_defaults(handler=run_show)

    p = ops.command(
        sub,
        "merge",
        "merge ticket SOURCE into TARGET: messages, notes, tags, people and later mail go there",
        "desk ticket merge 43 42",
    )
    p.add_argument("source", type=int, help="the ticket merged away")
    p.add_argument("target", type=int, help="the ticket that takes it in")
    p.set_defaults(handler=run_merge)

    p = ops.command(
        sub, "unmerge", "undo the merge of a ticket into another", "desk ticket unmerge 43"
    )
    p.add_argument("ticket", type=int, help="the ticket that was merged away")
    p.set_defaults(handler=run_unmerge)

    p = ops.command(
        sub,
        "split",
        "move a message (see `desk ticket show`) into a new ticket",
        "desk ticket split 317 --following",
    )
    p.add_argument("message", type=int, help="the message's id")
    p.add_argument(
        "--following", action="store_true", help="and every message after it in the thread"
    )
    p.set_defaults(handler=run_split)


def _shown(db: Any, number: int) -> dict[str, Any]:
    """What `show` prints: the ticket (a merged one's target), its messages, its customer."""
    ticket = tickets.get(db, threads.follow(db, number))
    messages = [
        {k: m[k] for k in ("id", "received_at", "direction", "from_addr", "subject")}
        for m in tickets.thread(db, ticket["id"])
    ]
    return {
        "asked": number,
        "ticket": ticket,
        "messages": messages,
        "merged_here": merge.merged_here(db, ticket["id"]),
        "customer": customer.other_tickets(db, ticket),
    }


def run_show(args: argparse.Namespace) -> int:
    _, db = ops.read_only(args)
    shown = _shown(db, args.ticket)
    if args.json:
        ops.print_json(shown)
        return 0
    t = shown["ticket"]
    if t["id"] != args.ticket:
        print(f"#{args.ticket} was merged into #{t['id']}.")
    print(f"#{t['id']}  {safe.visible(t['subject'])}")
    print(
        f"{t['status']} · {t['priority']} · {', '.join(t['functions'])} · from "
        f"{safe.visible(t['requester_addr']) or '?'} · {t['assignee'] or 'unassigned'}"
    )
    for m in shown["merged_here"]:
        print(f"merged in: #{m['source_id']} by {safe.visible(m['merged_by'])} at {m['merged_at']}")
    print("\nmessages (id, received, sender, subject):")
    for m in shown["messages"]:
        arrow = "→" if m["direction"] == "out" else " "
        print(
            f"  {m['id']:<8}{m['received_at'][:16].replace('T', ' ')}  {arrow} "
            f"{safe.visible(m['from_addr']) or '?'}  {safe.visible(m['subject'])}"
        )
    others = shown["customer"]
    if others["count"]:
        print(f"\nthe customer's other tickets ({others['count']}, {others['open']} open):")
        for o in others["tickets"]:
            print(f"  #{o['id']:<7}{o['status']:<10}{safe.visible(o['subject'])}")
    return 0


def run_merge(args: argparse.Namespace) -> int:
    _, db = ops.opened(args)
    merge.merge(db, args.source, args.target, ops.actor())
    print(f"#{args.source} is merged into #{args.target}; `desk ticket unmerge {args.source}` "
          "undoes it.")  # fmt: skip
    return 0


def run_unmerge(args: argparse.Namespace) -> int:
    _, db = ops.opened(args)
    target = merge.unmerge(db, args.ticket, ops.actor())
    print(f"#{args.ticket} is a ticket of its own again; what it brought left #{target}.")
    return 0


def run_split(args: argparse.Namespace) -> int:
    _, db = ops.opened(args)
    new = merge.split(db, args.message, ops.actor(), following=args.following)
    print(f"The new ticket is #{new}.")
    return 0
