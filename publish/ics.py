"""The iCalendar feed of maintenance windows (RFC 5545), for `desk window ics` and the status
site's windows.ics."""

from __future__ import annotations

import icalendar

from db.core import clock
from db.maintenance.window_model import Window

PRODID = "-//Valuit//Valuit Desk//EN"
_ICS_STATUS = {"planned": "TENTATIVE", "cancelled": "CANCELLED"}


def calendar(found: list[Window]) -> bytes:
    """An iCalendar feed: a window keeps its UID for life and its revision is the SEQUENCE, so
    calendar clients update an event in place and drop a cancelled one."""
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("x-wr-calname", "Valuit maintenance windows")
    now = clock.now()
    for w in found:
        event = icalendar.Event()
        event.add("uid", f"window-{w.id}-{w.created_at:%Y%m%dT%H%M%SZ}@valuit-desk")
        event.add("sequence", w.revision)
        event.add("dtstamp", now)
        event.add("dtstart", w.start)
        event.add("dtend", w.ends)
        event.add("summary", f"{w.label} {w.title} ({w.kind} maintenance)")
        unavailable = ", ".join(w.features) or "none listed"
        lines = [f"Update type: {w.update_type}", f"Unavailable: {unavailable}"]
        lines += [text for text in (w.nature, w.description) if text]
        event.add("description", "\n".join(lines))
        event.add("status", _ICS_STATUS.get(w.status(now), "CONFIRMED"))
        event.add("categories", [w.kind])
        cal.add_component(event)
    return cal.to_ical()
