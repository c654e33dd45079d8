"""The body of a message: which parts are its text, which are attachments, and what a
delivery report says about the mail it returns."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from email.message import Message

from inscriptis import get_text

from db.model import Attachment, Incoming
from ingest.charsets import WHOLE, attachment_name, clean, content_charset, payload_text

MAX_PARTS = 500  # beyond this a message is hostile or broken; keep what came first
MAX_TEXT = 2_000_000
MSGID = re.compile(r"<[^<>\s]{1,900}>")
_RETURNED_ID = re.compile(r"^message-id:[ \t]*(<[^<>\s]{1,900}>)", re.IGNORECASE | re.MULTILINE)
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")
_BIDI = dict.fromkeys(
    map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
)


def read_body(msg: Incoming, body: Message) -> None:
    plain: list[str] = []
    html: list[str] = []
    declared: list[str] = []
    used: list[str] = []
    for index, part in enumerate(_leaves(body, msg)):
        ctype = part.get_content_type()
        if ctype in ("text/rfc822-headers", "message/delivery-status", "message/rfc822"):
            text = payload_text(part)[0]
            msg.bounced_ids.extend(MSGID.findall(text)[:5])
            own = _RETURNED_ID.search(text) if ctype != "message/delivery-status" else None
            if own and msg.auto == "bounce" and msg.bounce_of is None:
                msg.bounce_of = own.group(1)
            if ctype == "message/delivery-status":
                plain.append(payload_text(part)[0])
            continue
        disposition = (part.get_content_disposition() or "").lower()
        filename = _filename(part)
        if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            text, charset = payload_text(part, msg.defects)
            declared.append(content_charset(part))
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
        # Not `get_payload()` on a leaf: it decodes 8-bit text with the part's charset label,
        # and a label such as "undefined" or one holding a NUL raises.
        if part.get_content_type() in WHOLE or not part.is_multipart():
            leaves.append(part)
        else:
            stack.extend(reversed(part.get_payload()))
    if stack:
        msg.defects.append("TooManyParts")
    return leaves


def _html_text(html: str) -> str:
    if not html.strip():
        return ""
    try:
        return get_text(html).strip()
    except Exception:  # noqa: BLE001 - a renderer failure must not lose the mail; show tags
        return html


def _filename(part: Message) -> str:
    try:
        return clean(attachment_name(part))
    except Exception:  # noqa: BLE001 - malformed RFC 2231 parameters
        return ""


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


def raw_text(raw: bytes) -> str:
    """The message as it came, for showing what could not be parsed."""
    return raw[:MAX_TEXT].decode("utf-8", "replace").replace("\r\n", "\n")
