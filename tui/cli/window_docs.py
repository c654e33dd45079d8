"""`desk window report|notes|notice|ics|preview`: what is written about windows.

The post-maintenance report (in $EDITOR or from a file), release notes, the notices (previewed,
issued into the ledger and mailed to the subscribers once per revision), an iCalendar feed with
stable UIDs and SEQUENCE from the revision, and the coming occurrences of the recurring rules.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sqlite_utils

from db.core import clock
from db.core.config import Config, load
from db.core.errors import DeskError
from db.core.migrations import NOTICE_KINDS
from db.mailout import outbox, subscribers
from db.maintenance import notice_schedule, notices, recurrence, reports, windows
from publish.ics import calendar
from tui import editor
from tui.cli import ops
from tui.cli.outbox import mailed, warn_unsent


def register(sub: argparse._SubParsersAction) -> None:
    """Add these actions to `desk window`'s subparsers."""
    p = ops.command(
        sub,
        "report",
        "write the post-maintenance report in $EDITOR (pre-filled), or from --file",
        "desk window report W12      (or: desk window report W12 --file report.md)",
    )
    ops.window_arg(p)
    how = p.add_mutually_exclusive_group()
    how.add_argument("--file", type=Path, help="take the report from this Markdown file")
    how.add_argument("--template", action="store_true", help="print the pre-filled template")
    how.add_argument("--show", action="store_true", help="print the report as written")
    ops.add_json(p)
    p.set_defaults(handler=run_report)

    p = ops.command(
        sub,
        "notes",
        "show or set a window's release notes",
        "desk window notes W12 --file notes.md",
    )
    ops.window_arg(p)
    source = p.add_mutually_exclusive_group()
    source.add_argument("--file", type=Path, help="Markdown file with the release notes")
    source.add_argument("--text", help="the release notes themselves")
    p.set_defaults(handler=run_notes)

    p = ops.command(
        sub,
        "notice",
        "preview a window's notice, issue it (once: ledger and mail to subscribers), or list "
        "the ledger",
        "desk window notice W12 --preview      (then: desk window notice W12 --issue)",
    )
    ops.window_arg(p)
    p.add_argument(
        "--kind", choices=NOTICE_KINDS, help="default: what the scheduler would send now"
    )
    p.add_argument("--channel", choices=("email", "banner"), help="default: both")
    action = p.add_mutually_exclusive_group()
    action.add_argument(
        "--preview", action="store_true", help="print it as it would go out now (the default)"
    )
    action.add_argument(
        "--issue", action="store_true", help="record it in the ledger and mail it to subscribers"
    )
    action.add_argument("--ledger", action="store_true", help="list the notices issued")
    p.add_argument("--force", action="store_true", help="announce with under 48 hours' notice")
    p.add_argument("--reason", help="why the notice rule is broken; recorded")
    ops.add_zone(p)
    ops.add_json(p)
    p.set_defaults(handler=run_notice)

    p = ops.command(
        sub, "ics", "an iCalendar feed of the windows", "desk window ics -o windows.ics"
    )
    p.add_argument("-o", "--output", type=Path, help="write to this file (default: stdout)")
    p.set_defaults(handler=run_ics)

    p = ops.command(
        sub,
        "preview",
        "the next occurrences of the recurring rules, in UTC and local time, with DST flags",
        "desk window preview --count 12 --rule monthly",
    )
    p.add_argument("--count", type=int, default=6, help="occurrences per rule (default 6)")
    p.add_argument("--rule", help="only this rule")
    ops.add_json(p)
    p.set_defaults(handler=run_preview)


def _edit(text: str) -> str:
    try:
        return editor.edit(text, ".md")
    except DeskError as exc:
        raise DeskError(f"{exc.message} Or pass --file FILE.") from exc


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DeskError(f"Cannot read {path}: {exc.strerror}.") from exc


def run_report(args: argparse.Namespace) -> int:
    reading = args.template or args.show or (args.json and not args.file)
    _, db = ops.read_only(args) if reading else ops.opened(args)
    w = windows.get(db, args.window)
    if args.template or args.show:
        if args.show and not w.report:
            raise DeskError(
                f"{w.label} has no report yet; `desk window report {w.label}` writes it."
            )
        print(reports.template(db, w), end="")
        return 0
    if args.json and not args.file:
        ops.print_json(reports.as_dict(db, w))
        return 0
    w = reports.writable(db, w.id)  # before anyone spends time in the editor
    template = reports.template(db, w)
    text = _read(args.file) if args.file else _edit(template)
    if text == template and not w.report:
        raise DeskError("The report was left as the template; nothing was saved.")
    w = reports.write_report(db, w.id, text, ops.actor())
    if args.json:
        ops.print_json(reports.as_dict(db, w))
    else:
        print(f"Saved the report for {w.label} (revision {w.revision}).")
    return 0


