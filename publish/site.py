"""Writing the status site into a directory so that a web server never serves a half-written
file, and keeping it current: re-render when the database's digest moves.

Each file is written to a fresh temporary file beside it and renamed over the old one
(rename(2) is atomic within a filesystem); unchanged files are left alone, so their times and
ETags stay; pages of windows no longer shown are removed.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from datetime import timedelta
from pathlib import Path

import sqlite_utils

from db.core import clock
from db.core.errors import DeskError
from db.maintenance import publication
from publish import model, render

_OWN_PAGE = re.compile(r"W\d+\.html")
_SUBDIRS = ("release-notes", "reports")


def _write_atomically(target: Path, data: bytes) -> None:
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(name, 0o644)  # a web server under another user reads it; it holds no secret
        os.replace(name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise


def write(files: dict[str, bytes], directory: Path) -> list[str]:
    """Put `files` ({relative path: content}) into `directory`; returns the paths written or
    removed. Raises DeskError naming the directory when it cannot be written."""
    changed = []
    try:
        for sub in ("", *_SUBDIRS):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        for rel, data in files.items():
            target = directory / rel
            if target.is_file() and target.read_bytes() == data:
                continue
            _write_atomically(target, data)
            changed.append(rel)
        for sub in _SUBDIRS:
            for old in (directory / sub).iterdir():
                rel = f"{sub}/{old.name}"
                if _OWN_PAGE.fullmatch(old.name) and rel not in files:
                    old.unlink()
                    changed.append(rel)
    except OSError as exc:
        raise DeskError(
            f"Cannot write the status site into {directory}: {exc.strerror} "
            f"({exc.filename}); check the directory and its permissions."
        ) from exc
    return changed


def publish(db: sqlite_utils.Database, directory: Path, url: str = "") -> list[str]:
    """Render the site from `db` now and write it into `directory`; returns what changed."""
    return write(render.files(model.gather(db), url), directory)


def digest(db: sqlite_utils.Database) -> str:
    """The database's digest of what the site shows now (see `db.maintenance.publication`)."""
    now = clock.now()
    return publication.digest(db, now, now - timedelta(days=model.HISTORY_DAYS))


class Publisher:
    """Keeps one directory current: `refresh` re-renders when the digest moved since the last
    render (always the first time)."""

    def __init__(self, directory: Path, url: str = "") -> None:
        self.directory = directory
        self.url = url
        self._digest: str | None = None

    def refresh(self, db: sqlite_utils.Database) -> list[str] | None:
        """The paths written or removed, or None when nothing changed since the last render."""
        current = digest(db)
        if current == self._digest:
            return None
        changed = publish(db, self.directory, self.url)
        self._digest = current
        return changed
