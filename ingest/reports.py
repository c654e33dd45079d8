"""Report parts: what a delivery status notification (RFC 3464, RFC 6533) and a message
disposition notification (RFC 8098) say, read once the body is.

A DSN whose every `Action` is `delayed` (or `delivered`, `relayed`, `expanded`) fails nothing
and is a delay notice; one with `failed`, or without any Action, is a bounce. An MDN is a read
receipt: its `Original-Message-ID` names the mail it reports on.
"""

from __future__ import annotations

import re
from email.message import Message
from email.utils import collapse_rfc2231_value

from db.mailin.inline import DSN_TYPES, MDN_TYPES, unfold_fields
from db.mailin.model import Incoming
from ingest.body import MAX_PARTS, MSGID, report_text

_ACTION = re.compile(r"^action:[ \t]*([a-z]+)", re.IGNORECASE | re.MULTILINE)
_ORIGINAL_ID = re.compile(r"^original-message-id:[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)
# RFC 8098 section 3.2.6: "Disposition: manual-action/MDN-sent-manually; displayed".
_DISPOSITION = re.compile(r"^disposition:[^;\n]*;[ \t]*([a-z-]+)", re.IGNORECASE | re.MULTILINE)


def report_type(headers: Message) -> str:
    """The `report-type` parameter of a multipart/report (RFC 6522 section 3), or ''."""
    if headers.get_content_type() != "multipart/report":
        return ""
    value = headers.get_param("report-type", "")
    return str(collapse_rfc2231_value(value) if isinstance(value, tuple) else value)


def read(msg: Incoming, body: Message) -> None:
    """Set `msg.kind` from the report parts of `body` when it has any, `msg.report` to a
    delivery report's fields, and for a read receipt `msg.receipt_of`: the mail the receipt
    reports as displayed (RFC 8098 section 3.2.6.2), from its Original-Message-ID, else the
    receipt's In-Reply-To."""
    dsn: list[str] = []
    mdn: list[str] = []
    for part in _report_parts(body):
        ctype = part.get_content_type()
        (dsn if ctype in DSN_TYPES else mdn).append(report_text(part))
    msg.report = "\n".join(dsn)
    if dsn:
        actions = {a.lower() for text in dsn for a in _ACTION.findall(text)}
        msg.kind = "delay" if actions and "failed" not in actions else "bounce"
    elif mdn:
        msg.kind = "read-receipt"
    if msg.kind != "read-receipt":
        return
    text = unfold_fields("\n".join(mdn))
    disposition = _DISPOSITION.search(text)
    if disposition and disposition.group(1).lower() != "displayed":
        return  # deleted, dispatched or processed unread: no one read it
    original = _ORIGINAL_ID.search(text)
    named = MSGID.search(original.group(1)) if original else None
    msg.receipt_of = named.group(0) if named else msg.in_reply_to


def _report_parts(body: Message) -> list[Message]:
    """The DSN and MDN parts of a report: the direct parts of a top-level multipart/report
    (RFC 6522 section 3). A person's mail that carries such a part elsewhere (a bounce the
    customer forwards inline) is the person's mail, not a report."""
    if body.get_content_type() != "multipart/report" or not body.is_multipart():
        return []
    parts = body.get_payload()[:MAX_PARTS]
    return [p for p in parts if p.get_content_type() in (*DSN_TYPES, *MDN_TYPES)]
