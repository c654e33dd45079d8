"""Small formatting helpers: ages, times in the agent's zone, HTML as text, mail text as its
sender broke it."""

from __future__ import annotations

import html
import re
from datetime import datetime, tzinfo

from rich.console import Group
from rich.text import Text

from db.core import clock
from tui import safe

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


def count_figure(count: int, more: bool) -> str:
    """'12', '1,000'; '1,000+' when counting stopped at `count` (more than `count - 1` then,
    db/tickets/tickets.py COUNT_CAP)."""
    return f"{count - 1:,}+" if more else f"{count:,}"


def count_text(count: int, more: bool) -> str:
    """'1 ticket', '12 tickets', '1,000+ tickets' (`count_figure`)."""
    return f"{count_figure(count, more)} ticket{'' if count == 1 and not more else 's'}"


def local(stamp: str | None, zone: tzinfo | None) -> str:
    """A stored UTC time in the agent's zone, to the minute."""
    if not stamp:
        return ""
    return clock.parse(stamp).astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def html_text(markup: str) -> str:
    """HTML as plain text, for the rare message the parser left without a text part."""
    return html.unescape(_TAG.sub("", _BREAK.sub("\n", markup)))


# RFC 5322 section 2.1.1: a line SHOULD be at most 78 characters. Within that a line is the
# sender's own break; a longer one is a paragraph: format=flowed text (RFC 3676) as ingest
# reflowed it (ingest/body.py `reflow`), or a client that leaves breaking to the reader.
LINE = 78


def mail_text(body: str) -> Group:
    """Plain-text mail as its sender broke it, for a pane that may be narrower than the mail:
    lines up to LINE characters are never re-wrapped into ragged pairs (one too wide for the pane
    ends in …; the ticket screen, as wide as the terminal, shows it whole), longer ones wrap at
    the pane's width. Untrusted: escaped like every text from a mail (tui/safe.py)."""
    blocks: list[Text] = []
    run: list[str] = []
    wraps: bool | None = None
    for line in body.split("\n"):
        long = len(line) > LINE
        if run and long != wraps:
            blocks.append(_block(run, bool(wraps)))
            run = []
        run.append(line)
        wraps = long
    if run:
        blocks.append(_block(run, bool(wraps)))
    return Group(*blocks)


def _block(lines: list[str], wraps: bool) -> Text:
    block = safe.text("\n".join(lines), multiline=True)
    if not wraps:
        block.no_wrap, block.overflow = True, "ellipsis"
    return block
