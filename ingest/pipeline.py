"""From raw bytes to stored tickets, in batches: parse (in worker processes), route, store.

Every source hands its batches to a `Pipeline`; the pipeline parses the next batch while the
current one is being committed, and isolates a message that breaks the store so it cannot block
the ones after it. How many batches are read ahead is bounded for the whole daemon, not per
source (`read_ahead`): one writer stores them one at a time however many sources there are, and
per-source read-ahead made the daemon hold sources × workers batches of mail at once, more as
mailboxes grew large enough to fill every source's queue (issue 12: memory flat in mailbox size).
After each stored batch the source's connection drops its page cache and what the batch
freed is handed back to the system (`shrink_memory`, `ingest.memory.trim`).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import sqlite_utils

from db.core.config import Config, Source
from db.core.connect import shrink_memory
from db.mailin import sources
from db.mailin.model import Delivery, Incoming, Stored
from db.mailin.store import store_batch
from ingest import memory, route
from ingest.parse import parse
from ingest.supervisor import Health, SourceHealth, db_fault
from ingest.workers import parse_workers

log = logging.getLogger("desk.ingest")
BATCH = 200
SLOT_SECONDS = 0.5  # how long a source waits for a read-ahead slot before looking at `stop`


def read_ahead_slots(pool: Executor | None) -> int:
    """Batches the daemon may hold read and not yet stored, all sources together: one a parse
    worker, and the one being stored."""
    return (parse_workers() if pool is not None else 0) + 1


@dataclass(frozen=True)
class Item:
    key: str  # the source's id for the message (file name, UIDVALIDITY/UID)
    raw: bytes


def _parse_all(raws: list[bytes]) -> list[Incoming]:
    return [parse(raw) for raw in raws]


def _parse_in_worker(raws: list[bytes]) -> list[Incoming]:
    """`_parse_all` in a worker, each message sent back without its bytes: the daemon holds
    them already, and pickling them back through the pipe doubled what crossed it."""
    messages = _parse_all(raws)
    for msg in messages:
        msg.raw = b""
    return messages


class Pipeline:
    """Parses, routes and stores batches for one source, on that source's own connection."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        config: Config,
        source: Source,
        pool: Executor | None,
        health: SourceHealth | None = None,
        read_ahead: threading.Semaphore | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.source = source
        self.pool = pool
        # One slot a batch read and not yet stored, shared by every source of the daemon
        # (`read_ahead_slots()`); a pipeline of its own gets its own.
        self.read_ahead = read_ahead or threading.Semaphore(read_ahead_slots(pool))
        # What the source reports goes here: to the database, or kept while it refuses.
        self.health = health or Health(config.database).for_source(db, source.name)
        self._failed: set[str] = set()  # keys with a failure record, cleared once stored
        if source.kind != "imap" or source.after_ingest != "none":
            # What `done` does to the source (a file to cur/, \Seen, a move on the server) then
            # follows a commit that is on disk, not one a power loss could still take back.
            sources.durable_commits(db)

    def _parse_later(self, items: list[Item]) -> Future[list[Incoming]] | list[Incoming]:
        raws = [item.raw for item in items]
        if self.pool is not None and len(items) >= 8:
            try:
                return self.pool.submit(_parse_in_worker, raws)
            except BrokenProcessPool:
                self._lost_workers()
        return _parse_all(raws)

    def _parsed(self, items: list[Item], parsed: Future | list[Incoming]) -> list[Incoming]:
        if not isinstance(parsed, Future):
            return parsed
        try:
            messages = parsed.result()
        except BrokenProcessPool:
            self._lost_workers()
            return _parse_all([item.raw for item in items])
        for item, msg in zip(items, messages, strict=True):
            msg.raw = item.raw
        return messages

    def _lost_workers(self) -> None:
        """A worker was killed (a SIGTERM to the daemon's process group from a service manager,
        the OOM killer): parse here from now on, so that costs speed, never mail."""
        if self.pool is not None:
            log.warning("%s: a parse worker was killed; parsing in the daemon", self.source.name)
        self.pool = None

    def batches(self, items: Iterable[Item], size: int = BATCH) -> Iterator[list[Item]]:
        batch: list[Item] = []
        for item in items:
            batch.append(item)
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch

    def run(
        self,
        batches: Iterable[list[Item]],
        *,
        checkpoint: Callable[[list[Item]], Callable[[sqlite_utils.Database], None] | None]
        | None = None,
        done: Callable[[list[Item], list[Stored | None]], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> int:
        """Store every batch, parsing the next ones while one commits, until `should_stop()`
        (the batch being stored is committed first). Returns messages stored new.

        `checkpoint(batch)` gives a function run inside the batch's transaction; `done(batch,
        results)` runs after the commit (mark files read, set IMAP flags); a result is None
        for a message that could not be stored (recorded in `message_failure`).
        """
        stored = 0
        self._failed = {f["key"] for f in sources.failures(self.db, self.source.name)}
        in_flight: deque[tuple[list[Item], Future | list[Incoming]]] = deque()
        iterator = iter(batches)
        exhausted = False
        held = 0  # read-ahead slots taken: one a batch in hand, the one being stored included
        try:
            while True:
                # Keep every parse worker busy, within the daemon's slots: one is waited for
                # only with nothing in hand, so a source never waits on itself.
                while not exhausted and not should_stop():
                    if not self._slot(wait=not in_flight):
                        if in_flight:
                            break
                        continue  # nothing in hand: look at `stop`, then wait again
                    held += 1
                    batch = next(iterator, None)
                    if batch:
                        in_flight.append((batch, self._parse_later(batch)))
                        continue
                    self.read_ahead.release()
                    held -= 1
                    exhausted = batch is None
                if not in_flight or should_stop():
                    return stored
                head = in_flight.popleft()
                stored += self._store(*head, checkpoint=checkpoint, done=done)
                del head  # the batch's mail, freed before the trim below can hand it back
                self.read_ahead.release()
                held -= 1
                shrink_memory(self.db)
                memory.trim()
        finally:
            for _ in range(held):
                self.read_ahead.release()
            # Batches parsed ahead are read again at the next start (nothing of them is
            # committed or marked): stopping waits for no source's queue of batches.
            for _batch, parsed in in_flight:
                if isinstance(parsed, Future):
                    parsed.cancel()

    def _slot(self, *, wait: bool) -> bool:
        """Take a read-ahead slot, True if taken; with `wait`, wait up to SLOT_SECONDS for one."""
        return (
            self.read_ahead.acquire(timeout=SLOT_SECONDS)
            if wait
            else self.read_ahead.acquire(False)
        )

    def _store(self, items, parsed, *, checkpoint, done) -> int:
        messages = self._parsed(items, parsed)
        pairs = [(msg, self.delivery(item, msg)) for item, msg in zip(items, messages, strict=True)]
        cp = checkpoint(items) if checkpoint else None
        try:
            results = store_batch(self.db, pairs, checkpoint=cp, mail=self.config.mail)
        except Exception as exc:
            if db_fault(exc, self.config.database):
                raise  # the database's fault, not the messages': the supervisor waits it out
            log.exception(
                "%s: storing a batch of %d failed; storing one by one", self.source.name, len(items)
            )
            results = self._store_singly(pairs, items, cp)
        ok = [item.key for item, r in zip(items, results, strict=True) if r is not None]
        if self._failed.intersection(ok):
            sources.clear_failures(self.db, self.source.name, ok)
            self._failed.difference_update(ok)
        if done is not None:
            done(items, results)
        return sum(1 for r in results if r is not None and r.new)

    def _store_singly(self, pairs, items, cp) -> list[Stored | None]:
        results: list[Stored | None] = []
        for (msg, delivery), item in zip(pairs, items, strict=True):
            try:
                results.extend(store_batch(self.db, [(msg, delivery)], mail=self.config.mail))
            except Exception as exc:  # noqa: BLE001 - one bad message must not block the rest
                if db_fault(exc, self.config.database):
                    raise
                results.append(None)
                skipped = sources.record_failure(self.db, self.source.name, item.key, repr(exc))
                log.error(
                    "%s: message %s could not be stored (%s)%s",
                    self.source.name,
                    item.key,
                    exc,
                    "; skipped from now on" if skipped else "",
                )
        if cp is not None:
            store_batch(self.db, [], checkpoint=cp)
        return results

    def delivery(self, item: Item, msg: Incoming) -> Delivery:
        fns = route.functions(self.source, msg.recipients, self.config.addresses)
        return Delivery(self.source.name, item.key, fns)
