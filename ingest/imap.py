"""The IMAP source: one connection per `[[source]]`, read by UID, pushed by IDLE, never twice.

What was read is remembered as UIDVALIDITY + last UID in `source_state`, moved in the same
transaction as the messages it covers; each sync fetches `UID last+1:*` with BODY.PEEK[] (the
mailbox is left as it was unless `after_ingest` says otherwise, and that only after commit).
A UIDVALIDITY change re-reads the folder; content hashes make that duplicate-free. Between syncs
the source waits in IDLE (renewed every 10 minutes, the RFC allows 29) or polls. Any fault
drops the connection and reconnects with backoff; a message that keeps failing is recorded in
`message_failure` and, after a few attempts, skipped.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import re
import select
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import sqlite_utils
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from db.core.config import Source
from db.core.errors import DeskError
from db.mailin import sources
from db.mailin.model import Stored
from db.mailin.store import store_batch
from ingest.backoff import Backoff
from ingest.pipeline import BATCH, Item, Pipeline
from ingest.progress import LONG_SYNC, Progress
from ingest.secrets import SecretError, resolve, token_refused
from ingest.supervisor import db_fault

log = logging.getLogger("desk.imap")
# imapclient logs every protocol line at DEBUG (message bodies included) and each logout at
# INFO; our own lines say what a mail administrator needs.
logging.getLogger("imapclient").setLevel(logging.WARNING)

TIMEOUT = 60.0  # seconds a connect or a read may take before the connection counts as dead
IDLE_RENEW = 600.0  # RFC 2177: a server may end IDLE after 29 minutes; renew well before
WAKE = 0.5  # seconds between looks at the stop flag while waiting
ONCE_ATTEMPTS = 3  # with --once, connection attempts before giving the source up


class SourceFailed(DeskError):
    """`--once` could not read the source; the message says why."""


class ConnectionLost(Exception):
    """The server closed the connection (BYE, or end of stream while idling)."""


def run(source: Source, pipeline: Pipeline, stop: threading.Event, *, once: bool) -> None:
    """Read `source` until `stop` is set; with `once`, sync what is there and return."""
    bar = sys.stderr if once and sys.stderr.isatty() else None
    Reader(source, pipeline, stop, once=once, bar=bar).run()


def connect(source: Source, password: str, *, oauth2: bool = False) -> IMAPClient:
    """A logged-in client; TLS is verified (against `ca_file` when given)."""
    try:
        context = ssl.create_default_context(cafile=str(source.ca_file) if source.ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise SourceFailed(f"ca_file {source.ca_file} cannot be used: {exc}") from exc
    tls = source.security == "tls"
    client = IMAPClient(
        source.host,
        port=source.port,
        ssl=tls,
        ssl_context=context if tls else None,
        timeout=TIMEOUT,
    )
    # imapclient sets imaplib's debug level to 5, which formats every line and literal for a
    # logger that drops them: FETCH ran ~4x slower for it.
    client._imap.debug = 0
    try:
        if source.security == "starttls":
            client.starttls(context)
        if oauth2:
            client.oauth2_login(source.username, password)
        else:
            client.login(source.username, password)
    except BaseException:
        # A refused STARTTLS certificate leaves no socket to shut down: the cleanup's own
        # error ("Bad file descriptor") must not hide the refusal.
        _drop(client, source.name)
        raise
    return client


def _drop(client: IMAPClient, name: str) -> None:
    """Close `client`'s connection without raising: it is often dead already."""
    try:
        client.shutdown()
    except Exception:  # noqa: BLE001 - the fault that led here is the one to report
        log.debug("%s: closing the connection failed", name, exc_info=True)


