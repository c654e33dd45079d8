"""Parsing: raw bytes to an `Incoming` message, for any bytes at all.

The standard library's `email` does the work, once a message: `compat32` for structure (it is
several times faster, because `policy.default` parses every header through its registry on each
access), its header fields read from the parsed message unless they hold raw 8-bit bytes;
`ingest.charsets` reads the text out of the bytes (charset labels as mail clients read them,
encoded words, attachment names, raw 8-bit headers, undeclared 8-bit text). The traps the stdlib
and mail-parser fall into are handled here: repeated headers (first wins), raw 8-bit header
bytes, unknown or missing charsets, ISO-2022-JP and UTF-7 bodies, absurd dates, garbage
Message-IDs, and MIME nested so deep that the parser's recursion gives out. The Received trace
is read as mail-parser reads it (`ingest.received`), so mail read late (a first sync, a daemon
that was down) keeps the time it reached our server.

What cannot be parsed at all is still returned, with `parse_error` set and the raw bytes kept,
so it is stored and shown, never dropped.
"""

from __future__ import annotations

import email.parser
import hashlib
import re
from datetime import datetime, timedelta, timezone
from email import policy
from email.message import Message
from email.utils import parsedate_to_datetime

from db.core import clock, mailbox
from db.mailin.model import Incoming
from ingest import addresses, copies, received, reports, route
from ingest.body import MSGID, raw_text, read_body, safe_name
from ingest.charsets import clean, decode_header_block, decode_words
from ingest.headers import Fields, raw_header, unfold

__all__ = ["PARSER_VERSION", "parse", "safe_name"]

# Stored with each message; `desk-ingest --reparse` reads older versions again. 0 is a message
# stored before versions were kept.
PARSER_VERSION = 1
_HEADER_END = re.compile(rb"\n\r?\n")
# `email.message_from_bytes` without a parser made for each message; it keeps no state.
_PARSER = email.parser.BytesParser(policy=policy.compat32)


def parse(raw: bytes) -> Incoming:
    """Parse `raw`; never raises for any input."""
    msg = Incoming(raw=raw, sha256=hashlib.sha256(raw).hexdigest(), parser_version=PARSER_VERSION)
    msg.copy_key = copies.copy_key(raw)
    try:
        _parse_into(msg, raw)
    except Exception as exc:  # noqa: BLE001 - any failure becomes a stored, flagged message
        msg.parse_error = f"{type(exc).__name__}: {exc}"[:500]
        msg.body_text = raw_text(raw)
    return msg


def _parse_into(msg: Incoming, raw: bytes) -> None:
    head = _head(raw)
    whole = _whole(raw)
    # An ASCII header block with only CRLF or LF line ends parses into the same fields inside
    # the message as on its own; any other is read as text first (`decode_header_block`).
    plain = head.isascii() and b"\x1b" not in head and head.count(b"\r") == head.count(b"\r\n")
    if isinstance(whole, Message) and plain:
        headers = whole
    else:
        text = decode_header_block(head)
        headers = email.parser.HeaderParser(policy=policy.compat32).parsestr(text)
    if len(headers) == 0:
        raise ValueError("no mail headers found; stored as raw text")
    fields = Fields(headers)
    _read_headers(msg, headers, fields)
    ctype = headers.get_content_type()
    # Only a multipart/report has a report type: no need to read the parameters of others.
    report = reports.report_type(headers) if ctype == "multipart/report" else ""
    msg.kind = route.kind(fields.text, ctype, report, msg.from_addr, fields.names)
    # A client may mark the mail its unsubscribe button sends as automatic; a delivery report
    # or a read receipt quoting the subject is no request.
    if msg.kind in ("", "list", "auto-reply"):
        msg.unsubscribe_token = route.unsubscribe_token(msg.subject)
    if isinstance(whole, RecursionError):
        msg.parse_error = "MIME structure nested too deeply to parse; shown as raw text"
        msg.body_text = raw_text(raw)
        return
    if isinstance(whole, Exception):
        raise whole
    read_body(msg, whole)
    if headers is not whole or ctype == "multipart/report":  # the others have no report parts
        reports.read(msg, whole)
    msg.defects.extend(sorted({type(d).__name__ for d in whole.defects}))


