"""`desk now`: what is in force, for people and for scripts (the exit status tells the state)."""

from __future__ import annotations

import argparse

from db.core import clock
from db.maintenance import impact, in_force
from tui import safe
from tui.cli import ops

EXIT = {in_force.CLEAR: 0, in_force.ACTIVE: 10, in_force.UPCOMING: 11}
EPILOG = """\
exit status:
  0   nothing in force: no window active, none starting within the next HOURS (48)
  10  a maintenance window is active now
  11  no window is active, but one starts within the next HOURS
  2   an error (one sentence on stderr)
Overdue reports and open discrepancy reports are listed but do not change the status.

example: desk now --json | jq -r '.active[0].end_at'
         desk now >/dev/null; [ $? -eq 10 ] && echo "maintenance in progress"
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "now",
        help="what is in force: active and coming windows, overdue reports",
        description="The active maintenance window (title, end, features unavailable), windows "
        "starting soon, overdue post-maintenance reports and open discrepancy reports.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--within", type=float, default=48.0, metavar="HOURS", help="how far ahead (default 48)"
    )
    ops.add_zone(parser)
    ops.add_json(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config, db = ops.open_synced(args)
    zone = ops.zone_of(args, config)
    data = in_force.summary(db, within_hours=args.within, zone=zone)
    if args.json:
        ops.print_json(data)
        return EXIT[data["state"]]
    for w in data["active"]:
        down = ", ".join(w["features"]) or "none listed"
        print(
            f"ACTIVE  {w['id']} {safe.visible(w['title'])} until "
            f"{ops.local(clock.parse(w['end_at']), zone)}; unavailable: {safe.visible(down)}"
        )
    for w in data["upcoming"]:
        told = "" if w["announced_at"] else "  (not announced)"
        print(
            f"SOON    {w['id']} {safe.visible(w['title'])} starts "
            f"{ops.local(clock.parse(w['start_at']), zone)}{told}"
        )
    for w in data["overdue_reports"]:
        print(f"REPORT  {w['id']} {safe.visible(w['title'])}: post-maintenance report overdue")
    for t in data["open_discrepancies"]:
        window = f"W{t['window_id']}" if t["window_id"] else "no window"
        print(f"DISCREP #{t['ticket']} ({window}, {t['function']}) {safe.visible(t['subject'])}")
    for counted in data["impact"]:
        print(f"IMPACT  {counted['window']} {impact.summary(counted)} ({impact.state(counted)})")
    if data["state"] == in_force.CLEAR:
        print(f"Nothing in force: no window active or starting within {args.within:g} hours.")
    return EXIT[data["state"]]