def explain(source: Source, exc: BaseException) -> tuple[str, str]:
    """The state a fault leaves the source in, and one sentence saying what happened."""
    where = f"{source.host}:{source.port}"
    if isinstance(exc, SecretError):
        return "failed-auth", exc.message
    if isinstance(exc, LoginError) and source.oauth2_token_command:
        return "failed-auth", token_refused(source.username, where, _text(exc))
    if isinstance(exc, LoginError):
        return "failed-auth", (
            f"login as {source.username} on {where} was refused ({_text(exc)}); "
            "check the username and password"
        )
    if isinstance(exc, DeskError):
        return "backing-off", exc.message
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "backing-off", (
            f"the TLS certificate of {where} was refused: {exc.verify_message}; if the server "
            "uses a private certificate authority, set ca_file to its certificate"
        )
    if isinstance(exc, ssl.SSLError):
        return "backing-off", f"TLS with {where} failed: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "backing-off", f"{where} refused the connection (is the IMAP server running?)"
    if isinstance(exc, socket.gaierror):
        return "backing-off", f"cannot resolve {source.host}: {exc.strerror}"
    if isinstance(exc, TimeoutError):
        return "backing-off", f"{where} did not answer within {TIMEOUT:.0f} s"
    if isinstance(exc, ConnectionLost | IMAPClientAbortError | imaplib.IMAP4.abort | OSError):
        return "backing-off", f"connection to {where} lost: {_text(exc)}"
    if isinstance(exc, IMAPClientError):
        return "backing-off", f"{where} said: {_text(exc)}"
    return "backing-off", f"unexpected {type(exc).__name__}: {exc}"


def _text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    # imaplib wraps server text as a bytes repr: b'[AUTHENTICATIONFAILED] ...'
    if text.startswith(("b'", 'b"')) and text.endswith(text[1]):
        text = text[2:-1]
    return text


def sequence_set(uids: list[int]) -> str:
    """`[1, 2, 3, 7]` as the IMAP sequence set `1:3,7`, to keep long commands short."""
    parts: list[str] = []
    start = prev = uids[0]
    for uid in uids[1:]:
        if uid != prev + 1:
            parts.append(f"{start}:{prev}" if prev != start else str(start))
            start = uid
        prev = uid
    parts.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(parts)


