"""The status site's files from a gathered `Site`: HTML pages (Jinja2, every value escaped: all
text from the database is untrusted), status.json, feed.atom (RFC 4287) and windows.ics.

The Atom feed is a Jinja2 template rather than a feed library's output: the site already renders
through Jinja2, the feed is one short template, and its ids and links follow our own rules.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup

from db.core import clock
from db.maintenance import impact
from publish import ics
from publish.model import NOTICE_STATUS, Shown, Site, paragraphs

UPDATE_TYPES = ("feature", "security", "performance")
SCHEMA = "status.schema.json"
# Characters XML 1.0 forbids (section 2.2); mail-borne text may carry them and would make the
# feed and pages ill-formed.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ID_ROOT = uuid.UUID("6f1d3c56-6a4e-5bb7-9a43-7c0f4c8e5d21")  # our namespace for Atom ids


def _clean(value: Any) -> Any:
    """Every {{ value }} passes here before escaping: XML-forbidden characters are dropped."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return _NOT_XML.sub("", value)
    return value


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(moment: datetime, zone: str) -> Markup:
    """<time datetime="…Z">Sun 6 Dec 2026, 02:00 GMT</time>: machine-readable UTC, shown in
    the window's zone."""
    local = moment.astimezone(ZoneInfo(zone))
    text = f"{local:%a} {local.day} {local:%b %Y}, {local:%H:%M %Z}"
    return Markup('<time datetime="{}">{}</time>').format(_utc(moment), text)


def entry_id(w_id: int, created: datetime, what: str) -> str:
    """A stable Atom id (RFC 4287 section 4.2.6): the same thing keeps it in every render."""
    key = f"window-{w_id}-{created:%Y%m%dT%H%M%SZ}:{what}"
    return f"urn:uuid:{uuid.uuid5(_ID_ROOT, key)}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("publish", "templates"),
        autoescape=True,
        finalize=_clean,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(time=_time, utc=_utc, paragraphs=paragraphs, support=impact.summary)
    return env


def _feed_entries(site: Site) -> list[dict[str, Any]]:
    """Notices (their email text), progress updates, release notes and reports, newest first."""
    by_id = {s.window.id: s for s in site.windows}
    entries = []
    for n in site.emails:
        s = by_id[n["window_id"]]
        link = f"reports/{s.window.label}.html" if n["kind"] == "report" else f"#{s.window.label}"
        entries.append(
            {
                "id": entry_id(s.window.id, s.window.created_at, f"notice-{n['id']}"),
                "title": n["subject"],
                "updated": clock.parse(n["rendered_at"]),
                "category": n["kind"],
                "content": n["body"],
                "link": link if link.startswith("reports/") else f"index.html{link}",
            }
        )
    for s in site.windows:
        w = s.window
        for u in s.updates:
            if u.id.startswith("notice-"):
                continue  # the notice itself is an entry already
            entries.append(
                {
                    "id": entry_id(w.id, w.created_at, u.id),
                    "title": f"{w.title}: {u.status.replace('_', ' ')}",
                    "updated": u.at,
                    "category": "update",
                    "content": u.body,
                    "link": f"index.html#{w.label}",
                }
            )
        if w.release_notes.strip():
            entries.append(
                {
                    "id": entry_id(w.id, w.created_at, "release-notes"),
                    "title": f"Release notes: {w.title}",
                    "updated": s.notes_at,
                    "category": "release-notes",
                    "content": w.release_notes.strip(),
                    "link": f"release-notes/{w.label}.html",
                }
            )
        if s.report and w.report_written_at:
            entries.append(
                {
                    "id": entry_id(w.id, w.created_at, "report"),
                    "title": f"Post-maintenance report: {w.title}",
                    "updated": w.report_written_at,
                    "category": "report",
                    "content": "\n\n".join(f"{k}:\n{v}" for k, v in s.report.items()),
                    "link": f"reports/{w.label}.html",
                }
            )
    return sorted(entries, key=lambda e: (e["updated"], e["id"]), reverse=True)


