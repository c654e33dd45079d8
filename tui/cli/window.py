"""`desk window …`: list, show, schedule, change, cancel, complete and start maintenance windows;
extend one in force and post progress updates on it; materialise the recurring rules (`sync`)
and keep a window apart from its rule (`keep`).

The documents about a window (report, release notes, notices, the iCalendar feed, the preview
of recurring rules) are in `tui.cli.window_docs`; both register under `desk window`.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

import sqlite_utils

from db.core import clock
from db.core.config import Config
from db.core.errors import DeskError
from db.core.migrations import UPDATE_STATUSES, UPDATE_TYPES
from db.mailout import outbox, subscribers
from db.maintenance import impact, notices, recurrence, updates, windows
from tui import safe
from tui.cli import ops, window_docs
from tui.cli.outbox import mailed, warn_unsent


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "window",
        help="maintenance windows: list, add, edit, cancel, emergency, report, notices",
        description="Maintenance windows under the platform's policy: scheduled windows are "
        "announced at least 48 hours ahead; emergencies start at once and owe a report.",
        epilog="example: desk window list\n"
        "         desk window add --title 'Ledger upgrade' --type feature "
        "--start '2026-12-06 02:00' --duration 120 --features 'Trading, Statements'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="window_command", metavar="ACTION", required=True)

    p = ops.command(sub, "list", "windows by start time", "desk window list --all --json")
    p.add_argument("--all", action="store_true", help="also windows that ended over 7 days ago")
    ops.add_zone(p)
    ops.add_json(p)
    p.set_defaults(handler=run_list)

    p = ops.command(sub, "show", "one window: details, history, notices", "desk window show W12")
    ops.window_arg(p)
    ops.add_zone(p)
    ops.add_json(p)
    p.set_defaults(handler=run_show)

    p = ops.command(
        sub,
        "add",
        "schedule a window (48 hours' notice, or --force --reason)",
        "desk window add --title 'Ledger upgrade' --type feature --start '2026-12-06 02:00' "
        "--duration 120 --features 'Trading, Statements'",
    )
    p.add_argument("--title", required=True)
    p.add_argument("--kind", choices=windows.SCHEDULED_KINDS, default="adhoc")
    _schedule_options(p, required=True)
    p.set_defaults(handler=run_add)

    p = ops.command(
        sub,
        "edit",
        "change a window (a new revision)",
        "desk window edit W12 --start '2026-12-13 02:00'",
    )
    ops.window_arg(p)
    p.add_argument("--title")
    _schedule_options(p, required=False)
    p.add_argument("--if-revision", type=int, metavar="N", help="refuse if someone changed it")
    p.set_defaults(handler=run_edit)

    p = ops.command(
        sub,
        "cancel",
        "call off a window that has not started",
        "desk window cancel W12 --reason 'vendor delay'",
    )
    ops.window_arg(p)
    p.add_argument("--reason", default="", help="why, for the audit trail")
    ops.add_json(p)
    p.set_defaults(handler=run_cancel)

    p = ops.command(
        sub,
        "complete",
        "end a window in force now (an emergency only ends this way, or by a resolved update)",
        "desk window complete W12",
    )
    ops.window_arg(p)
    ops.add_json(p)
    p.set_defaults(handler=run_complete)

    p = ops.command(
        sub,
        "extend",
        "move the expected end of a window in force and tell subscribers at once",
        "desk window extend W12 --by 30      (or: --until '2026-12-06 15:00')",
    )
    ops.window_arg(p)
    until = p.add_mutually_exclusive_group(required=True)
    until.add_argument(
        "--by", type=int, metavar="MINUTES", help="past the expected end (past now, once overrun)"
    )
    until.add_argument("--until", help="the new expected end, '2026-12-06 15:00' in --zone")
    ops.add_zone(p)
    ops.add_json(p)
    p.set_defaults(handler=run_extend)

    p = ops.command(
        sub,
        "update",
        "post a progress update (investigating, identified, monitoring, resolved) and mail it "
        "to subscribers; resolved completes an emergency",
        "desk window update W12 --status identified 'A failed disk on the primary database.'",
    )
    ops.window_arg(p)
    p.add_argument("--status", choices=UPDATE_STATUSES, required=True, help="the stage")
    p.add_argument("text", help="what is known and what is being done, for users")
    ops.add_json(p)
    p.set_defaults(handler=run_update)

    p = ops.command(
        sub,
        "emergency",
        "start an emergency window now and issue its notice",
        "desk window emergency --title 'Database failover' --expect 45 --features Trading "
        "--nature 'primary database lost'",
    )
    p.add_argument("--title", required=True)
    p.add_argument("--expect", type=int, required=True, metavar="MINUTES", help="expected downtime")
    p.add_argument("--features", help="features unavailable, comma-separated")
    p.add_argument("--nature", help="the nature of the issue, for the notice (default: title)")
    p.add_argument("--type", choices=UPDATE_TYPES, default="security", dest="update_type")
    ops.add_zone(p)
    ops.add_json(p)
    p.set_defaults(handler=run_emergency)

    _register_rules(sub)
    window_docs.register(sub)


def _register_rules(sub: argparse._SubParsersAction) -> None:
    """`sync` and `keep`: recurring rules into windows, and a window out of its rule."""
    p = ops.command(
        sub,
        "sync",
        "materialise the config's recurring rules into windows now (desk-ingest does it at "
        "start and hourly); unannounced occurrences no rule makes are withdrawn, announced "
        "ones are flagged",
        "desk window sync",
    )
    ops.add_json(p)
    p.set_defaults(handler=run_sync)

    p = ops.command(
        sub,
        "keep",
        "keep a recurring window apart from its rule (clears 'its rule is gone')",
        "desk window keep W12",
    )
    ops.window_arg(p)
    ops.add_json(p)
    p.set_defaults(handler=run_keep)


def _schedule_options(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument("--type", choices=UPDATE_TYPES, required=required, dest="update_type")
    p.add_argument("--start", required=required, help="'2026-12-06 02:00' in --zone, or with Z")
    ends = p.add_mutually_exclusive_group(required=required)
    ends.add_argument("--end", help="end time, like --start")
    ends.add_argument("--duration", type=int, metavar="MINUTES", help="length in minutes")
    p.add_argument("--features", help="features unavailable, comma-separated")
    p.add_argument("--description", help="what is being done")
    p.add_argument("--zone", help="the zone it is planned in (default: [maintenance] zone)")
    p.add_argument("--force", action="store_true", help="break the 48-hour rule (needs --reason)")
    p.add_argument("--reason", help="why the notice rule is broken; recorded")
    p.add_argument(
        "--allow-overlap", action="store_true", help="schedule it even if it overlaps another"
    )
    ops.add_json(p)


def _done(args: argparse.Namespace, w: windows.Window, zone: str, message: str) -> int:
    now = clock.now()
    if getattr(args, "json", False):
        ops.print_json(w.as_dict(now, zone))
    else:
        print(f"{message}\n{ops.window_line(w, now, zone)}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    config, db = ops.read_only(args)
    zone = ops.zone_of(args, config)
    now = clock.now()
    found = windows.listing(db, ending_after=None if args.all else now - timedelta(days=7))
    if args.json:
        impacts = impact.counts_many(db, found, now)
        ops.print_json([{**w.as_dict(now, zone), "impact": impacts[w.id]} for w in found])
    elif not found:
        print("No windows; `desk window add` schedules one, `desk window preview` shows rules.")
    for w in [] if args.json else found:
        print(ops.window_line(w, now, zone))
    return 0


def run_show(args: argparse.Namespace) -> int:
    config, db = ops.read_only(args)
    zone = ops.zone_of(args, config)
    w, now = windows.get(db, args.window), clock.now()
    history, ledger = windows.events(db, w.id), notices.ledger(db, w.id)
    mails: dict[int, dict[str, int]] = {}
    for row in subscribers.delivery(db, w.id):
        mails.setdefault(row["notice"], {})[row["status"]] = row["mails"]
    ledger = [{**n, "mails": mails.get(n["id"], {})} for n in ledger]
    progress = updates.listing(db, w.id)
    counted = impact.counts_many(db, [w], now)[w.id]
    if args.json:
        shown = {**w.as_dict(now, zone), "impact": counted}
        ops.print_json({**shown, "events": history, "notices": ledger, "updates": progress})
        return 0
    print(ops.window_line(w, now, zone))
    print(f"  {notices.span(w.start, w.ends, zone)}  ({notices.utc_span(w.start, w.ends)})")
    print(f"  unavailable: {safe.visible(', '.join(w.features)) or 'nothing listed'}")
    for label, value in (
        ("description", w.description),
        ("nature", w.nature),
        ("forced", w.forced_reason),
        ("rule", f"{w.rule} (kept apart from it)" if w.rule and w.detached_at else w.rule),
    ):
        if value:
            print(f"  {label}: {safe.visible(value)}")
    announced = ops.local(w.announced_at, zone) if w.announced_at else "not yet"
    print(f"  announced: {announced}   revision {w.revision}")
    _print_impact(db, w, counted)
    print("history:")
    for e in history:
        print(f"  {e['at'][:16]}Z r{e['revision']} {e['action']} by {safe.visible(e['actor'])}")
    print("updates:")
    for u in progress:
        print(f"  {u['created_at'][:16]}Z {u['status']}: {safe.visible(u['body'])}")
    if not progress:
        print("  (none posted)")
    print("notices:")
    for n in ledger or [{"kind": "(none issued)", "channel": "", "revision": "-", "superseded": 0}]:
        stale = " (superseded)" if n["superseded"] else ""
        print(f"  r{n['revision']} {n['kind']} {n['channel']}{stale}{_mails(n)}")
    return 0


def _print_impact(db: sqlite_utils.Database, w: windows.Window, counted: dict[str, Any]) -> None:
    print(f"impact ({impact.state(counted)}):\n  {impact.summary(counted)}")
    found = impact.tickets(db, w.id)
    for kind, label in (
        (impact.FOLLOWUPS, "follow-ups"),
        (impact.DISCREPANCIES, "discrepancy reports"),
    ):
        if found[kind]:
            print(f"  {label}: " + " ".join(f"#{t['ticket']}" for t in found[kind]))


def _mails(notice: dict[str, Any]) -> str:
    """'; mails: 2 sent, 1 queued' for an email notice; nothing for a banner."""
    if notice["channel"] != "email":
        return ""
    counts = notice["mails"]
    if not counts:
        return "; no mail queued"
    return "; mails: " + ", ".join(f"{count} {status}" for status, count in counts.items())


def _times(args: argparse.Namespace, zone: str, start_default=None):
    start = ops.when(args.start, zone) if args.start else start_default
    if args.end:
        return start, ops.when(args.end, zone)
    if args.duration is not None:
        return start, start + timedelta(minutes=args.duration)
    return start, None


def run_add(args: argparse.Namespace) -> int:
    config, db = ops.opened(args)
    zone = ops.zone_of(args, config)
    start, end = _times(args, zone)
    w = windows.add(
        db,
        title=args.title,
        kind=args.kind,
        update_type=args.update_type,
        start=start,
        end=end,
        zone=zone,
        actor=ops.actor(),
        features=ops.features(args.features),
        description=args.description or "",
        announce_hours=config.maintenance.announce_hours,
        force_reason=ops.force_reason(args),
        allow_overlap=args.allow_overlap,
    )
    hint = f"announce it with `desk window notice {w.label} --issue`"
    return _done(args, w, zone, f"Scheduled {w.label}; {hint}.")


def run_edit(args: argparse.Namespace) -> int:
    config, db = ops.opened(args)
    w = windows.get(db, args.window)
    zone = ops.zone_of(args, config) if args.zone else w.zone
    start, end = _times(args, zone, w.start)
    if args.start and end is None:
        end = start + (w.end - w.start)  # moving a window keeps its length
    changes = {
        key: value
        for key, value in (
            ("title", args.title),
            ("update_type", args.update_type),
            ("description", args.description),
            ("start_at", start if args.start else None),
            ("end_at", end),
            ("features", ops.features(args.features) if args.features is not None else None),
            ("zone", args.zone),
        )
        if value is not None
    }
    if not changes:
        raise DeskError("Nothing to change; give at least one of the options (see --help).")
    w = windows.edit(
        db,
        w.id,
        ops.actor(),
        changes,
        announce_hours=config.maintenance.announce_hours,
        force_reason=ops.force_reason(args),
        expected_revision=args.if_revision,
        allow_overlap=args.allow_overlap,
    )
    return _done(args, w, zone, f"{w.label} is now at revision {w.revision}.")


def run_cancel(args: argparse.Namespace) -> int:
    config, db = ops.opened(args)
    w = windows.cancel(db, args.window, ops.actor(), args.reason)
    hint = f"`desk window notice {w.label} --issue` records the cancellation notice"
    return _done(args, w, w.zone, f"Cancelled {w.label}; {hint}.")


def run_complete(args: argparse.Namespace) -> int:
    config, db = ops.opened(args)
    w = windows.complete(db, args.window, ops.actor())
    due = (
        f"; the post-maintenance report is due: desk window report {w.label}"
        if w.report_due(clock.now())
        else ""
    )
    return _done(args, w, w.zone, f"Completed {w.label}{due}.")


def _issued(
    args: argparse.Namespace,
    config: Config,
    db: sqlite_utils.Database,
    w: windows.Window,
    zone: str,
    issued: list[dict[str, Any]],
    said: str,
) -> int:
    """Report a change that issued notices: `said` (ending in its separator), how many mails
    went out, and the notices (or all of it as JSON)."""
    queued = outbox.queued_for_notices(db, [n["id"] for n in issued])
    warn_unsent(config, queued)
    if args.json:
        ops.print_json({**w.as_dict(clock.now(), zone), "notices": issued, "mails": queued})
        return 0
    print(f"{said} {mailed(queued)}.\n")
    ops.print_notices(issued)
    return 0


def run_emergency(args: argparse.Namespace) -> int:
    config, db = ops.opened(args)
    zone = ops.zone_of(args, config)
    w, issued = windows.emergency(
        db,
        title=args.title,
        expected_minutes=args.expect,
        nature=args.nature or args.title,
        actor=ops.actor(),
        zone=zone,
        features=ops.features(args.features),
        update_type=args.update_type,
        mail=config.mail,
    )
    return _issued(
        args,
        config,
        db,
        w,
        zone,
        issued,
        f"Emergency {w.label} started; its start notice is in the ledger,",
    )


def run_sync(args: argparse.Namespace) -> int:
    config, db = ops.opened(args)
    report = recurrence.sync(db, config.maintenance, str(config.path.resolve()), ops.actor())
    absorbed = []
    for o in report.absorbed:
        how, host = o.absorbed_by
        verb = "merged into" if how == recurrence.MERGED_INTO else "skipped: overlaps"
        absorbed.append(f"{o.ref} {verb} {host}")
    if args.json:
        ops.print_json(
            {
                "added": [f"W{i}" for i in report.added],
                "withdrawn": report.withdrawn,
                "rule_gone": [f"W{i}" for i in report.flagged],
                "rule_back": [f"W{i}" for i in report.restored],
                "absorbed": absorbed,
            }
        )
        return 0
    print(
        f"Synced {len(config.maintenance.recurring)} recurring rule(s) from {config.path}: "
        f"{len(report.added)} window(s) added, {len(report.withdrawn)} withdrawn, "
        f"{len(report.flagged)} flagged, {len(report.restored)} back with their rule."
    )
    for text in report.withdrawn:
        print(f"  withdrawn (never announced): {text}")
    now = clock.now()
    for window_id in report.flagged:
        w = windows.get(db, window_id)
        print(f"  {ops.window_line(w, now, w.zone)}")
        print(
            f"    cancel it (desk window cancel {w.label}) or keep it (desk window keep {w.label})"
        )
    for text in absorbed:
        print(f"  one window for the night: {text}")
    return 0


def run_keep(args: argparse.Namespace) -> int:
    _, db = ops.opened(args)
    w = recurrence.keep(db, args.window, ops.actor())
    return _done(args, w, w.zone, f"{w.label} is kept apart from its rule {w.rule!r}.")


def run_extend(args: argparse.Namespace) -> int:
    config, db = ops.opened(args)
    w = windows.get(db, args.window)
    zone = ops.zone_of(args, config) if args.zone else w.zone
    w, issued = windows.extend(
        db,
        w.id,
        ops.actor(),
        until=ops.when(args.until, zone) if args.until else None,
        minutes=args.by,
        mail=config.mail,
    )
    said = f"{w.label} now expected to end {ops.local(w.end, zone)};"
    return _issued(args, config, db, w, zone, issued, said)


def run_update(args: argparse.Namespace) -> int:
    config, db = ops.opened(args)
    update, w, queued = updates.post(
        db, args.window, args.status, args.text, ops.actor(), mail=config.mail
    )
    warn_unsent(config, queued)
    if args.json:
        ops.print_json({**update, "window": w.as_dict(clock.now(), w.zone), "mails": queued})
        return 0
    done = f"; {w.label} is completed" if update["status"] == "resolved" and w.completed_at else ""
    print(f"Posted the {update['status']} update on {w.label}{done}; {mailed(queued)}.")
    return 0