class Reader:
    """One IMAP source: connects, syncs, waits for news, reconnects after faults."""

    def __init__(
        self, source: Source, pipeline: Pipeline, stop: threading.Event, *, once: bool, bar=None
    ) -> None:
        self.source = source
        self.name = source.name
        self.pipeline = pipeline
        self.db: sqlite_utils.Database = pipeline.db
        self.stop = stop
        self.once = once
        self.bar = bar
        self.client: IMAPClient | None = None
        self.health = pipeline.health
        self.backoff = Backoff(cap=pipeline.config.retry_cap_seconds)
        self.uidvalidity = 0
        self.last_uid = 0
        self.exists = 0
        self.forget_old = False  # the first batch after a UIDVALIDITY change drops old UIDs
        self.suspect: set[int] = set()  # fetched one by one: a fault hit the batch they were in
        # One command at a time on the connection: the fetch thread's and the source's own.
        self.client_lock = threading.Lock()

    # ------------------------------------------------------------------ the loop

    def run(self) -> None:
        attempts = 0
        while not self.stop.is_set():
            try:
                self.session()
            except Exception as exc:  # noqa: BLE001 - every fault means: reconnect later
                fault = db_fault(exc, self.pipeline.config.database)
                state, message = ("backing-off", fault) if fault else explain(self.source, exc)
                self.close()
                if self.stop.is_set():
                    break
                attempts += 1
                if state == "backing-off" and message.startswith("unexpected"):
                    log.exception("%s: %s", self.name, message)
                self.health.state(state, error=message, database_down=fault is not None)
                if self.once and (state == "failed-auth" or attempts >= ONCE_ATTEMPTS):
                    raise SourceFailed(f"{self.name}: {message}") from exc
                delay = self.backoff.next_delay()
                log.warning("%s: %s; trying again in %.1f s", self.name, message, delay)
                self.stop.wait(delay)
            else:
                break
        self.close()
        self.health.state("stopped")

    def session(self) -> None:
        self.health.state("connecting")
        secret = resolve(self.source)
        self.client = connect(self.source, secret.value, oauth2=secret.oauth2)
        readonly = self.source.after_ingest == "none"
        if self.source.after_ingest.startswith("move:"):
            target = self.source.after_ingest[5:]
            if not self.client.folder_exists(target):
                self.client.create_folder(target)
        info = self.client.select_folder(self.source.folder, readonly=readonly)
        self.uidvalidity = int(info[b"UIDVALIDITY"])
        self.exists = int(info.get(b"EXISTS", 0))
        self.news()  # the SELECT's own counts, just read
        log.info(
            "%s: connected to %s:%d, folder %s (%d message(s))",
            self.name,
            self.source.host,
            self.source.port,
            self.source.folder,
            self.exists,
        )
        self.settle()
        self.sync()
        self.backoff.reset()
        if self.once:
            self.close()
            return
        if b"IDLE" in self.client.capabilities():
            self.idle_loop()
        else:
            self.poll_loop()

    def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:  # noqa: BLE001 - the connection is often dead already
            _drop(client, self.name)

    # --------------------------------------------------------------- syncing

    def sync(self) -> None:
        """Store every message after the checkpoint, again while more arrives meanwhile."""
        self.sync_once()
        while self.news() and not self.stop.is_set():
            self.sync_once()

    def sync_once(self) -> None:
        """Store every message after the checkpoint, and retry the ones that failed before."""
        assert self.client is not None
        state = sources.get(self.db, self.name) or {}
        self.last_uid = int(state.get("last_uid") or 0)
        if state.get("uidvalidity") not in (None, self.uidvalidity):
            log.warning(
                "%s: UIDVALIDITY of %s changed from %s to %s; re-reading the folder "
                "(messages already stored are recognised by their content)",
                self.name,
                self.source.folder,
                state["uidvalidity"],
                self.uidvalidity,
            )
            self.last_uid = 0
            self.forget_old = True
        self.health.state("syncing", server_count=self.exists)
        prefix = f"{self.uidvalidity}/"
        failed = {
            int(f["key"][len(prefix) :]): bool(f["skipped"])
            for f in sources.failures(self.db, self.name)
            if f["key"].startswith(prefix)
        }
        found = self.client.search(["UID", f"{self.last_uid + 1}:*"])
        # `last+1:*` always matches the highest UID, even when it is not above `last`.
        retry = {u for u, skipped in failed.items() if not skipped}
        skip = {u for u, skipped in failed.items() if skipped}
        uids = sorted(({u for u in found if u > self.last_uid} | retry) - skip)
        if uids:
            self.store(uids)
        elif self.forget_old:
            # An emptied folder: record the new UIDVALIDITY now, not with some later message.
            store_batch(self.db, [], checkpoint=self.checkpoint([]))
        self.health.ok("syncing", server_count=self.exists)

    def checkpoint(self, batch: list[Item]) -> Callable[[sqlite_utils.Database], None]:
        """What to run in `batch`'s transaction: move the checkpoint past it."""
        self.last_uid = max([self.last_uid, *(_uid(item) for item in batch)])
        uidvalidity, last, forget = self.uidvalidity, self.last_uid, self.forget_old
        self.forget_old = False

        def move(db: sqlite_utils.Database) -> None:
            sources.checkpoint(db, self.name, uidvalidity, last)
            if forget:
                sources.forget_other_uidvalidity(db, self.name, uidvalidity)

        return move

    def store(self, uids: list[int]) -> None:
        progress = None
        if len(uids) >= LONG_SYNC:
            progress = Progress(self.name, len(uids), bar=self.bar)

        def done(batch: list[Item], results: list[Stored | None]) -> None:
            ok = [_uid(item) for item, r in zip(batch, results, strict=True) if r is not None]
            self.after_ingest(ok)
            if progress is not None:
                progress.advance(len(batch))

        # Closed on the way out, by an error too: its fetch thread must be done with the
        # connection before anyone logs out on it or reconnects.
        with contextlib.closing(self.fetch_batches(uids)) as batches:
            stored = self.pipeline.run(
                batches, checkpoint=self.checkpoint, done=done, should_stop=self.stop.is_set
            )
        if progress is not None:
            progress.finish()
        if stored:
            log.info("%s: stored %d new message(s)", self.name, stored)

    def fetch_batches(self, uids: list[int]) -> Iterator[list[Item]]:
        """`uids` a batch at a time, the next batch's FETCH running in a thread of its own while
        the pipeline parses and stores this one: it waited for each store before (issue 16).
        A batch fetched ahead is one more held than the pipeline's read-ahead slots count,
        whatever the size of the mailbox; what it does not use when it stops is read again."""
        chunks = [uids[start : start + BATCH] for start in range(0, len(uids), BATCH)]
        with ThreadPoolExecutor(1, thread_name_prefix=f"{self.name}-fetch") as ahead:

            def start(chunk: list[int]) -> tuple[list[int], Future[dict[int, bytes]]]:
                together = [u for u in chunk if u not in self.suspect]
                return together, ahead.submit(self._fetch, together)

            upcoming = start(chunks[0]) if chunks else None
            try:
                for i, chunk in enumerate(chunks):
                    assert upcoming is not None
                    current = upcoming
                    more = i + 1 < len(chunks) and not self.stop.is_set()
                    upcoming = start(chunks[i + 1]) if more else None
                    yield self.fetch(chunk, *current)
                    if not more:
                        break
            finally:
                ahead_running = upcoming is not None and not upcoming[1].cancel()
                if ahead_running and not upcoming[1].done() and self.client is not None:
                    # Left early (a stop, an error) with a FETCH under way: leaving the `with`
                    # would wait for it, up to the timeout on a dead link; closing the socket
                    # ends it at once, and the connection is made again anyway.
                    _drop(self.client, self.name)

    def fetch(
        self, uids: list[int], together: list[int], fetched: Future[dict[int, bytes]]
    ) -> list[Item]:
        """The messages of `uids` that could be fetched (an expunged one is simply absent):
        `together`, all but the suspects, as `fetched` brings them, then the rest one by one."""
        assert self.client is not None
        bodies: dict[int, bytes] = {}
        alone = [u for u in uids if u not in together]
        if together:
            try:
                bodies.update(fetched.result())
            except IMAPClientError as exc:
                if isinstance(exc, IMAPClientAbortError | imaplib.IMAP4.abort):
                    self.suspect.update(together)
                    raise
                log.warning(
                    "%s: fetching %d message(s) failed (%s); one by one",
                    self.name,
                    len(together),
                    _text(exc),
                )
                alone = uids
            except OSError:
                self.suspect.update(together)
                raise
        refused: list[tuple[int, str]] = []
        for uid in alone:
            try:
                bodies.update(self._fetch([uid]))
            except (OSError, IMAPClientAbortError, imaplib.IMAP4.abort) as exc:
                sources.record_failure(self.db, self.name, self._key(uid), f"fetch: {exc!r}")
                raise
            except IMAPClientError as exc:
                refused.append((uid, _text(exc)))
            else:
                self.suspect.discard(uid)
        if refused and len(refused) == len(alone) > 1:
            # Every message refused: the folder or the server is at fault, not the messages.
            raise IMAPClientError(f"FETCH refused for UIDs {sequence_set(alone)}: {refused[0][1]}")
        for uid, error in refused:
            skipped = sources.record_failure(self.db, self.name, self._key(uid), f"fetch: {error}")
            log.error(
                "%s: UID %d could not be fetched (%s)%s",
                self.name,
                uid,
                error,
                "; skipped from now on" if skipped else "; will try again",
            )
        return [Item(self._key(u), bodies[u]) for u in uids if u in bodies]

    def _fetch(self, uids: list[int]) -> dict[int, bytes]:
        """The bytes of `uids` by UID (RFC 9051 6.4.9 UID FETCH, BODY.PEEK[]), read from
        imaplib's responses as they come: imapclient's `fetch` tokenises every response in
        Python, which cost more CPU than the FETCH itself (issue 16)."""
        if not uids:
            return {}
        assert self.client is not None
        imap = self.client._imap
        with self.client_lock:
            tag = imap._command("UID", "FETCH", sequence_set(uids), "(BODY.PEEK[])")
            typ, data = imap._command_complete("FETCH", tag)
            self.client._checkok("fetch", typ, data)
            return fetched_bodies(imap._untagged_response(typ, data, "FETCH")[1])

    def _key(self, uid: int) -> str:
        return f"{self.uidvalidity}/{uid}"

    # ---------------------------------------------------------- after ingest

    def after_ingest(self, uids: list[int]) -> None:
        """Mark or move committed messages, as `after_ingest` asks; `none` touches nothing."""
        action = self.source.after_ingest
        if not uids or action == "none":
            return
        with self.client_lock:  # the next batch may be being fetched meanwhile
            self._after_ingest(action, uids)

    def _after_ingest(self, action: str, uids: list[int]) -> None:
        assert self.client is not None
        messages = sequence_set(sorted(uids))
        if action == "seen":
            self.client.add_flags(messages, [b"\\Seen"], silent=True)
            return
        target = action[5:]
        if self.client.has_capability("MOVE"):
            self.client.move(messages, target)
        else:
            self.client.copy(messages, target)
            self.client.add_flags(messages, [b"\\Deleted"], silent=True)
            if self.client.has_capability("UIDPLUS"):
                self.client.uid_expunge(messages)
            else:  # an old server: this also expunges what others marked \Deleted
                self.client.expunge()

    def settle(self) -> None:
        """Apply `after_ingest` to messages committed before a crash or fault got in between."""
        if self.source.after_ingest == "none":
            return
        assert self.client is not None
        state = sources.get(self.db, self.name) or {}
        if state.get("uidvalidity") != self.uidvalidity or not state.get("last_uid"):
            return
        criteria = ["UID", f"1:{state['last_uid']}"]
        if self.source.after_ingest == "seen":
            criteria.append("UNSEEN")
        failed = {f["key"] for f in sources.failures(self.db, self.name)}
        uids = [u for u in self.client.search(criteria) if self._key(u) not in failed]
        uids = [u for u in uids if u <= state["last_uid"]]
        if uids:
            log.info("%s: applying after_ingest to %d stored message(s)", self.name, len(uids))
            self.after_ingest(uids)

    # --------------------------------------------------------- waiting for news

    def idle_loop(self) -> None:
        assert self.client is not None
        while not self.stop.is_set():
            self.health.ok("idle", server_count=self.exists)
            self.client.idle()
            started = time.monotonic()
            # A message that failed is tried again on its own timer, not only with new mail.
            renew = self.retry_after() or IDLE_RENEW
            changed = False
            while not (changed or self.stop.is_set()) and time.monotonic() - started < renew:
                changed = self.note(self.idle_wait(WAKE))
            _done_text, responses = self.client.idle_done()
            changed = self.note(responses) or changed or renew < IDLE_RENEW
            if changed and not self.stop.is_set():
                self.sync()

    def retry_after(self) -> float | None:
        """Seconds until messages that failed are tried again; None if none wait."""
        prefix = f"{self.uidvalidity}/"
        waiting = [
            f
            for f in sources.failures(self.db, self.name)
            if f["key"].startswith(prefix) and not f["skipped"]
        ]
        return self.pipeline.config.retry_cap_seconds if waiting else None

    def idle_wait(self, timeout: float) -> list[tuple]:
        """IDLE responses within `timeout`; raises ConnectionLost when the server went away.

        Not imapclient's `idle_check()`: it polls the socket only, so a response already read
        into imaplib's buffer (say, an EXISTS sent together with "+ idling") waits there until
        the next packet, minutes later; and it reads without blocking, so a line split across
        packets aborts the connection (an open upstream issue). Here a line is read only once
        some of it is there, and then in full.
        """
        assert self.client is not None
        if not self.has_input():
            sock = self.client.socket()
            if not select.select([sock], [], [], timeout)[0]:
                return []
            if not self.has_input():
                if _peer_closed(sock):
                    raise ConnectionLost("the server closed the connection")
                return []  # part of a TLS record; the rest is on its way
        responses = [_untagged(self.client._imap._get_line())]
        while self.has_input():
            responses.append(_untagged(self.client._imap._get_line()))
        return responses

    def has_input(self) -> bool:
        """Whether a response has started to arrive: in imaplib's buffer, in TLS, or on the wire."""
        assert self.client is not None
        sock = self.client.socket()
        sock.setblocking(False)
        try:
            return bool(self.client._imap.file.peek(1))
        except (BlockingIOError, ssl.SSLWantReadError):
            return False
        finally:
            sock.settimeout(TIMEOUT)

    def news(self) -> bool:
        """Take in what the server reported during our own commands; True if mail arrived.

        Mail that arrives during a sync is announced with the responses to its FETCH or STORE,
        and only once: imaplib keeps such lines aside, and IDLE would not repeat them.
        """
        assert self.client is not None
        pending = self.client._imap.untagged_responses
        exists, expunged = pending.pop("EXISTS", None), pending.pop("EXPUNGE", None)
        if exists:
            self.exists = int(exists[-1])
        elif expunged:
            self.exists = max(self.exists - len(expunged), 0)
        return bool(exists)

    def note(self, responses: list) -> bool:
        """Follow the message count; True when new mail arrived."""
        arrived = False
        for response in responses:
            if len(response) >= 2 and response[1] == b"EXISTS":
                # Any EXISTS means: look. A count alone can hide an expunge plus an arrival.
                arrived = True
                self.exists = response[0]
            elif len(response) >= 2 and response[1] == b"EXPUNGE":
                self.exists = max(self.exists - 1, 0)
                self.health.state("idle", server_count=self.exists)
            elif response and response[0] == b"BYE":
                words = [w.decode(errors="replace") for w in response[1:] if isinstance(w, bytes)]
                raise ConnectionLost("the server said goodbye: " + " ".join(words))
        return arrived

    def poll_loop(self) -> None:
        assert self.client is not None
        while not self.stop.is_set():
            self.health.ok("watching", server_count=self.exists)
            if self.stop.wait(self.source.poll_seconds):
                return
            self.note(self.client.noop()[1])
            self.sync()