def _maintenance(s: Shown, url: str) -> dict[str, Any]:
    """One `scheduled_maintenances` item, Statuspage's shape plus our fields."""
    w = s.window
    stamp = lambda t: clock.iso(t) if t else None  # noqa: E731
    link = f"{url}index.html#{w.label}" if url else None
    return {
        "id": w.label,
        "name": w.title,
        "status": s.status,
        "desk_status": s.desk_status,
        "kind": w.kind,
        "update_type": w.update_type,
        "impact": s.impact,
        "created_at": stamp(w.created_at),
        "updated_at": stamp(s.updated_at),
        "started_at": stamp(w.start)
        if s.desk_status in ("active", "overrunning", "completed")
        else None,
        "resolved_at": stamp(w.ends) if s.desk_status == "completed" else None,
        "scheduled_for": stamp(w.start),
        "scheduled_until": stamp(w.ends),
        "zone": w.zone,
        "shortlink": link,
        "nature": w.nature or None,
        "expected_minutes": w.expected_minutes,
        "description": w.description,
        "affected_features": list(w.features),
        "components": [
            {
                "id": re.sub(r"[^a-z0-9]+", "-", f.lower()).strip("-") or "feature",
                "name": f,
                "status": "under_maintenance" if s.in_force else "operational",
            }
            for f in w.features
        ],
        "banner": s.banner,
        "incident_updates": [
            {
                "id": u.id,
                "incident_id": w.label,
                "status": u.status,
                "body": u.body,
                "created_at": stamp(u.at),
                "updated_at": stamp(u.at),
                "display_at": stamp(u.at),
            }
            for u in s.updates
        ],
        "release_notes": w.release_notes.strip() or None,
        "report": s.report or None,
        "support": _support(s.support),
    }


def _support(counted: dict[str, Any] | None) -> dict[str, Any] | None:
    """A window's reports to support, as status.json gives them (schema: `support`)."""
    if counted is None:
        return None
    keys = ("received", "discrepancies", "linked_followups", "verification_ends_at", "final")
    return {key: counted[key] for key in keys}


def status_json(site: Site, url: str = "") -> dict[str, Any]:
    """status.json: see README "Status site" and publish/status.schema.json."""
    updated = site.updated_at
    return {
        "page": {
            "id": "valuit-desk",
            "name": "Valuit platform status",
            "url": url or None,
            "updated_at": clock.iso(updated) if updated else None,
        },
        "status": {
            "indicator": "maintenance" if site.in_force else "none",
            "description": "Maintenance in progress" if site.in_force else "All features available",
        },
        "banner": site.banner,
        "affected_features": site.unavailable,
        "scheduled_maintenances": [_maintenance(s, url) for s in site.windows],
    }


def files(site: Site, url: str = "") -> dict[str, bytes]:
    """Every file of the site: {path relative to the site's root: content}."""
    env = _environment()
    context = {"site": site, "url": url, "update_types": UPDATE_TYPES, "statuses": NOTICE_STATUS}

    def page(template: str, root: str = "", **extra: Any) -> bytes:
        return env.get_template(template).render(context, root=root, **extra).encode("utf-8")

    entries = _feed_entries(site)
    feed_updated = max((e["updated"] for e in entries), default=datetime(1970, 1, 1, tzinfo=UTC))
    out = {
        "index.html": page("index.html"),
        "style.css": (resources.files("publish") / "templates" / "style.css").read_bytes(),
        "status.json": json.dumps(status_json(site, url), indent=2, ensure_ascii=False).encode(),
        "feed.atom": page(
            "feed.atom",
            entries=entries,
            feed_id=f"urn:uuid:{uuid.uuid5(_ID_ROOT, 'status-feed')}",
            feed_updated=feed_updated,
        ),
        "windows.ics": ics.calendar([s.window for s in site.windows]),
        "release-notes/index.html": page("release_notes.html", "../"),
        "reports/index.html": page("reports.html", "../"),
    }
    for s in site.windows:
        if s.window.release_notes.strip():
            out[f"release-notes/{s.window.label}.html"] = page("release_note.html", "../", s=s)
        if s.report:
            out[f"reports/{s.window.label}.html"] = page("report.html", "../", s=s)
    return out
