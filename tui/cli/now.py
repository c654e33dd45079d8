"""`desk now`: what is in force, for people and for scripts (the exit status tells the state)."""

from __future__ import annotations

import argparse
from typing import Any

from db.core import clock
from db.maintenance import impact, in_force, recurrence
from tui import safe
from tui.cli import ops

EXIT = {in_force.CLEAR: 0, in_force.ACTIVE: 10, in_force.UPCOMING: 11, in_force.OVERRUNNING: 12}
EPILOG = """\
exit status:
  0   nothing in force: no window active, none starting within the next HOURS (48)
  10  a maintenance window is active now
  11  no window is active, but one starts within the next HOURS
  12  an emergency runs past its expected end (overrunning; in force, as with 10):
      extend it, post an update or complete it (`desk window extend|update|complete`)
  2   an error (one sentence on stderr)
Overdue reports, open discrepancy reports, windows whose recurring rule is gone and a
database last synced from another config are listed but do not change the status.

example: desk now --json | jq -r '.active[0].end_at'
         desk now >/dev/null; case $? in 10|12) echo "maintenance in progress";; esac
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
    config, db = ops.read_only(args)
    zone = ops.zone_of(args, config)
    data = in_force.summary(db, within_hours=args.within, zone=zone)
    now = clock.parse(data["now"])
    data["rule_gone"] = [w.as_dict(now, zone) for w in recurrence.rule_gone(db, now)]
    data["sync"] = recurrence.last_sync(db, str(config.path.resolve()), config.maintenance)
    if args.json:
        ops.print_json(data)
        return EXIT[data["state"]]
    for w in data["active"]:
        down = ", ".join(w["features"]) or "none listed"
        if w["status"] == "overrunning":
            print(_overrunning(w, zone, down))
            continue
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
    for w in data["rule_gone"]:
        print(
            f"RULE    {w['id']} {safe.visible(w['title'])} starts "
            f"{ops.local(clock.parse(w['start_at']), zone)}: {safe.visible(w['rule_gone'])}; "
            f"desk window cancel {w['id']} or desk window keep {w['id']}"
        )
    drift = _drift(data["sync"], str(config.path.resolve()), bool(config.maintenance.recurring))
    if drift:
        print(f"SYNC    {drift}")
    if data["state"] == in_force.CLEAR:
        print(f"Nothing in force: no window active or starting within {args.within:g} hours.")
    return EXIT[data["state"]]


def _drift(sync: dict, config_path: str, has_rules: bool) -> str | None:
    """The sentence when the windows were last synced from another config, or never though
    the config has recurring rules."""
    if sync["synced_at"] is None and not has_rules:
        return None
    if sync["synced_at"] is None:
        return (
            "recurring rules were never synced into this database; desk-ingest does it when "
            "it starts, or run `desk window sync`"
        )
    if sync["same_config"] and sync["same_rules"]:
        return None
    at = ops.local(clock.parse(sync["synced_at"]), "UTC", "%Y-%m-%d %H:%M UTC")
    source, given = safe.visible(sync["config"]), safe.visible(config_path)
    said = f"windows last synced at {at} from {source}"
    if sync["same_rules"]:
        return f"{said}, not {given} (the same recurring rules)"
    return (
        f"{said}, whose recurring rules differ from {given}'s; the windows follow that file "
        f"until desk-ingest or `desk window sync` runs with {given}"
    )


def _overrunning(w: dict[str, Any], zone: str, down: str) -> str:
    """The line for an emergency past its expected end, saying what ops can do about it."""
    end = clock.parse(w["end_at"])
    over = int((clock.now() - end).total_seconds() // 60)
    return (
        f"OVERRUN {w['id']} {safe.visible(w['title'])} expected to end "
        f"{ops.local(end, zone)}, {over} min ago; unavailable: {safe.visible(down)}; "
        f"extend, update or complete it (desk window extend {w['id']} --by MINUTES)"
    )
