"""What `ingest/` hands to the store: a parsed message and its attachments, as plain data."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Attachment:
    display_name: str  # as sent; shown escaped, never used as a path
    safe_name: str  # what a saved copy is called
    content_type: str
    data: bytes
    sha256: str
    # A part shown in the thread after the body (RFC 2183 "inline"): a text part that is not
    # the body, or a report's fields (RFC 3464, RFC 8098). Its data is its text in UTF-8.
    inline: bool = False


# message.kind -> message.auto
AUTO_OF_KIND = {
    "": "",
    "list": "",
    "auto-reply": "auto-reply",
    "read-receipt": "auto-reply",
    "bounce": "bounce",
    "delay": "bounce",
}


@dataclass(frozen=True)
class Forwarded:
    """A mail forwarded as an attachment (message/rfc822), as the thread shows it."""

    from_: str
    date: str
    subject: str
    text: str


@dataclass
class Incoming:
    """One message as read and parsed, before it has a ticket. Every text field is text."""

    raw: bytes
    sha256: str
    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    from_addr: str = ""
    from_name: str = ""
    to_addrs: list[str] = field(default_factory=list)  # "Name <addr>" or "addr"
    cc_addrs: list[str] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)  # bare lower-case addresses, for routing
    subject: str = ""
    date_header: str = ""
    sent_at: str | None = None
    delivered_at: str | None = None  # when our mail server received it (top Received header)
    headers: str = ""
    body_text: str = ""
    body_html: str = ""
    charset_declared: str = ""
    charset_used: str = ""
    # "" (a person), "list" (a person, through a mailing list), or a machine's: "auto-reply",
    # "bounce" (RFC 3464 failed), "delay" (RFC 3464 delayed), "read-receipt" (RFC 8098 MDN)
    kind: str = ""
    reply_to: list[str] = field(default_factory=list)  # "Name <addr>" or "addr", RFC 5322 3.6.2
    receipt_of: str | None = None  # a read receipt: the Message-ID of the mail it reports on
    forwarded: list[Forwarded] = field(default_factory=list)  # mails attached as message/rfc822
    copy_key: str | None = None  # equal for copies that differ only in transport headers
    bounced_ids: list[str] = field(default_factory=list)  # Message-IDs a bounce reports on
    bounce_of: str | None = None  # a bounce: the Message-ID of the mail it returns
    # A delivery report's fields (RFC 3464 section 2.3: Action, Status, Diagnostic-Code), for
    # telling why our mail failed; read at ingest, not stored (the report is an attachment).
    report: str = ""
    # The token of an unsubscribe request (the subject our List-Unsubscribe mailto asks for,
    # `ingest.route.unsubscribe_token`): stored without a ticket when the token is ours.
    unsubscribe_token: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    parse_error: str | None = None
    defects: list[str] = field(default_factory=list)
    parser_version: int = 0

    @property
    def auto(self) -> str:
        """The coarse class every query filters on: '' when a person wrote it (directly or
        through a list), else 'bounce' for delivery reports, 'auto-reply' for the rest."""
        return AUTO_OF_KIND[self.kind]


@dataclass(frozen=True)
class Delivery:
    """Where a message was read from and which functions it is for."""

    source: str
    key: str  # the source's own id for it: a Maildir file name, an IMAP UIDVALIDITY/UID
    functions: tuple[str, ...]


@dataclass(frozen=True)
class Stored:
    message_id: int
    ticket_id: int | None
    new: bool  # False when the same bytes, or a copy of them (`copy_key`), were already stored
    rule: str
