"""Small formatting helpers: ages, times in the agent's zone, HTML as text."""

from __future__ import annotations

import html
import re
from datetime import datetime, tzinfo

from db.core import clock

_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)
_BREAK = re.compile(r"<\s*(br|/p|/div|/li|/tr|/h\d)\b[^>]*>", re.IGNORECASE)


def age(stamp: str | None, now: datetime) -> str:
    """`5m`, `3h`, `2d`, `6w`: how long ago `stamp` was."""
    if not stamp:
        return ""
    seconds = max(0, int((now - clock.parse(stamp)).total_seconds()))
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return "now"


def local(stamp: str | None, zone: tzinfo | None) -> str:
    """A stored UTC time in the agent's zone, to the minute."""
    if not stamp:
        return ""
    return clock.parse(stamp).astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def html_text(markup: str) -> str:
    """HTML as plain text, for the rare message the parser left without a text part."""
    return html.unescape(_TAG.sub("", _BREAK.sub("\n", markup)))
