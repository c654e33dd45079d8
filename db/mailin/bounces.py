"""What a bounce says about a mail we sent: failed for good, or only delayed (RFC 3464).

A relay takes our mail with a 250 and the remote server refuses it later; the news comes back
as a delivery status notification. Read at ingest, it fails the outbox's mail as a 5xx would,
and the ticket shows it.
"""

from __future__ import annotations

import re

import sqlite_utils

from db.mailin.inline import unfold_fields
from db.mailin.model import Incoming
from db.mailout import outbox

_ACTION = re.compile(r"^action:[ \t]*([a-z]+)", re.IGNORECASE | re.MULTILINE)
_STATUS = re.compile(r"^status:[ \t]*(\d\.\d{1,3}\.\d{1,3})", re.IGNORECASE | re.MULTILINE)
_DIAGNOSTIC = re.compile(
    r"^diagnostic-code:[ \t]*[^;\n]*;[ \t]*(.+)$", re.IGNORECASE | re.MULTILINE
)


def verdict(report: str) -> str | None:
    """Why the mail failed, or None when the report says it is only delayed (or delivered).
    `report` is a delivery report's fields (RFC 3464 section 2.3), folded lines and all."""
    report = unfold_fields(report)
    actions = {a.lower() for a in _ACTION.findall(report)}
    if actions and "failed" not in actions:
        return None
    diagnostic, status = _DIAGNOSTIC.search(report), _STATUS.search(report)
    why = diagnostic.group(1) if diagnostic else status.group(1) if status else "no reason given"
    return f"bounced: {why.strip()[:300]}"


def record(db: sqlite_utils.Database, msg: Incoming) -> None:
    """Fail the mail of ours that `msg` bounces, if it does (inside the caller's transaction)."""
    if msg.kind != "bounce" or msg.bounce_of is None:
        return
    # A bounce without a report part (servers older than RFC 3464) may write the fields in its
    # text, or at least a status code.
    why = verdict(msg.report or msg.body_text)
    if why is not None:
        outbox.bounced(db, msg.bounce_of, why)
