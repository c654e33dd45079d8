"""Parsing: raw bytes to an `Incoming` message, for any bytes at all.

The standard library's `email` does the work: `compat32` for structure (it is several times
faster, because `policy.default` parses every header through its registry on each access), and
`policy.default`'s header machinery for the encoded words `compat32` leaves undecoded. The traps
it and mail-parser fall into are handled here: repeated headers (first wins), raw 8-bit header
bytes (decoded as UTF-8, else Windows-1252, instead of losing them), unknown or missing
charsets, ISO-2022-JP and UTF-7 bodies, absurd dates, garbage Message-IDs, and MIME nested so
deep that the parser's recursion gives out. mail-parser reads the Received trace, so mail read
late (a first sync, a daemon that was down) keeps the time it reached our server.

What cannot be parsed at all is still returned, with `parse_error` set and the raw bytes kept,
so it is stored and shown, never dropped.
"""

from __future__ import annotations

import codecs
import email
import email.parser
import hashlib
import re
import unicodedata
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from inscriptis import get_text
from mailparser.utils import receiveds_parsing

from db import clock
from db.model import Attachment, Incoming
from ingest import route

MAX_PARTS = 500  # beyond this a message is hostile or broken; keep what came first
MAX_TEXT = 2_000_000
_MSGID = re.compile(r"<[^<>\s]{1,900}>")
# Parts read whole, though the stdlib parses them into header blocks.
_WHOLE = ("message/rfc822", "message/delivery-status")
_RETURNED_ID = re.compile(r"^message-id:[ \t]*(<[^<>\s]{1,900}>)", re.IGNORECASE | re.MULTILINE)
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FOLD = re.compile(r"\r?\n[ \t]")
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")
_BIDI = dict.fromkeys(
    map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
)
_FALLBACK_CHARSETS = ("utf-8", "windows-1252")


def parse(raw: bytes) -> Incoming:
    """Parse `raw`; never raises for any input."""
    msg = Incoming(raw=raw, sha256=hashlib.sha256(raw).hexdigest())
    try:
        _parse_into(msg, raw)
    except Exception as exc:  # noqa: BLE001 - any failure becomes a stored, flagged message
        msg.parse_error = f"{type(exc).__name__}: {exc}"[:500]
        msg.body_text = _raw_text(raw)
    return msg


def _parse_into(msg: Incoming, raw: bytes) -> None:
    head, _ = _split(raw)
    headers = email.parser.HeaderParser(policy=policy.compat32).parsestr(_decode_header_block(head))
    if not headers.keys():
        raise ValueError("no mail headers found; stored as raw text")
    _read_headers(msg, headers)
    msg.auto = route.auto_kind(
        lambda name: _header(headers, name), headers.get_content_type(), msg.from_addr
    )
    try:
        body = email.message_from_bytes(raw, policy=policy.compat32)
    except RecursionError:
        msg.parse_error = "MIME structure nested too deeply to parse; shown as raw text"
        msg.body_text = _raw_text(raw)
        return
    msg.auto = route.auto_kind(
        lambda n: _header(headers, n), body.get_content_type(), msg.from_addr
    )
    _read_body(msg, body)
    msg.defects.extend(sorted({type(d).__name__ for d in body.defects}))


def _split(raw: bytes) -> tuple[bytes, bytes]:
    end = _HEADER_END.search(raw)
    if end is None:
        return raw, b""
    return raw[: end.start()], raw[end.end() :]


def _decode_header_block(head: bytes) -> str:
    """Headers should be ASCII; real mail has raw UTF-8 or Latin-1 in them. Keep the text."""
    for charset in _FALLBACK_CHARSETS:
        try:
            return head.decode(charset)
        except UnicodeDecodeError:
            continue
    return head.decode("latin-1")


def _raw_header(headers: Message, name: str) -> str:
    """The first value of a header, unfolded, encoded words left as they are."""
    value = headers.get(name)
    return _unfold(value) if value is not None else ""


def _unfold(value: object) -> str:
    return _FOLD.sub(" ", str(value))


def _header(headers: Message, name: str) -> str:
    """The first value of a header as text: a repeated header is not a list, encoded words are
    decoded, a broken one is its raw text."""
    return _clean(_decode_words(_raw_header(headers, name)))


def _decode_words(value: str) -> str:
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # noqa: BLE001 - unknown charsets and broken words: try the lenient parser
        try:
            return str(policy.default.header_factory("x-header", value))
        except Exception:  # noqa: BLE001 - still broken: show it as it came
            return value


def _clean(text: str) -> str:
    # Lone surrogates from undecodable bytes cannot be stored or shown; make them visible.
    return text.encode("utf-8", "replace").decode("utf-8").strip()


def _msgid(text: str) -> str | None:
    match = _MSGID.search(text)
    return match.group(0) if match else None


def _addresses(headers: Message, name: str) -> list[tuple[str, str]]:
    # Split first, decode names after: a decoded name may contain the commas that separate.
    raw = _raw_header(headers, name)
    pairs = getaddresses([raw]) if raw else []
    return [(_clean(_decode_words(n)), _clean(a)) for n, a in pairs if a or n]


