"""The status site under `/status` of `desk serve`: the same files `desk publish` writes, for
anyone, without a login, read-only (GET and HEAD only).

The site is rendered into a private temporary directory and rendered again, when a request
comes and the database's digest has moved, so it is current without `desk-ingest` running.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sqlite_utils
from aiohttp import web

from publish.site import Publisher

PREFIX = "/status"
REFRESH_SECONDS = 1.0  # how stale a page may be: the digest is read at most this often
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".atom": "application/atom+xml",
    ".ics": "text/calendar; charset=utf-8",
}
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    # No script, no form, nothing from elsewhere: the pages need their stylesheet alone.
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; base-uri 'none'; "
    "form-action 'none'",
    "Referrer-Policy": "no-referrer",
}


def is_status(path: str) -> bool:
    """Whether a request path is the status site's (served without a login)."""
    return path == PREFIX or path.startswith(PREFIX + "/")


class StatusSite:
    """The site of one database, kept in a temporary directory removed by `close`."""

    def __init__(self, db: sqlite_utils.Database, url: str = "") -> None:
        self.db = db  # opened with check_same_thread=False; used under self._lock only
        self.directory = Path(tempfile.mkdtemp(prefix="desk-status-"))
        self._publisher = Publisher(self.directory, url)
        self._lock = threading.Lock()
        self._looked = -REFRESH_SECONDS  # when the digest was last read (monotonic)
        # One thread of its own: a flood of anonymous requests waits here, never in the pool
        # that logins' password checks and unsubscribes run in.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="status-site")

    def refresh(self) -> None:
        """Render again if the database changed, reading its digest at most once a second."""
        with self._lock:
            if time.monotonic() - self._looked < REFRESH_SECONDS:
                return
            self._publisher.refresh(self.db)
            self._looked = time.monotonic()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(self.directory, ignore_errors=True)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(PREFIX, self._to_index)
        app.router.add_get(PREFIX + "/{tail:.*}", self._file)

    async def _to_index(self, request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently(f"{PREFIX}/")

    async def _file(self, request: web.Request) -> web.StreamResponse:
        await asyncio.get_running_loop().run_in_executor(self._executor, self.refresh)
        tail = request.match_info["tail"]
        parts = [p for p in tail.split("/") if p]
        if any(p.startswith(".") for p in parts):  # temporary files, and no climbing out
            raise web.HTTPNotFound()
        path = self.directory.joinpath(*parts)
        if path.is_dir():
            path = path / "index.html"
        if not path.is_file() or path.suffix not in TYPES:
            raise web.HTTPNotFound(text="No such page on the status site.")
        return web.FileResponse(path, headers={**HEADERS, "Content-Type": TYPES[path.suffix]})