def run_notes(args: argparse.Namespace) -> int:
    reading = args.file is None and args.text is None
    _, db = ops.read_only(args) if reading else ops.opened(args)
    if args.file is None and args.text is None:
        print(windows.get(db, args.window).release_notes or "(no release notes)")
        return 0
    text = _read(args.file) if args.file else args.text
    w = windows.set_notes(db, args.window, text, ops.actor())
    print(f"Release notes of {w.label} saved (revision {w.revision}); standing notices are stale.")
    return 0


def run_notice(args: argparse.Namespace) -> int:
    config, db = ops.opened(args) if args.issue else ops.read_only(args)
    w = windows.get(db, args.window)
    zone = ops.zone_of(args, config) if args.zone else w.zone
    if args.ledger:
        rows = notices.ledger(db, w.id)
        if args.json:
            ops.print_json(rows)
        for n in [] if args.json else rows:
            stale = "  superseded" if n["superseded"] else ""
            print(f"r{n['revision']} {n['kind']:<13}{n['channel']:<7}{n['rendered_at']}{stale}")
        return 0
    kind = args.kind or notice_schedule.next_kind(
        db, w, clock.now(), config.mail, config.maintenance.announce_hours
    )
    reason = ops.force_reason(args)
    if args.issue:
        shown, created = windows.issue_notice(
            db,
            w.id,
            kind,
            ops.actor(),
            announce_hours=config.maintenance.announce_hours,
            force_reason=reason,
            zone=zone,
            mail=config.mail,
        )
        shown = [
            {**n, "created": created, "mails": outbox.queued_for_notices(db, [n["id"]])}
            for n in shown
        ]
        queued = sum(n["mails"] for n in shown)
        if created:
            print(f"Issued {kind} notice for {w.label}; {mailed(queued)}.", file=sys.stderr)
            warn_unsent(config, queued)
        else:
            print(
                f"Already issued {kind} notice for {w.label} at {shown[0]['rendered_at']}; "
                "not again, and no more mail:",
                file=sys.stderr,
            )
    else:
        # The same render the ledger and every subscriber's mail would carry if issued now.
        shown = [n.__dict__ for n in notices.render_for(db, w, kind, zone)]
        standing = notices.standing(db, w.id, kind)
        later = (
            f"it was issued at {standing[0]['rendered_at']}, so --issue would not send it again"
            if standing
            else f"--issue records it and mails it to {_people(db, config)}"
        )
        print(f"Preview of the {kind} notice for {w.label}; {later}.", file=sys.stderr)
    shown = [n for n in shown if args.channel in (None, n["channel"])]
    if args.json:
        ops.print_json(shown)
        return 0
    ops.print_notices(shown)
    return 0


def _people(db: sqlite_utils.Database, config: Config) -> str:
    count = len(subscribers.listing(db, config.mail))
    return f"{count} subscriber{'' if count == 1 else 's'}"


def run_ics(args: argparse.Namespace) -> int:
    _, db = ops.read_only(args)
    feed = calendar(windows.listing(db))
    if args.output:
        args.output.write_bytes(feed)
    else:
        sys.stdout.write(feed.decode("utf-8"))
    return 0


def run_preview(args: argparse.Namespace) -> int:
    config = load(args.config)
    if args.count < 1:
        raise DeskError("--count must be at least 1.")
    found = recurrence.preview(config.maintenance, count=args.count, rule_name=args.rule)
    if args.json:
        ops.print_json(
            [
                {
                    "rule": o.rule,
                    "planned_local": o.key,
                    "start_at": clock.iso(o.start),
                    "end_at": clock.iso(o.end),
                    "zone": o.zone,
                    "start_local": ops.local(o.start, o.zone, "%Y-%m-%dT%H:%M%z"),
                    "end_local": ops.local(o.end, o.zone, "%Y-%m-%dT%H:%M%z"),
                    "flags": list(o.flags),
                }
                for o in found
            ]
        )
        return 0
    if not found:
        print("No recurring rules in [maintenance]; config.example.toml shows how to add them.")
    for o in found:
        local = ops.local_span(o.start, o.end, o.zone)
        flags = f"  [{'; '.join(_explain(flag, o.key) for flag in o.flags)}]" if o.flags else ""
        print(f"{o.rule:<12}{local:<46}{notices.utc_span(o.start, o.end)}{flags}")
    return 0


def _explain(flag: str, key: str) -> str:
    planned = key[11:]
    if flag == recurrence.MOVED:
        return f"{planned} does not exist that day (clocks go forward); moved"
    if flag == recurrence.REPEATED:
        return f"{planned} happens twice that day (clocks go back); the first is used"
    how, _, other = flag.partition(":")
    if how == recurrence.SKIPPED_FOR:
        return f"skipped: overlaps {other}, which covers it (on_overlap = skip)"
    if how == recurrence.MERGED_INTO:
        return f"merged into {other} (on_overlap = merge)"
    if how == recurrence.MERGED:
        return f"takes in {other}"
    return flag.replace(f"{recurrence.SKIPPED}:", "no occurrence in ")
