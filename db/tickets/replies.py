"""An agent's reply to a ticket: the draft with the thread quoted, canned replies with their
placeholders filled, and sending, which queues the mail and records it in one transaction.

The reply goes out from the ticket's function's own address to the customer, or to the
Reply-To of their newest mail when it names one (RFC 5322 3.6.2), answers that mail
(In-Reply-To, References) and carries `[#N]` in the subject, so whichever way the customer's
client answers, the answer threads back into the ticket. A ticket whose mail named no address
(no usable sender) gets no reply, and the agent is told why.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from email.utils import getaddresses
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from db.core import clock, mailbox
from db.core.config import Canned, MailOut
from db.core.connect import write
from db.core.errors import DeskError
from db.core.events import record_event
from db.mailin import store
from db.mailout import compose
from db.maintenance import notices
from db.tickets import tickets

# Titles a display name may start with, which are no one's given name.
_TITLES = {"mr", "mrs", "ms", "miss", "dr", "prof", "herr", "frau", "mme", "mlle", "m", "sr", "sra"}
_PLACEHOLDER = re.compile(r"\{(ticket|name|subject|function|agent|signature|window_notice)\}")


@dataclass(frozen=True)
class Addressee:
    """Where a reply on a ticket goes and why there, or why it cannot go anywhere."""

    to: str  # 'Name <addr>' as the reply's To carries it; '' when no reply can be sent
    via: str  # '' for the requester, else why elsewhere ('Reply-To of Name <addr>') or not
    refusal: str  # why no reply can be sent, as the agent reads it; '' when one can
    copies: tuple[str, ...]  # the Reply-To's further mailboxes, which the Cc offers


def addressee(
    db: sqlite_utils.Database, ticket_id: int, own: frozenset[str] = frozenset()
) -> Addressee:
    """The Reply-To of the requester's newest mail when it names an address the desk can
    write to (RFC 5322 3.6.2: replies go there, not to the From) and that is not one of `own`
    (our addresses: a group that sets its Reply-To to our address would send the reply back to
    us), else the requester; else why the reply cannot be sent. NotFoundError for a ticket that
    does not exist."""
    ticket = tickets.get(db, ticket_id)
    name, addr = ticket["requester_name"] or "", ticket["requester_addr"]
    row = db.execute(
        "SELECT reply_to, kind FROM message WHERE ticket_id = ? AND direction = 'in' "
        "AND auto = '' AND from_addr = ? ORDER BY received_at DESC, id DESC LIMIT 1",
        [ticket_id, addr],
    ).fetchone()
    reply_to = [
        mailbox.recipient(n, wire)
        for n, a in getaddresses([row[0] if row else ""])
        if (wire := mailbox.wire_address(a.lower())) and wire not in own
    ]
    # A list's Reply-To names the list: an answer there would reach every member. A help desk
    # answers the person; the agent can add the list to the Cc.
    if reply_to and row[1] == "list" and (wire := mailbox.wire_address(addr)) is not None:
        note = f"mail via a list: its Reply-To {', '.join(reply_to)} is left out"
        return Addressee(mailbox.recipient(name, wire), note, "", ())
    if reply_to:
        author = mailbox.recipient(name, addr) if addr else name
        return Addressee(reply_to[0], f"Reply-To of {author}", "", tuple(reply_to[1:]))
    wire = mailbox.wire_address(addr)
    if wire is not None:
        return Addressee(mailbox.recipient(name, wire), "", "", ())
    if addr:
        why = (
            f"Ticket #{ticket_id}'s sender address {addr} has characters beyond ASCII before "
            "the @, which needs SMTPUTF8 (RFC 6531); the desk cannot send to it. Write to the "
            "customer from a mail client that can."
        )
    else:
        held = f'("{mailbox.one_line(name)}")' if name else "(none)"
        why = (
            f"Ticket #{ticket_id} has no usable sender: the From of its mail {held} is no "
            "address, so no reply can be sent. Write to the customer from your own mail "
            "client if you know their address."
        )
    return Addressee("", "", why, ())


def _last_incoming(db: sqlite_utils.Database, ticket_id: int) -> dict[str, Any] | None:
    row = next(
        db.query(
            "SELECT message_id, refs, from_addr, from_name, received_at, body_text FROM message "
            "WHERE ticket_id = ? AND direction = 'in' AND auto = '' "
            "ORDER BY received_at DESC, id DESC LIMIT 1",
            [ticket_id],
        ),
        None,
    )
    if row is not None:
        row["refs"] = json.loads(row["refs"] or "[]")
    return row


def window_notice(db: sqlite_utils.Database) -> str:
    """The email notice of the window in force (else the next one announced), as users got it."""
    row = notices.current_email(db, clock.now())
    if row is None:
        return "(No maintenance window is in force or announced.)"
    return row["body"].split("\n\n", 1)[-1].strip()


def fill(template: str, values: dict[str, str]) -> str:
    """Replace the known `{placeholders}`; any other brace is left as written."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def given_name(display: str) -> str:
    """The name a greeting uses: "Jane" of "Jane Smith", and of "Smith, Jane" (the
    directory form "Last, First" that Outlook and Exchange send); '' for none."""
    last, comma, rest = mailbox.one_line(display).partition(",")
    words = [w.strip(".,;:") for w in (rest if comma and rest.strip() else last).split()]
    named = [w for w in words if w.lower() not in _TITLES]
    return (named or words or [""])[0]


