"""Address headers (From, To, Cc, Reply-To) read as mail clients read them (RFC 5322 3.4)."""

from __future__ import annotations

from email.message import Message
from email.utils import getaddresses

from ingest.charsets import clean, decode_words
from ingest.headers import raw_header


def addresses(headers: Message, name: str) -> list[tuple[str, str]]:
    # Split first, decode names after: a decoded name may contain the commas that separate.
    raw = raw_header(headers, name)
    pairs = getaddresses([raw]) if raw else []
    return [(clean(decode_words(n)), clean(a)) for n, a in pairs if a or n]


def display(name: str, addr: str) -> str:
    return f"{name} <{addr}>" if name else addr
