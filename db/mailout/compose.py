"""Building the mails the desk sends: replies, acknowledgements and maintenance notices.

Plain functions over plain data, no SQL. Each mail is built once, when it is queued, with its
Message-ID fixed then, so every attempt to send it hands over the same bytes: a mail sent twice
after a crash is recognisably one mail to the reader's client. Built with the stdlib's compat32
classes: `policy.default` re-parses every header through its registry and made queueing a
notice to 2,000 subscribers take 5 s.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.charset import QP, Charset
from email.header import Header
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any
from zoneinfo import ZoneInfo

from db.core.mailbox import address, one_line

MAX_REFERENCES = 20  # the thread's first (its root, which clients thread on) and latest ones
_WIRE = compat32.clone(linesep="\r\n")
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP  # readable in any client's "show source", unlike base64


@dataclass(frozen=True)
class Mail:
    """One mail as it goes out (`raw`, CRLF line ends) and the facts the desk keeps of it."""

    raw: bytes
    message_id: str
    sender: str  # 'Name <address>'
    to: str  # 'Name <address>'
    cc: tuple[str, ...]  # 'Name <address>' each
    subject: str
    body: str
    date: str
    in_reply_to: str | None
    references: tuple[str, ...]
    headers: str  # the header block as text, for the thread's header view
    auto: bool  # Auto-Submitted: a machine's mail, not an agent's

    @property
    def rcpt(self) -> str:
        return address(self.to)

    @property
    def cc_addresses(self) -> list[str]:
        return [address(c) for c in self.cc]


def _domain(mailbox: str) -> str:
    return address(mailbox).rpartition("@")[2] or "valuit-desk.invalid"


def message_id(mailbox: str, key: str | None = None) -> str:
    """A Message-ID in the sender's domain: derived from `key` when the mail's identity is known
    up front (an acknowledgement, a notice to one subscriber), random otherwise."""
    token = hashlib.sha256(key.encode()).hexdigest()[:32] if key else uuid.uuid4().hex
    return f"<desk.{token}@{_domain(mailbox)}>"


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
    cc: tuple[str, ...] = (),
) -> Mail:
    """A text/plain UTF-8 mail from `sender` (who also takes replies) to `to`."""
    subject = one_line(subject)
    refs = tuple(r for r in references if r)
    if len(refs) > MAX_REFERENCES:  # RFC 5322 §3.6.4 allows trimming the middle
        refs = (refs[0], *refs[-(MAX_REFERENCES - 1) :])
    fields = {
        "From": _mailbox(sender),
        "Reply-To": _mailbox(sender),
        "To": _mailbox(to),
        "Cc": ", ".join(_mailbox(c) for c in cc) or None,
        "Subject": subject if subject.isascii() else Header(subject, "utf-8"),
        "Date": format_datetime(date),
        "Message-ID": msgid,
        "In-Reply-To": in_reply_to,
        "References": " ".join(refs) or None,
        **(headers or {}),
    }
    msg = MIMEText(body, "plain", _UTF8)
    for name, value in fields.items():
        if value:
            msg[name] = value
    return Mail(
        raw=msg.as_bytes(policy=_WIRE),
        message_id=msgid,
        sender=sender,
        to=to,
        cc=cc,
        subject=subject,
        body=body,
        date=fields["Date"],
        in_reply_to=in_reply_to,
        references=refs,
        headers="\n".join(f"{k}: {v}" for k, v in fields.items() if v and k != "Subject")
        + f"\nSubject: {subject}",
        auto="Auto-Submitted" in fields,
    )


def _mailbox(mailbox: str) -> str:
    """A 'Name <addr>' header value, its name encoded when it is not ASCII."""
    name, addr = parseaddr(mailbox)
    return formataddr((name, addr), charset="utf-8")


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
