"""One header's value: the first of a repeated header, unfolded, encoded words decoded; and
`Fields`, which answers those questions for one message from a single pass over its fields."""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from email.message import Message
from email.policy import compat32

from ingest.charsets import clean, decode_words

_FOLD = re.compile(r"\r?\n[ \t]")


class Fields:
    """The first value of each header field of `message`, by name in any case: what
    `Message.get` answers, from one pass over the fields instead of one per question."""

    __slots__ = ("_first", "_policy", "_texts", "_values")

    def __init__(self, message: Message) -> None:
        self._policy = message.policy
        self._first: dict[str, tuple[str, str]] = {}
        for name, value in message.raw_items():
            self._first.setdefault(name.lower(), (name, value))
        self._values: dict[str, object] = {}  # as the policy gives them, once asked for
        self._texts: dict[str, str] = {}

    @property
    def names(self) -> AbstractSet[str]:
        """The names of the fields the message has, in lower case."""
        return self._first.keys()

    def text(self, name: str) -> str:
        """`header(self, name)`, read once: the first value as text, "" when there is none."""
        if name.lower() not in self._first:  # most fields asked for are absent
            return ""
        text = self._texts.get(name)
        if text is None:
            text = self._texts[name] = header(self, name)
        return text

    def get(self, name: str, failobj: object = None) -> object:
        """`Message.get`: the first value of the field `name` as the message's policy gives
        it, or `failobj` when there is none."""
        key = name.lower()
        if key in self._values:
            return self._values[key]
        found = self._first.get(key)
        if found is None:
            return failobj
        name, value = found
        # compat32 gives a field back as it is unless it holds surrogates, which ASCII cannot.
        if not (self._policy is compat32 and isinstance(value, str) and value.isascii()):
            value = self._policy.header_fetch_parse(name, value)
        self._values[key] = value
        return value


def raw_header(headers: Message | Fields, name: str) -> str:
    """The first value of a header, unfolded, encoded words left as they are."""
    value = headers.get(name)
    return unfold(value) if value is not None else ""


def unfold(value: object) -> str:
    """A header value on one line: each fold (a line break before white space, RFC 5322
    section 2.2.3) becomes one space."""
    text = str(value)
    return _FOLD.sub(" ", text) if "\n" in text else text


def header(headers: Message | Fields, name: str) -> str:
    """The first value of a header as text: a repeated header is not a list, encoded words are
    decoded, a broken one is its raw text."""
    value = headers.get(name)
    # Most of the headers asked for are absent: "" at once, nothing to decode.
    return clean(decode_words(unfold(value))) if value is not None else ""