def _whole(raw: bytes) -> Message | Exception:
    """The message parsed, or what parsing it raised: raised once its headers are read, so a
    message whose body cannot be parsed keeps its sender and subject."""
    try:
        return _PARSER.parsebytes(raw)
    except Exception as exc:  # noqa: BLE001 - see above
        return exc


def _head(raw: bytes) -> bytes:
    """The header block: up to the first empty line, which ends in CRLF or LF; the CR before
    it belongs to the empty line too. A pattern that starts with the LF is found much
    faster than one with an optional CR first."""
    end = _HEADER_END.search(raw)
    if end is None:
        return raw
    start = end.start()
    return raw[: start - 1] if start and raw[start - 1] == 13 else raw[:start]


def _msgid(text: str) -> str | None:
    match = MSGID.search(text)
    return match.group(0) if match else None


def _read_headers(msg: Incoming, headers: Message, fields: Fields) -> None:
    msg.subject = fields.text("subject").replace("\r", "").replace("\n", "")
    defects: list[str] = []
    msg.from_name, msg.from_addr = addresses.author(fields, defects)
    to = addresses.mailboxes(fields, "to", defects)
    cc = addresses.mailboxes(fields, "cc", defects)
    msg.to_addrs = [addresses.display(m) for m in to]
    msg.cc_addrs = [addresses.display(m) for m in cc]
    msg.reply_to = [
        mailbox.recipient(m.name, real)
        for m in addresses.mailboxes(fields, "reply-to", defects)
        if (real := mailbox.real_address(m.addr))
    ]
    delivered = [
        m for field in ("delivered-to", "x-original-to")
        for m in addresses.mailboxes(fields, field, defects)
    ]  # fmt: skip
    msg.recipients = list(dict.fromkeys(m.addr for m in [*delivered, *to, *cc] if m.addr))
    msg.defects.extend(dict.fromkeys(defects))
    msg.message_id = _msgid(fields.text("message-id"))
    msg.in_reply_to = _msgid(fields.text("in-reply-to"))
    msg.references = MSGID.findall(fields.text("references"))[-50:]
    msg.date_header = fields.text("date")
    today = clock.now()
    msg.sent_at = _date(msg.date_header, msg.defects, today)
    msg.delivered_at = _delivered_at(fields, today)
    msg.headers = "\n".join([f"{k}: {_text(v)}" for k, v in headers.raw_items()])


def _text(value: str) -> str:
    """A field's value as text, on one line, its encoded words decoded."""
    if value.isascii() and "\n" not in value and "=?" not in value:  # nothing to unfold or decode
        return value.strip()
    return clean(decode_words(unfold(value)))


def _date(text: str, defects: list[str], today: datetime) -> str | None:
    if not text:
        defects.append("MissingDate")
        return None
    plain = received.PLAIN_DATE.fullmatch(text)
    try:
        moment = _header_date(plain) if plain else parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        defects.append("UnparseableDate")
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=today.tzinfo)
    # A date far from now is a broken clock or a forgery; keep the header, not the claim.
    if not 1990 <= moment.year <= today.year + 1:
        defects.append("ImplausibleDate")
        return None
    return clock.iso(moment)


def _header_date(plain: re.Match[str]) -> datetime:
    """`parsedate_to_datetime` of a date in the form nearly every mailer writes
    (`received.PLAIN_DATE`), without its general parser: naive for the zone -0000 (RFC 5322
    3.3, "no information about the local time zone"); ValueError for a day, time or zone that
    does not exist, as it raises."""
    _, day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = plain.groups()
    offset = (int(zone_hours) * 3600 + int(zone_minutes) * 60) * (-1 if sign == "-" else 1)
    zone = None if sign == "-" and not offset else timezone(timedelta(seconds=offset))
    number = received.MONTHS.index(month) + 1
    return datetime(int(year), number, int(day), int(hour), int(minute), int(second), tzinfo=zone)


def _delivered_at(fields: Fields, today: datetime) -> str | None:
    """When the last hop, our own mail server, received the message: the newest Received."""
    top = raw_header(fields, "received")
    if not top:
        return None
    try:
        moment = received.moment(top)
    except (KeyError, ValueError, TypeError, AttributeError):  # no date mail-parser can read
        return None
    return clock.iso(moment) if 1990 <= moment.year <= today.year + 1 else None