def _read_headers(msg: Incoming, headers: Message) -> None:
    msg.subject = _header(headers, "subject").replace("\r", "").replace("\n", "")
    name, addr = parseaddr(_raw_header(headers, "from"))
    msg.from_name, msg.from_addr = _clean(_decode_words(name)), _clean(addr).lower()
    to = _addresses(headers, "to")
    cc = _addresses(headers, "cc")
    msg.to_addrs = [_display(n, a) for n, a in to]
    msg.cc_addrs = [_display(n, a) for n, a in cc]
    delivered = [a for n in ("delivered-to", "x-original-to") for _, a in _addresses(headers, n)]
    msg.recipients = list(dict.fromkeys(a.lower() for a in [*delivered, *(a for _, a in to + cc)]))
    msg.message_id = _msgid(_header(headers, "message-id"))
    msg.in_reply_to = _msgid(_header(headers, "in-reply-to"))
    msg.references = _MSGID.findall(_header(headers, "references"))[-50:]
    msg.date_header = _header(headers, "date")
    msg.sent_at = _date(msg.date_header, msg.defects)
    msg.delivered_at = _delivered_at(headers)
    msg.headers = "\n".join(
        f"{k}: {_clean(_decode_words(_unfold(v)))}" for k, v in headers.raw_items()
    )


def _display(name: str, addr: str) -> str:
    return f"{name} <{addr}>" if name else addr


def _date(text: str, defects: list[str]) -> str | None:
    if not text:
        defects.append("MissingDate")
        return None
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        defects.append("UnparseableDate")
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=clock.now().tzinfo)
    # A date far from now is a broken clock or a forgery; keep the header, not the claim.
    if not 1990 <= moment.year <= clock.now().year + 1:
        defects.append("ImplausibleDate")
        return None
    return clock.iso(moment)


def _delivered_at(headers: Message) -> str | None:
    """When the last hop, our own mail server, received the message: the newest Received."""
    top = _raw_header(headers, "received")
    if not top:
        return None
    try:
        (hop,) = receiveds_parsing([top])
        moment = clock.parse(hop["date_utc"])
    except (KeyError, ValueError, TypeError):
        return None
    return clock.iso(moment) if 1990 <= moment.year <= clock.now().year + 1 else None


def _read_body(msg: Incoming, body: Message) -> None:
    plain: list[str] = []
    html: list[str] = []
    declared: list[str] = []
    used: list[str] = []
    for index, part in enumerate(_leaves(body, msg)):
        ctype = part.get_content_type()
        if ctype in ("text/rfc822-headers", "message/delivery-status", "message/rfc822"):
            text = _payload_text(part)[0]
            msg.bounced_ids.extend(_MSGID.findall(text)[:5])
            own = _RETURNED_ID.search(text) if ctype != "message/delivery-status" else None
            if own and msg.auto == "bounce" and msg.bounce_of is None:
                msg.bounce_of = own.group(1)
            if ctype == "message/delivery-status":
                plain.append(_payload_text(part)[0])
            continue
        disposition = (part.get_content_disposition() or "").lower()
        filename = _filename(part)
        if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            text, charset = _payload_text(part)
            declared.append(part.get_content_charset() or "")
            used.append(charset)
            (plain if ctype == "text/plain" else html).append(text)
        else:
            msg.attachments.append(_attachment(part, filename, index))
    msg.body_html = "\n".join(html)[:MAX_TEXT]
    msg.body_text = ("\n\n".join(plain) if plain else _html_text(msg.body_html))[:MAX_TEXT]
    msg.charset_declared = ",".join(dict.fromkeys(c for c in declared if c))
    msg.charset_used = ",".join(dict.fromkeys(c for c in used if c))


def _leaves(body: Message, msg: Incoming) -> list[Message]:
    """Leaf parts in order, walked without recursion, bounded in number."""
    leaves: list[Message] = []
    stack = [body]
    while stack and len(leaves) < MAX_PARTS:
        part = stack.pop()
        payload = part.get_payload()
        if part.get_content_type() in _WHOLE or not isinstance(payload, list):
            leaves.append(part)
        else:
            stack.extend(reversed(payload))
    if stack:
        msg.defects.append("TooManyParts")
    return leaves


def _payload_text(part: Message) -> tuple[str, str]:
    """A text part's content and the charset that decoded it."""
    if part.get_content_type() in _WHOLE:
        # Parsed into header blocks: the returned mail, or the report's per-message and
        # per-recipient fields (Action, Status, Diagnostic-Code).
        inner = part.get_payload()
        blocks = inner if isinstance(inner, list) else []
        data = b"\n".join(block.as_bytes() for block in blocks)
    else:
        data = part.get_payload(decode=True) or b""
    charset = (part.get_content_charset() or "").strip().lower()
    candidates = [charset] if charset else []
    for name in [*candidates, *_FALLBACK_CHARSETS]:
        try:
            codecs.lookup(name)
            return data.decode(name).replace("\r\n", "\n"), name
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1").replace("\r\n", "\n"), "latin-1"


def _html_text(html: str) -> str:
    if not html.strip():
        return ""
    try:
        return get_text(html).strip()
    except Exception:  # noqa: BLE001 - a renderer failure must not lose the mail; show tags
        return html


def _filename(part: Message) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:  # noqa: BLE001 - malformed RFC 2231 parameters
        name = ""
    return _clean(_decode_words(str(name)))


def safe_name(display: str, index: int) -> str:
    """A file name that is only a name: no directories, controls, bidi overrides or dots first."""
    base = unicodedata.normalize("NFC", display).translate(_BIDI)
    base = base.replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE_NAME.sub("_", base).strip(" .")[:120]
    return base or f"attachment-{index}"


def _attachment(part: Message, filename: str, index: int) -> Attachment:
    try:
        data = part.get_payload(decode=True) or b""
    except Exception:  # noqa: BLE001 - keep the undecoded payload rather than nothing
        data = str(part.get_payload()).encode("utf-8", "replace")
    display = filename or f"part-{index}"
    return Attachment(
        display_name=display,
        safe_name=safe_name(display, index),
        content_type=part.get_content_type(),
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _raw_text(raw: bytes) -> str:
    """The message as it came, for showing what could not be parsed."""
    return raw[:MAX_TEXT].decode("utf-8", "replace").replace("\r\n", "\n")
