"""A calendar invitation (text/calendar, RFC 5545 and its iTIP methods, RFC 5546) as a short
readable block: what it is (invitation, cancellation, reply), title, start–end in a given time
zone, place, organiser, how it repeats and its description.

Ingest stores the block in UTC, so the body is searchable and stable; the desk renders it again
in the agent's zone from the kept .ics attachment. No SQL here: both sides call `render`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo
from typing import Any

MAX_SIZE = 1_000_000  # a larger .ics is a feed to save, not an invitation to read
MAX_EVENTS = 10  # nor is one of hundreds of events
MAX_FIELD = 300
MAX_DESCRIPTION = 2000
CALENDAR_TYPES = ("text/calendar", "application/ics")

# iTIP methods (RFC 5546 section 1.4) as a mail client titles them.
_METHODS = {
    "REQUEST": "Invitation",
    "CANCEL": "Cancelled",
    "PUBLISH": "Event",
    "COUNTER": "New time proposed",
    "DECLINECOUNTER": "New time declined",
    "REFRESH": "Update requested",
    "ADD": "More occurrences",
}
# A REPLY says what the attendee answered (PARTSTAT, RFC 5545 section 3.2.12).
_ANSWERS = {
    "ACCEPTED": "Accepted",
    "DECLINED": "Declined",
    "TENTATIVE": "Tentatively accepted",
    "DELEGATED": "Delegated",
}
_FREQUENCIES = {
    "SECONDLY": "second",
    "MINUTELY": "minute",
    "HOURLY": "hour",
    "DAILY": "day",
    "WEEKLY": "week",
    "MONTHLY": "month",
    "YEARLY": "year",
}


def render(data: bytes | str, zone: tzinfo | None) -> str:
    """The invitation's events as text, times in `zone` (None: the machine's zone); "" when
    `data` holds no event that can be read or is larger than `MAX_SIZE`. Never raises."""
    if len(data) > MAX_SIZE:
        return ""
    try:
        import icalendar  # slow to import: only mail that carries a calendar pays for it

        calendars = icalendar.Calendar.from_ical(data, multiple=True)
        blocks = [
            _event(event, str(calendar.get("METHOD", "")).upper(), zone)
            for calendar in calendars
            for event in calendar.walk("VEVENT")
        ]
    except Exception:  # noqa: BLE001 - a broken calendar is still kept as an attachment
        return ""
    return "\n\n".join(blocks[:MAX_EVENTS])


def _text(value: Any, limit: int = MAX_FIELD) -> str:
    text = " ".join(str(value).split()) if limit == MAX_FIELD else str(value).strip()
    return text[:limit]


def _event(event: Any, method: str, zone: tzinfo | None) -> str:
    summary = _text(event.get("SUMMARY", "")) or "(no title)"
    lines = [f"{_kind(event, method)}: {summary}"]
    when = _when(event, zone)
    if when:
        lines.append(f"When: {when}")
    repeats = _repeats(event)
    if repeats:
        lines.append(f"Repeats: {repeats}")
    if event.get("LOCATION"):
        lines.append(f"Where: {_text(event['LOCATION'])}")
    if event.get("ORGANIZER"):
        lines.append(f"Organiser: {_person(event['ORGANIZER'])}")
    description = _text(event.get("DESCRIPTION", ""), MAX_DESCRIPTION)
    if description:
        lines += ["", description.replace("\r\n", "\n")]
    return "\n".join(lines)


def _kind(event: Any, method: str) -> str:
    if method == "REPLY":
        answers = [a.params.get("PARTSTAT", "").upper() for a in _list(event.get("ATTENDEE"))]
        return next((_ANSWERS[a] for a in answers if a in _ANSWERS), "Reply")
    if str(event.get("STATUS", "")).upper() == "CANCELLED":
        return "Cancelled"
    return _METHODS.get(method, "Event")


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _person(address: Any) -> str:
    mail = str(address)
    mail = mail[7:] if mail.lower().startswith("mailto:") else mail
    name = _text(address.params.get("CN", "")) if hasattr(address, "params") else ""
    return f"{name} <{_text(mail)}>" if name else _text(mail)


def _when(event: Any, zone: tzinfo | None) -> str:
    if event.get("DTSTART") is None:
        return ""
    start = event.decoded("DTSTART")
    end = event.decoded("DTEND") if event.get("DTEND") is not None else None
    if end is None and event.get("DURATION") is not None:
        end = start + event.decoded("DURATION")
    if not isinstance(start, datetime):  # all day; DTEND is the day after (RFC 5545 3.6.1)
        last = end - timedelta(days=1) if isinstance(end, date) and end > start else start
        span = _day(start) if last == start else f"{_day(start)} – {_day(last)}"
        return f"{span} (all day)"
    floating = start.tzinfo is None  # "the same wall-clock time wherever you are"
    start = start if floating else start.astimezone(zone)
    text = f"{_day(start)}, {start:%H:%M}"
    if isinstance(end, datetime):
        end = end if end.tzinfo is None or floating else end.astimezone(zone)
        text += f" – {end:%H:%M}" if end.date() == start.date() else f" – {_day(end)}, {end:%H:%M}"
    return text if floating else f"{text} {start:%Z}"


def _day(moment: date) -> str:
    return f"{moment:%a} {moment.day} {moment:%b %Y}"


def _repeats(event: Any) -> str:
    rule = event.get("RRULE")
    if not rule:
        return ""
    unit = _FREQUENCIES.get(str((rule.get("FREQ") or [""])[0]).upper(), "")
    if not unit:
        return ""
    interval = int((rule.get("INTERVAL") or [1])[0])
    text = f"every {unit}" if interval == 1 else f"every {interval} {unit}s"
    if rule.get("UNTIL"):
        text += f" until {_day(rule['UNTIL'][0])}"
    elif rule.get("COUNT"):
        text += f", {int(rule['COUNT'][0])} times"
    return text
