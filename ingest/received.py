"""When a hop received a mail: the date of a `Received` trace field (RFC 5321 section 4.4), read
as mail-parser reads it.

mail-parser splits the whole field into its clauses (from, by, with, id, for) to find the date
after the semicolon, which costs more than the rest of a header block. Only the date is wanted:
when the field is ASCII and has exactly one semicolon outside comments, quoted strings, domain
literals and angle addresses, that semicolon is the one mail-parser's scanner stops at, and its
date parser reads what follows; a date in the form nearly every server writes is read by the
same rules here (`_plain_date`). Any other field (none or several such semicolons, a SendGrid
stamp, unbalanced delimiters, 8-bit bytes) goes to mail-parser whole, so the answer is always
mail-parser's.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from mailparser.dates import parse_mail_date
from mailparser.utils import receiveds_parsing

from db.core import clock

# The characters mail-parser's scanner (`mailparser.received.split_received`) acts on, with
# the folding white space it strips around the date.
_SPECIAL = re.compile(r'[\\()"\[\]<>;]')
_FWS = " \t\r\n"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# RFC 5322 3.3 date-time as servers write it, `Tue, 24 Nov 2026 09:00:04 +0000`: single spaces,
# a year of four digits (no leading zero) and a numeric zone, no comment.
PLAIN_DATE = re.compile(
    r"(?:(Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?([0-9]{1,2}) (" + "|".join(MONTHS) + r") ([1-9][0-9]{3}) "
    r"([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"
)


def moment(value: str) -> datetime:
    """The date of the Received field `value` (unfolded) in UTC. Raises KeyError, ValueError,
    TypeError or AttributeError when it has none mail-parser can read, as mail-parser's own
    result would on reading it."""
    date = _date(value) if value.isascii() else None
    if date is None:
        (hop,) = receiveds_parsing([value])
        return clock.parse(hop["date_utc"])
    plain = PLAIN_DATE.fullmatch(date)
    # In UTC either way, as `clock.parse` would give it back.
    found = _plain_date(plain) if plain else parse_mail_date(date).value
    if found is None:
        raise ValueError(f"no date mail-parser can read in {date!r}")
    return found


def _plain_date(plain: re.Match[str]) -> datetime | None:
    """The moment of a date in the form nearly every server writes (`PLAIN_DATE`), as
    `mailparser.dates.parse_mail_date` reads it: in UTC, a leap second as the next second,
    None for a day, time or zone that does not exist or a year before 1900."""
    _, day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = plain.groups()
    years, hours, minutes, seconds = int(year), int(hour), int(minute), int(second)
    if years < 1900 or hours > 23 or minutes > 59 or seconds > 60 or int(zone_minutes) > 59:
        return None
    offset = (int(zone_hours) * 60 + int(zone_minutes)) * (-1 if sign == "-" else 1)
    try:
        moment = datetime(
            years, MONTHS.index(month) + 1, int(day), hours, minutes, min(seconds, 59), tzinfo=UTC
        )
        if offset or seconds == 60:
            moment -= timedelta(minutes=offset, seconds=-(seconds == 60))
    except (OverflowError, ValueError):
        return None
    return moment


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
