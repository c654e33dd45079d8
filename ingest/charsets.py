"""Text out of mail's bytes: charset labels read as mail clients read them, encoded words,
raw 8-bit headers, and the fallback for text that declares no charset.
"""

from __future__ import annotations

import codecs
from email import policy
from email.header import decode_header, make_header
from email.message import Message

FALLBACK_CHARSETS = ("utf-8", "windows-1252")
# Parts read whole, though the stdlib parses them into header blocks.
WHOLE = ("message/rfc822", "message/delivery-status")


def decode_header_block(head: bytes) -> str:
    """Headers should be ASCII; real mail has raw UTF-8 or Latin-1 in them. Keep the text."""
    for charset in FALLBACK_CHARSETS:
        try:
            return head.decode(charset)
        except UnicodeDecodeError:
            continue
    return head.decode("latin-1")


def decode_words(value: str) -> str:
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # noqa: BLE001 - unknown charsets and broken words: try the lenient parser
        try:
            return str(policy.default.header_factory("x-header", value))
        except Exception:  # noqa: BLE001 - still broken: show it as it came
            return value


def clean(text: str) -> str:
    # Lone surrogates from undecodable bytes cannot be stored or shown; make them visible.
    return text.encode("utf-8", "replace").decode("utf-8").strip()


def payload_text(part: Message) -> tuple[str, str]:
    """A text part's content and the charset that decoded it."""
    if part.get_content_type() in WHOLE:
        # Parsed into header blocks: the returned mail, or the report's per-message and
        # per-recipient fields (Action, Status, Diagnostic-Code).
        inner = part.get_payload()
        blocks = inner if isinstance(inner, list) else []
        data = b"\n".join(block.as_bytes() for block in blocks)
    else:
        data = part.get_payload(decode=True) or b""
    charset = (part.get_content_charset() or "").strip().lower()
    candidates = [charset] if charset else []
    for name in [*candidates, *FALLBACK_CHARSETS]:
        try:
            codecs.lookup(name)
            return data.decode(name).replace("\r\n", "\n"), name
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1").replace("\r\n", "\n"), "latin-1"