def _values(
    db: sqlite_utils.Database, ticket: dict[str, Any], agent: str, mail: MailOut
) -> dict[str, str]:
    return {
        "ticket": f"#{ticket['id']}",
        "name": given_name(ticket["requester_name"] or ""),
        "subject": mailbox.one_line(ticket["subject"]),
        "function": ticket["function"],
        "agent": agent,
        "signature": mail.signature,
        "window_notice": window_notice(db),
    }


def draft(
    db: sqlite_utils.Database,
    ticket_id: int,
    agent: str,
    mail: MailOut,
    zone: ZoneInfo,
    canned: Canned | None = None,
) -> str:
    """The text the composer opens with: a greeting or the canned reply, the signature, and
    the customer's newest message quoted."""
    ticket = tickets.get(db, ticket_id)
    values = _values(db, ticket, agent, mail)
    if canned is not None:
        text = fill(canned.body, values).strip("\n")
    else:
        text = f"Hello {values['name']},".replace(" ,", ",") + "\n\n"
    if mail.signature and "{signature}" not in (canned.body if canned else ""):
        text += f"\n\n-- \n{mail.signature}"
    last = _last_incoming(db, ticket_id)
    if last is not None:
        text += "\n\n" + compose.quote(last, zone)
    return text + "\n"


def default_cc(db: sqlite_utils.Database, ticket_id: int, mail: MailOut) -> str:
    """Who else the customer's newest mail went to (their colleagues in To and Cc), and the
    further addresses of its Reply-To, for the reply's Cc: 'Name <addr>, …', without the
    reply's To, the customer, us, or addresses we cannot write to."""
    target = addressee(db, ticket_id, mail.own_addresses)
    row = db.execute(
        "SELECT m.from_addr, m.to_addrs, m.cc_addrs, t.requester_addr FROM message m "
        "JOIN ticket t ON t.id = m.ticket_id WHERE m.ticket_id = ? AND m.direction = 'in' "
        "AND m.auto = '' ORDER BY m.received_at DESC, m.id DESC LIMIT 1",
        [ticket_id],
    ).fetchone()
    found = {mailbox.address(c): c for c in target.copies}
    if row is None:
        return ", ".join(found.values())
    skip = {mailbox.wire_address(row[3]), mailbox.address(target.to), *mail.own_addresses}
    for name, addr in getaddresses([row[0], row[1], row[2]]):
        wire = mailbox.wire_address(addr.lower())
        if wire is not None and wire not in skip:
            found.setdefault(wire, mailbox.recipient(name, wire))
    return ", ".join(found.values())


def parse_cc(text: str) -> tuple[str, ...]:
    """'Name <a@x>, b@y' → ('Name <a@x>', 'b@y'); DeskError naming what is not an address."""
    found, bad = [], []
    for name, addr in getaddresses([text]):
        if not (name or addr):
            continue
        wire = mailbox.wire_address(addr.lower())
        if wire is not None:
            found.append(mailbox.recipient(name, wire))
        else:
            bad.append(addr or name)
    if bad:
        raise DeskError(f"Cc: {', '.join(bad)} is not an address the desk can write to.")
    return tuple(dict.fromkeys(found))


def send(
    db: sqlite_utils.Database,
    ticket_id: int,
    body: str,
    agent: str,
    mail: MailOut,
    cc: str = "",
) -> int:
    """Queue the reply (to `addressee`, with `cc` as written in the composer), put it in the
    thread, record the first response; the outbox id. DeskError, saying why, when the reply is
    empty, the function has no sender, or the ticket has no address to write to."""
    if not body.strip():
        raise DeskError("The reply is empty; write something or press escape.")
    copies = parse_cc(cc)
    now = clock.now_iso()
    with write(db):
        ticket = tickets.get(db, ticket_id)
        sender = mail.senders.get(ticket["function"])
        if sender is None:
            raise DeskError(
                f"No address to send {ticket['function']} replies from: set "
                f"[functions.{ticket['function']}] sender in the configuration."
            )
        target = addressee(db, ticket_id, mail.own_addresses)
        if target.refusal:
            raise DeskError(target.refusal)
        last = _last_incoming(db, ticket_id)
        in_reply_to, references = compose.thread_headers(last)
        reply = compose.build(
            sender=sender,
            to=target.to,
            subject=compose.reply_subject(ticket["subject"], ticket_id),
            body=body,
            msgid=compose.message_id(sender),
            date=clock.now(),
            in_reply_to=in_reply_to,
            references=references,
            cc=copies,
        )
        outbox_id = store.queue_outgoing(
            db,
            reply,
            kind="reply",
            dedupe=f"reply:{reply.message_id}",
            actor=agent,
            ticket_id=ticket_id,
            function=ticket["function"],
        )
        assert outbox_id is not None  # a fresh Message-ID is never queued before
        # A customer who has been answered is no longer waiting for a first look.
        db.execute(
            "UPDATE ticket SET first_response_at = coalesce(first_response_at, ?), "
            "status = CASE status WHEN 'new' THEN 'open' ELSE status END WHERE id = ?",
            [now, ticket_id],
        )
        if ticket["status"] == "new":
            record_event(db, ticket_id, agent, "status", {"from": "new", "to": "open"}, at=now)
    return outbox_id
