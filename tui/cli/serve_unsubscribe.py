"""One-click unsubscribe (RFC 8058) on `desk serve`: `POST /status/unsubscribe/TOKEN`, no login.

A mail provider's "Unsubscribe" button POSTs the body `List-Unsubscribe=One-Click` to the https
link of a notice's List-Unsubscribe header (RFC 8058 section 3.2), without a cookie and from no
page of ours: the subscriber's random token in the path is the credential, so this route needs
no login and no Origin. A GET never unsubscribes: link scanners and prefetchers fetch every link
of a mail (RFC 8058 section 1), so a person who opens the link gets a page whose button POSTs.
An unknown token is a 404 and changes nothing.
"""

from __future__ import annotations

import asyncio
import html
import re

from aiohttp import web

from db.core.config import Config
from db.core.connect import open_db, write
from db.mailout import subscribers

ACTOR = "desk serve"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")  # `secrets.token_urlsafe` text
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # the token is in the URL
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:32em;margin:4em auto}}</style>
</head><body><h1>{title}</h1>{body}</body></html>
"""
_ASK = """<p>Stop getting maintenance notices by email at this address?</p>
<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe</button></form>"""


def routes(config: Config) -> list[web.RouteDef]:
    """The routes to add to `desk serve`'s application, all reachable without a login."""
    path = subscribers.UNSUBSCRIBE_PATH + "{token}"

    async def ask(request: web.Request) -> web.Response:
        token = request.match_info["token"]
        if not await asyncio.to_thread(_known, config, token):
            return _page(404, "Unknown unsubscribe link", "<p>This link is not ours.</p>")
        return _page(200, "Unsubscribe from maintenance notices", _ASK)

    async def unsubscribe(request: web.Request) -> web.Response:
        token = request.match_info["token"]
        form = await request.post()
        if form.get("List-Unsubscribe") != "One-Click":  # RFC 8058 section 3.2
            return _page(400, "Not an unsubscribe request", "<p>Nothing was changed.</p>")
        done = await asyncio.to_thread(_unsubscribe, config, token)
        if done is None:
            return _page(404, "Unknown unsubscribe link", "<p>Nothing was changed.</p>")
        return _page(200, "Unsubscribed", "<p>You will get no more maintenance notices.</p>")

    return [web.get(path, ask), web.post(path, unsubscribe)]


def _known(config: Config, token: str) -> bool:
    if not _TOKEN.fullmatch(token):
        return False
    db = open_db(config.database, access=config.database_access)
    try:
        return subscribers.token_known(db, token)
    finally:
        db.close()


def _unsubscribe(config: Config, token: str) -> str | None:
    """`subscribers.unsubscribe` by the web, in its own connection (this runs in a thread)."""
    if not _TOKEN.fullmatch(token):
        return None
    db = open_db(config.database, access=config.database_access)
    try:
        with write(db):
            return subscribers.unsubscribe(db, token, "web", config.mail, ACTOR)
    finally:
        db.close()


def _page(status: int, title: str, body: str) -> web.Response:
    return web.Response(
        text=_PAGE.format(title=html.escape(title), body=body),
        status=status,
        content_type="text/html",
        headers=_HEADERS,
    )
