"""Acknowledgements: whether a new ticket's first mail gets one, and what it says.

Never to automatic mail (an auto-reply, bounce, delay notice or read receipt), to a person's
mail that came through a mailing list (the list would get it), to robot addresses, to our own
addresses, or to a sender acknowledged within the configured interval: together these keep two
automatic responders from answering each other for ever (RFC 3834 section 2). The
acknowledgement carries `Auto-Submitted: auto-replied`, goes out with an empty envelope sender,
and never quotes the customer's mail (which may be spam with a forged sender).
It goes where RFC 3834 section 4 sends automatic responses: to the Return-Path, never to the
Reply-To (which often names a list).
"""

from __future__ import annotations

import re
from datetime import timedelta

import sqlite_utils

from db.core import clock, mailbox
from db.core.config import MailOut
from db.mailin import threads
from db.mailin.model import Incoming
from db.mailout import compose, outbox

_AUTOMATIC = {  # the machine-written kinds of mail
    "auto-reply": "an auto-reply",
    "bounce": "a bounce",
    "delay": "a delay notice",
    "read-receipt": "a read receipt",
}
_BOUNCE_HANDLER = re.compile(r"bounce|^(ms)?prvs=|^srs[01][=+-]|^btv1=", re.I)
_RETURN_PATH = re.compile(r"^return-path:[ \t]*<([^<>]*)>", re.I | re.M)
_ROBOT = re.compile(
    r"^(mailer-daemon|postmaster|no-?reply|do-?not-?reply|listserv|majordomo|owner-.*|"
    r".*-request|.*-bounces?)(\+.*)?$",
    re.I,
)


def destination(msg: Incoming) -> str | None:
    """Where the acknowledgement of `msg` goes, as SMTP carries it: the Return-Path, the
    envelope sender our server recorded on delivery (RFC 3834 4); mail read without one, or
    whose Return-Path is a bulk sender's bounce handler, its From. None when that is no address
    the desk can write to, or the null path `<>`."""
    found = _RETURN_PATH.search(msg.headers)
    addr = mailbox.real_address(found.group(1).strip()) if found else msg.from_addr
    if found and _BOUNCE_HANDLER.search(found.group(1).split("@", 1)[0]):
        # A bulk sender's bounce handler (VERP, BATV, SRS) reads no answers: the From does.
        addr = msg.from_addr
    return mailbox.wire_address(addr) if addr else None


def skip_reason(db: sqlite_utils.Database, msg: Incoming, mail: MailOut) -> str | None:
    """Why `msg` must not be acknowledged, or None."""
    addr = msg.from_addr.lower()
    if msg.kind in _AUTOMATIC:
        return f"it is {_AUTOMATIC[msg.kind]}"
    if msg.parse_error is not None:
        return "it could not be parsed, so its sender is unsure"
    to = destination(msg)
    if to is None:
        return "its sender address is missing or one we cannot write to (not ASCII)"
    if addr in mail.own_addresses or to in mail.own_addresses:
        return "it comes from one of our own addresses"
    if msg.kind == "list":
        return "it comes from a mailing list"
    if any(_ROBOT.match(a.split("@", 1)[0]) for a in (addr, to)):
        return "its sender is an automated address"
    since = clock.now() - timedelta(minutes=mail.ack_interval_minutes)
    if outbox.recently_acknowledged(db, to, since):
        return f"the sender was acknowledged within {mail.ack_interval_minutes:g} minutes"
    return None


def plan(
    db: sqlite_utils.Database, msg: Incoming, ticket_id: int, function: str, mail: MailOut
) -> compose.Mail | str:
    """The acknowledgement for ticket `ticket_id`, or why there is none."""
    reason = skip_reason(db, msg, mail)
    if reason is not None:
        return reason
    to = destination(msg)
    assert to is not None  # else skip_reason gives one
    sender = mail.senders[function]
    greeting = f"Hello {mailbox.one_line(msg.from_name)}," if msg.from_name else "Hello,"
    body = (
        f"{greeting}\n\n"
        f"Thank you for writing to Valuit {function} support. Your message is ticket "
        f"#{ticket_id}; please keep [#{ticket_id}] in the subject if you write again about it.\n\n"
        f"We expect to answer {mail.response_time(function)}.\n\n"
        "This is an automatic acknowledgement; there is no need to reply to it.\n"
    )
    if mail.signature:
        body += f"\n-- \n{mail.signature}\n"
    in_reply_to = msg.message_id
    return compose.build(
        sender=sender,
        to=mailbox.recipient(msg.from_name, to),
        subject=compose.reply_subject(threads.ticket_subject(msg.subject), ticket_id),
        body=body,
        msgid=compose.message_id(sender, f"ack:{ticket_id}:{msg.sha256}"),
        date=clock.now(),
        in_reply_to=in_reply_to,
        references=[*msg.references, in_reply_to] if in_reply_to else [],
        headers={"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"},
    )
