"""Building the mails the desk sends: replies, acknowledgements and maintenance notices.

Plain functions over plain data, no SQL. Each mail is built once, when it is queued, with its
Message-ID fixed then, so every attempt to send it hands over the same bytes: a mail sent twice
after a crash is recognisably one mail to the reader's client.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any
from zoneinfo import ZoneInfo

MAX_REFERENCES = 20  # the thread's last ones; RFC 5322 allows trimming the middle
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def address(mailbox: str) -> str:
    """The bare, lower-case address in 'Name <addr>' or 'addr'."""
    return parseaddr(mailbox)[1].lower()


def _domain(mailbox: str) -> str:
    return address(mailbox).rpartition("@")[2] or "valuit-desk.invalid"


def message_id(mailbox: str, key: str | None = None) -> str:
    """A Message-ID in the sender's domain: derived from `key` when the mail's identity is known
    up front (an acknowledgement, a notice to one subscriber), random otherwise."""
    token = hashlib.sha256(key.encode()).hexdigest()[:32] if key else uuid.uuid4().hex
    return f"<desk.{token}@{_domain(mailbox)}>"


def one_line(text: str) -> str:
    """Header-safe text: a customer's subject or name must not add header lines of its own."""
    return _CONTROL.sub(" ", text).strip()


def reply_subject(subject: str, ticket_id: int) -> str:
    """'Re: <the ticket's subject> [#N]': the token threads the customer's answer back."""
    return f"Re: {one_line(subject) or '(no subject)'} [#{ticket_id}]"


def build(
    *,
    sender: str,
    to: str,
    subject: str,
    body: str,
    msgid: str,
    date: datetime,
    in_reply_to: str | None = None,
    references: list[str] | tuple[str, ...] = (),
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    """A text/plain UTF-8 mail from `sender` (who also takes replies) to `to`."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["Reply-To"] = sender
    msg["To"] = to
    msg["Subject"] = one_line(subject)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = msgid
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    refs = [r for r in references if r][-MAX_REFERENCES:]
    if refs:
        msg["References"] = " ".join(refs)
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body, charset="utf-8")
    return msg


def recipient(name: str, addr: str) -> str:
    return formataddr((one_line(name), addr))


def quote(message: dict[str, Any], zone: ZoneInfo) -> str:
    """The message as a reply quotes it: 'On <date>, <name> wrote:' and '> ' lines."""
    when = datetime.fromisoformat(message["received_at"].replace("Z", "+00:00")).astimezone(zone)
    who = one_line(message["from_name"] or message["from_addr"]) or "you"
    text = (message["body_text"] or "").strip("\n")
    lines = [f"> {line}" if line else ">" for line in text.splitlines()]
    return f"On {when:%a %d %b %Y %H:%M %Z}, {who} wrote:\n" + "\n".join(lines)


def thread_headers(message: dict[str, Any] | None) -> tuple[str | None, list[str]]:
    """In-Reply-To and References for an answer to `message` (a stored one, or None)."""
    if not message or not message.get("message_id"):
        return None, []
    refs = message.get("refs") or []
    return message["message_id"], [*refs, message["message_id"]]


def parse_mailbox(entry: str) -> tuple[str, str | None]:
    """(name, lower-case address) of 'Name <addr>' or 'addr'; address None if there is none."""
    name, addr = parseaddr(entry.strip())
    if "@" not in addr or any(c.isspace() for c in addr) or addr.startswith("@"):
        return "", None
    return one_line(name), addr.lower()
