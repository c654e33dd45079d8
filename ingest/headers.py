"""One header's value: the first of a repeated header, unfolded, encoded words decoded."""

from __future__ import annotations

import re
from email.message import Message

from ingest.charsets import clean, decode_words

_FOLD = re.compile(r"\r?\n[ \t]")


def raw_header(headers: Message, name: str) -> str:
    """The first value of a header, unfolded, encoded words left as they are."""
    value = headers.get(name)
    return unfold(value) if value is not None else ""


def unfold(value: object) -> str:
    """A header value on one line: each fold (a line break before white space, RFC 5322
    section 2.2.3) becomes one space."""
    return _FOLD.sub(" ", str(value))


def header(headers: Message, name: str) -> str:
    """The first value of a header as text: a repeated header is not a list, encoded words are
    decoded, a broken one is its raw text."""
    return clean(decode_words(raw_header(headers, name)))
