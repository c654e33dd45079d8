"""When a hop received a mail: the date of a `Received` trace field (RFC 5321 section 4.4), read
as mail-parser reads it.

mail-parser splits the whole field into its clauses (from, by, with, id, for) to find the date
after the semicolon, which costs more than the rest of a header block. Only the date is wanted:
when the field is ASCII and has exactly one semicolon outside comments, quoted strings, domain
literals and angle addresses, that semicolon is the one mail-parser's scanner stops at, and its
date parser reads what follows. Any other field (none or several such semicolons, a SendGrid
stamp, unbalanced delimiters, 8-bit bytes) goes to mail-parser whole, so the answer is always
mail-parser's.
"""

from __future__ import annotations

import re
from datetime import datetime

from mailparser.dates import parse_mail_date
from mailparser.utils import receiveds_parsing

from db.core import clock

# The characters mail-parser's scanner (`mailparser.received.split_received`) acts on, with
# the folding white space it strips around the date.
_SPECIAL = re.compile(r'[\\()"\[\]<>;]')
_FWS = " \t\r\n"


def moment(value: str) -> datetime:
    """The date of the Received field `value` (unfolded) in UTC. Raises KeyError, ValueError,
    TypeError or AttributeError when it has none mail-parser can read, as mail-parser's own
    result would on reading it."""
    date = _date(value) if value.isascii() else None
    if date is None:
        (hop,) = receiveds_parsing([value])
        return clock.parse(hop["date_utc"])
    found = parse_mail_date(date).value
    return clock.parse(found.isoformat() if found else None)  # type: ignore[arg-type]


def _date(value: str) -> str | None:
    """The text after the field's only top-level semicolon, as mail-parser cuts it; None when
    there is not exactly one or the delimiters do not balance (mail-parser decides those).
    The states are mail-parser's: comments nest, a backslash quotes the next character inside
    comments, quoted strings and domain literals, and nothing opens inside an angle address."""
    comment = 0
    quote = literal = angle = False
    escaped = -1  # the position a backslash quoted
    semicolon = -1
    for found in _SPECIAL.finditer(value):
        at, char = found.start(), found.group()
        if at == escaped:
            continue
        if comment:
            if char == "\\":
                escaped = at + 1
            elif char == "(":
                comment += 1
            elif char == ")":
                comment -= 1
        elif quote or literal:
            if char == "\\":
                escaped = at + 1
            elif quote and char == '"':
                quote = False
            elif literal and char == "]":
                literal = False
        elif char == "(":
            comment = 1
        elif char == '"':
            quote = True
        elif char == "[":
            literal = True
        elif char == "<":
            if angle:
                return None
            angle = True
        elif char == ">":
            angle = False
        elif char == ")" or (char == ";" and not angle and semicolon >= 0):
            return None
        elif char == ";" and not angle:
            semicolon = at
    if comment or quote or literal or angle or semicolon < 0:
        return None
    return value[semicolon + 1 :].strip(_FWS)