_UID = re.compile(rb"[( ]UID (\d+)")


def fetched_bodies(data: list[tuple[bytes, bytes] | bytes | None]) -> dict[int, bytes]:
    """Message bytes by UID from imaplib's FETCH responses: `(b'7 (UID 12 BODY[] {n}', bytes)`
    then `b')'`, the UID also allowed after the literal (`b' UID 12)'`: RFC 9051 leaves the order
    of the items to the server). A response without BODY[] (a flag change the server reports
    unasked) is no message."""
    bodies: dict[int, bytes] = {}
    for i, item in enumerate(data):
        if not isinstance(item, tuple) or b"BODY[]" not in item[0]:
            continue
        after = data[i + 1] if i + 1 < len(data) else None
        uid = _UID.search(item[0]) or (_UID.search(after) if isinstance(after, bytes) else None)
        if uid:
            bodies[int(uid.group(1))] = item[1]
    return bodies


def _untagged(line: bytes) -> tuple:
    """`* 5 EXISTS` as `(5, b"EXISTS")`, `* BYE bye` as `(b"BYE", b"bye")`, as imapclient does."""
    words = line.rstrip(b"\r\n").split(b" ")
    if words[0] == b"*":
        words = words[1:]
    if len(words) >= 2 and words[0].isdigit():
        return (int(words[0]), words[1].upper(), *words[2:])
    return tuple(words)


def _uid(item: Item) -> int:
    return int(item.key.rpartition("/")[2])


def _peer_closed(sock: socket.socket) -> bool:
    """True at end of stream; peeks at the raw TCP socket, below any TLS layer."""
    try:
        return socket.socket.recv(sock, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
