"""Reading stored mail again with today's parser: `desk-ingest --reparse`, and the daemon's
healing in the background after an upgrade and on an agent's request.

Messages are read in id order, `CHUNK` at a time: each chunk is parsed outside any transaction
(the raw bytes never change), then written in one short transaction that re-reads every row
under the write lock (`db.mailin.reparse.heal`), so new mail waits at most one chunk's writes.
A crash between chunks leaves every message either read again or not yet, each exactly once.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import sqlite_utils

from db.core.connect import open_db
from db.mailin import reparse
from db.mailin.reparse import Change, Scope
from db.mailin.threads import NEW, NO_TICKET
from ingest.parse import PARSER_VERSION, parse

log = logging.getLogger("desk.reparse")
CHUNK = 50
PAUSE_SECONDS = 0.2  # between chunks of the background upgrade: new mail comes first
POLL_SECONDS = 0.5  # how often the daemon looks for messages an agent asked for
RETRY_SECONDS = 30.0  # after a chunk failed in the background
_SHORT = 40

# Column -> how a change line names it; `auto` is said by `kind`.
_LABELS = {
    "subject": "subject",
    "from_addr": "from",
    "from_name": "name",
    "to_addrs": "to",
    "cc_addrs": "cc",
    "reply_to": "reply-to",
    "message_id": "message-id",
    "in_reply_to": "in-reply-to",
    "refs": "references",
    "date_header": "date",
    "sent_at": "sent",
    "headers": "headers",
    "body_text": "body",
    "body_html": "html",
    "charset_declared": "declared charset",
    "charset_used": "charset",
    "kind": "kind",
    "forwarded": "forwarded",
    "copy_key": "copy key",
    "parse_error": "parse error",
    "defects": "defects",
    "attachments": "attachments",
    "requester_addr": "requester",
    "requester_name": "requester name",
    "unparsed": "unparsed",
    "via_list": "via list",
}


def outdated() -> Scope:
    """Messages read by an older parser, or asked for again by an agent."""
    return Scope(below=PARSER_VERSION)


@dataclass
class Tally:
    """Counts of one run of re-reading, for its summary line."""

    read: int = 0
    changed: int = 0
    opened: int = 0
    joined: int = 0
    elsewhere: int = 0  # today's threading rules would put it in another ticket

    def add(self, changes: list[Change]) -> None:
        self.read += len(changes)
        self.changed += sum(c.changed for c in changes)
        self.opened += sum(c.opened for c in changes)
        self.joined += sum(c.joined for c in changes)
        self.elsewhere += sum(c.thread_now is not None for c in changes)

    def summary(self, *, dry_run: bool = False) -> str:
        verb = "would change" if dry_run else "changed"
        line = f"read {self.read} message(s) again: {self.changed} {verb}"
        if self.opened:
            line += f", {self.opened} ticket(s) {'would be ' if dry_run else ''}opened"
        if self.joined:
            line += f", {self.joined} joined a ticket"
        if self.elsewhere:
            line += f", {self.elsewhere} would thread elsewhere today (left where they are)"
        return line


def step(
    db: sqlite_utils.Database, scope: Scope, after: int, *, dry_run: bool = False
) -> tuple[int | None, list[Change]]:
    """Read the next chunk of `scope` after message id `after` again; the last id read (None
    when there was nothing left) and what changed."""
    rows = reparse.batch(db, scope, after=after, limit=CHUNK)
    if not rows:
        return None, []
    parsed = [(message_id, parse(raw)) for message_id, raw in rows]
    return rows[-1][0], reparse.heal(db, parsed, dry_run=dry_run)


def run(
    db: sqlite_utils.Database,
    scope: Scope,
    on_change: Callable[[Change], None],
    *,
    dry_run: bool = False,
) -> Tally:
    """Read every message of `scope` again, calling `on_change` for each that changed or would
    thread elsewhere today, as soon as its chunk is committed."""
    tally = Tally()
    start = reparse.first(db, scope)
    after = None if start is None else start - 1
    while after is not None:
        after, changes = step(db, scope, after, dry_run=dry_run)
        tally.add(changes)
        for change in changes:
            if change.changed or change.thread_now is not None:
                on_change(change)
    return tally


def _short(column: str, value: Any) -> str:
    if column == "kind":
        return value or "person"
    if value is None:
        return "none"
    if isinstance(value, int):
        return str(value)
    text = " ".join(str(value).split())
    if len(text) > _SHORT:
        text = text[: _SHORT - 1] + "…"
    return repr(text)  # control characters of a hostile mail come out escaped, never raw


def describe(change: Change) -> str:
    """One line: `#12 msg 40: subject 'a' -> 'b'; kind auto-reply -> person (ticket #57
    opened)`."""
    had_ticket = change.ticket_id is not None and not (change.opened or change.joined)
    head = f"msg {change.message_id}"
    if had_ticket:
        head = f"#{change.ticket_id} {head}"
    parts = [
        f"{_LABELS[column]} {_short(column, old)} -> {_short(column, new)}"
        for column, (old, new) in change.message.items()
        if column in _LABELS
    ]
    parts += [
        f"ticket {_LABELS[column]} {_short(column, old)} -> {_short(column, new)}"
        for column, (old, new) in change.ticket.items()
    ]
    line = f"{head}: {'; '.join(parts) or 'read the same'}"
    if change.opened:
        line += f" (ticket #{change.ticket_id} opened)"
    elif change.joined:
        line += f" (joined ticket #{change.ticket_id})"
    if change.thread_now is not None:
        ticket_id, rule = change.thread_now
        where = {NEW: "a new ticket", NO_TICKET: "no ticket (automatic mail)"}.get(
            rule, f"#{ticket_id} by {rule}"
        )
        line += f"; today's threading says {where}, left in #{change.ticket_id}"
    return line


def _pairs(changes: dict[str, tuple[Any, Any]]) -> dict[str, list[str]]:
    return {column: [_short(column, a), _short(column, b)] for column, (a, b) in changes.items()}


def as_json(change: Change) -> dict[str, Any]:
    """`change` as `--reparse --json` prints it: message and ticket ids, each changed field's
    old and new value, and what happened to the ticket."""
    return {
        "message": change.message_id,
        "ticket": change.ticket_id,
        "opened": change.opened,
        "joined": change.joined,
        "message_changes": _pairs(change.message),
        "ticket_changes": _pairs(change.ticket),
        "thread_now": list(change.thread_now) if change.thread_now else None,
        "line": describe(change),
    }


def command(database: Path, scope: Scope, *, dry_run: bool, json_out: bool, out: TextIO) -> int:
    """`desk-ingest --reparse`: read `scope` again, print what changed and a summary."""
    db = open_db(database)
    changes: list[dict[str, Any]] = []
    try:
        if json_out:
            tally = run(db, scope, lambda c: changes.append(as_json(c)), dry_run=dry_run)
        else:
            tally = run(
                db, scope, lambda c: print(describe(c), file=out, flush=True), dry_run=dry_run
            )
    finally:
        db.close()
    if json_out:
        summary = {**dataclasses.asdict(tally), "dry_run": dry_run}
        print(
            json.dumps({"changes": changes, "summary": summary}, ensure_ascii=False, indent=2),
            file=out,
        )
    else:
        print(tally.summary(dry_run=dry_run), file=out)
    return 0


def answer_requests(db: sqlite_utils.Database) -> None:
    """Read again every message an agent asked for (the desk's `P`), logging each."""
    after: int | None = 0
    while after is not None:
        after, changes = step(db, Scope(requested=True), after)
        for change in changes:
            log.info("read again on request: %s", describe(change))


def background(database: Path, stop: threading.Event) -> None:
    """The daemon's healer: messages an agent asks for within about a second, and after an
    upgrade every message an older parser read, a chunk at a time with pauses, until `stop`."""
    db = open_db(database)
    upgrade, tally = outdated(), Tally()
    start = reparse.first(db, upgrade)
    cursor = None if start is None else start - 1
    try:
        while not stop.is_set():
            try:
                answer_requests(db)
                if cursor is not None:
                    cursor, changes = step(db, upgrade, cursor)
                    tally.add(changes)
                    for change in changes:
                        if change.changed or change.thread_now is not None:
                            log.debug("%s", describe(change))
                    if cursor is None and tally.read:
                        log.info("healed what older parsers stored: %s", tally.summary())
            except Exception:  # noqa: BLE001 - the daemon's mail matters more; try again later
                log.exception("reading stored messages again failed; trying again later")
                stop.wait(RETRY_SECONDS)
                continue
            stop.wait(PAUSE_SECONDS if cursor is not None else POLL_SECONDS)
    finally:
        db.close()
