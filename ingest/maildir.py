"""The drop-folder source: a Maildir (`new/`, `cur/`, `tmp/`) or a plain folder of `.eml` files.

At start it ingests what is there, then watches with watchfiles. A file is marked done only
after its message is committed: in a Maildir it moves to `cur/` with the `S` flag, in a plain
folder into `done/`. A crash between commit and marking re-reads the file on restart, and the
content hash makes that a no-op.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from watchfiles import watch

from db.core.config import Source
from db.mailin import sources
from ingest.pipeline import Item, Pipeline

log = logging.getLogger("desk.maildir")
RESCAN_SECONDS = 30  # a safety net for events a network filesystem never delivers
SLICE = 1000  # files listed and ingested at a time


class DropFolder:
    def __init__(self, source: Source) -> None:
        assert source.path is not None
        self.source = source
        self.root = source.path
        self.is_maildir = (self.root / "new").is_dir() or not any(self.root.glob("*.eml"))

    def prepare(self) -> None:
        if self.is_maildir:
            for sub in ("new", "cur", "tmp"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
        else:
            (self.root / "done").mkdir(parents=True, exist_ok=True)

    def watched(self) -> list[Path]:
        return [self.root / "new", self.root / "cur"] if self.is_maildir else [self.root]

    def pending(self, after: str = "", limit: int = SLICE) -> list[str]:
        """The paths of the `limit` oldest files not yet marked done whose names sort after
        `after`, oldest first (Maildir names start with the time). A slice, not the whole
        folder, and plain strings, not `Path`s (under a third of the memory; every source holds
        one): what the daemon holds stays the same however many files wait (issue 12)."""
        if not self.is_maildir:
            names = (e for e in os.scandir(self.root) if e.name.endswith(".eml"))
        else:
            names = (
                e
                for sub in ("new", "cur")
                for e in os.scandir(self.root / sub)
                if not e.name.startswith(".")
                and (sub == "new" or "S" not in e.name.partition(":2,")[2])
            )
        return heapq.nsmallest(
            limit, (e.path for e in names if e.name > after and e.is_file()), key=os.path.basename
        )

    def key(self, path: str) -> str:
        return os.path.basename(path).partition(":")[0]

    def mark_done(self, path: str) -> None:
        name = os.path.basename(path)
        if self.is_maildir:
            base, _, flags = name.partition(":2,")
            target = self.root / "cur" / f"{base}:2,{''.join(sorted(set(flags) | {'S'}))}"
        else:
            target = self.root / "done" / name
        # Another reader of the same folder may have marked it first.
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, target)

    def items(self, paths: list[str], pipeline: Pipeline) -> Iterator[Item]:
        skipped = sources.skipped_keys(pipeline.db, self.source.name)
        for path in paths:
            key = self.key(path)
            if key in skipped:
                continue
            try:
                with open(path, "rb") as file:
                    raw = file.read()
            except FileNotFoundError:
                continue
            except OSError as exc:
                sources.record_failure(pipeline.db, self.source.name, key, f"cannot read: {exc}")
                log.error("%s: cannot read %s: %s", self.source.name, path, exc)
                continue
            yield Item(key, raw)


def sync(folder: DropFolder, pipeline: Pipeline, stop: threading.Event) -> int:
    """Ingest every pending file once, a slice at a time; returns how many new messages were
    stored."""
    stored, after = 0, ""
    while not stop.is_set():
        paths = folder.pending(after)
        if not paths:
            break
        # Files that stay (failed, skipped) are not listed again.
        after = os.path.basename(paths[-1])
        by_key = {folder.key(p): p for p in paths}

        def done(items: list[Item], results: list, by_key: dict[str, str] = by_key) -> None:
            for item, result in zip(items, results, strict=True):
                if result is not None:
                    folder.mark_done(by_key[item.key])

        stored += pipeline.run(
            pipeline.batches(folder.items(paths, pipeline)), done=done, should_stop=stop.is_set
        )
        if len(paths) < SLICE:
            break
    if stored:
        log.info("%s: stored %d new message(s)", folder.source.name, stored)
    return stored


def run(source: Source, pipeline: Pipeline, stop: threading.Event, *, once: bool) -> None:
    """Sync, then (unless `once`) watch until `stop` is set."""
    folder = DropFolder(source)
    folder.prepare()
    pipeline.health.state("syncing")
    sync(folder, pipeline, stop)
    pipeline.health.ok("stopped" if once else "watching")
    if once:
        return
    for _changes in watch(
        *folder.watched(),
        stop_event=stop,
        debounce=50,
        step=20,
        rust_timeout=RESCAN_SECONDS * 1000,
        yield_on_timeout=True,
    ):
        sync(folder, pipeline, stop)
        pipeline.health.ok("watching")
    pipeline.health.state("stopped")
