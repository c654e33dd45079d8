"""IMAP ingest against a private Dovecot: the raw FETCH floor, mbsync, and `desk-ingest --once`.

(a) floor: imapclient FETCH of BODY.PEEK[] in batches, bytes only (imaplib debug output off);
(b) peer: `mbsync` (isync) copying the same mailbox into an empty Maildir;
(c) `desk-ingest --once` from an empty database;
(d) the same messages through the drop folder (`desk-ingest --once` over Maildirs), beside the
two-core parse floor: the CPU time `ingest.parse.parse` takes over them, spread over two cores.
Prints each time, c/a and c/b (target c/b <= 1.5), d against its floor (target >= 0.9),
APPEND -> committed latency with the daemon in IDLE (p50/p95/p99), and the daemon's peak RSS
for two mailbox sizes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from imapclient import IMAPClient

from bench import ingest_drop
from bench.__main__ import machine
from ingest.demo import generate, write_maildir
from ingest.parse import parse
from ingest.pipeline import BATCH
from tests.dovecot import Dovecot

USERS = ("technical", "small", "latency")
PASSWORD_ENV = "DESK_BENCH_PASSWORD"


def _fill(server: Dovecot, user: str, count: int, seed: int) -> None:
    """Deliver `count` messages straight into the user's Maildir, as an MTA would."""
    root = server.mail_root / user
    write_maildir(root, generate(count, seed), per_function=False)
    for folder, _dirs, files in os.walk(root):
        os.chown(folder, server.mail_uid, server.mail_gid)
        for name in files:
            os.chown(os.path.join(folder, name), server.mail_uid, server.mail_gid)


def _floor(server: Dovecot, user: str, *, debug: bool = False) -> tuple[float, int]:
    """Seconds to FETCH every message's bytes in batches, and how many bytes that was."""
    started = time.perf_counter()
    client = IMAPClient(server.host, port=server.port, ssl=False, timeout=60)
    if not debug:
        client._imap.debug = 0
    client.login(user, server.password(user))
    client.select_folder("INBOX", readonly=True)
    uids = client.search("ALL")
    size = 0
    for start in range(0, len(uids), BATCH):
        for data in client.fetch(uids[start : start + BATCH], [b"BODY.PEEK[]"]).values():
            size += len(data[b"BODY[]"])
    client.logout()
    return time.perf_counter() - started, size


def _mbsync(server: Dovecot, user: str, folder: Path) -> float:
    """Seconds for mbsync to pull the mailbox into an empty Maildir."""
    maildir = folder / "mbsync"
    maildir.mkdir()
    rc = folder / "mbsyncrc"
    rc.write_text(
        # FSync No: mbsync's default fsyncs every file, which measures the disk, not the sync.
        f"""FSync No

IMAPAccount bench
Host {server.host}
Port {server.port}
User {user}
Pass {server.password(user)}
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account bench

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX

Channel bench
Far :remote:
Near :local:
Patterns INBOX
Sync Pull
Create Near
SyncState *
"""
    )
    started = time.perf_counter()
    # stderr: mbsync warns that the password goes in clear, as it does on loopback here.
    subprocess.run(["mbsync", "-q", "-c", str(rc), "bench"], check=True, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    return seconds


def _config(server: Dovecot, user: str, folder: Path) -> Path:
    path = folder / f"{user}.toml"
    source = {
        "function": "technical",
        "kind": "imap",
        "host": server.host,
        "port": server.port,
        "security": "none",
        "username": user,
        "password_env": PASSWORD_ENV,
    }
    lines = [f"[database]\npath = {json.dumps(str(folder / f'{user}.db'))}\n", "[[source]]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in source.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _env(server: Dovecot, user: str) -> dict[str, str]:
    return {**os.environ, PASSWORD_ENV: server.password(user)}


def _daemon_once(server: Dovecot, user: str, folder: Path) -> tuple[float, int, float]:
    """Seconds for `desk-ingest --once` from empty, its peak RSS in MiB, and the CPU seconds
    it and its parse workers used (which a busy shared machine does not inflate as it does
    the seconds).

    A fresh interpreter runs it so that RUSAGE_CHILDREN's maximum belongs to this run alone
    (the largest single process: the daemon or one of its parser workers).
    """
    code = (
        "import resource, subprocess, sys, time; t = time.perf_counter();"
        f"subprocess.run([sys.executable, '-m', 'ingest.daemon', '--config', "
        f"{str(_config(server, user, folder))!r}, '--once', '--log-level', 'warning'], "
        "check=True);"
        "r = resource.getrusage(resource.RUSAGE_CHILDREN);"
        "print(time.perf_counter() - t, r.ru_maxrss, r.ru_utime + r.ru_stime)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=_env(server, user),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return float(out[0]), int(out[1]) // 1024, float(out[2])


@contextlib.contextmanager
def _daemon(server: Dovecot, user: str, folder: Path) -> Iterator[sqlite3.Connection]:
    # BENCH_DAEMON_LOG keeps the daemon's log, for when a figure looks wrong.
    with open(os.environ.get("BENCH_DAEMON_LOG", os.devnull), "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ingest.daemon", "--config", str(_config(server, user, folder))],
            env=_env(server, user),
            stderr=log,
        )
    try:
        db_path = folder / f"{user}.db"
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(sqlite3.Error):
                db = sqlite3.connect(db_path)
                state = db.execute("SELECT state FROM source_state").fetchone()
                if state and state[0] == "idle":
                    break
                db.close()
            if time.monotonic() > deadline:
                raise RuntimeError("desk-ingest did not reach IDLE within 30 s")
            time.sleep(0.05)
        yield db
        db.close()
    finally:
        process.terminate()
        process.wait(timeout=30)


def _latency(server: Dovecot, user: str, folder: Path, count: int) -> list[float]:
    """APPEND -> committed, in seconds, for `count` messages one after another."""
    latencies = []
    with _daemon(server, user, folder) as db, server.session(user) as client:
        client._imap.debug = 0
        for i in range(count):
            subject = f"Latency probe {i} {time.time_ns()}"
            raw = (
                f"From: Probe <probe@example.com>\r\nTo: technical@valuit.com\r\n"
                f"Subject: {subject}\r\nMessage-ID: <probe{i}.{time.time_ns()}@example.com>\r\n"
                "\r\nIs it there yet?\r\n"
            ).encode()
            started = time.perf_counter()
            client.append("INBOX", raw)
            while not db.execute("SELECT 1 FROM message WHERE subject = ?", [subject]).fetchone():
                time.sleep(0.001)
            latencies.append(time.perf_counter() - started)
    return latencies


def _drop_folder(count: int, seed: int, folder: Path) -> tuple[float, float, float]:
    """Seconds for the drop folder's `desk-ingest --once` over the mailbox's messages, the
    two-core parse floor (CPU seconds to parse them, halved: at most two cores do it), and the
    CPU seconds the daemon and its workers used."""
    messages = list(generate(count, seed))
    started = time.process_time()
    for _function, raw in messages:
        parse(raw)
    floor_s = (time.process_time() - started) / min(2, len(os.sched_getaffinity(0)))
    write_maildir(folder / "spool", messages)
    del messages
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds, _rss = ingest_drop._daemon(folder)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return seconds, floor_s, cpu


def _pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def run(count: int, probes: int) -> None:
    small = min(2_000, count)
    with tempfile.TemporaryDirectory(prefix="bench-imap-") as tmp:
        folder = Path(tmp)
        server = Dovecot(folder / "dovecot", users=USERS)
        try:
            server.start()
            _fill(server, "technical", count, seed=11)
            _fill(server, "small", small, seed=12)
            for user in ("technical", "small"):
                _floor(server, user)  # Dovecot indexes the mailbox on first access: not ours
            # The baselines are cheap and, for mbsync, noisy (0.7-4.4 s seen on one machine
            # within minutes: it writes 10,000 files): take the best of three.
            floor_s, size = min(_floor(server, "technical") for _ in range(3))
            debug_s, _ = _floor(server, "technical", debug=True)
            runs = []
            for attempt in range(3):
                (folder / f"mbsync{attempt}").mkdir()
                runs.append(_mbsync(server, "technical", folder / f"mbsync{attempt}"))
            mbsync_s = min(runs)
            desk_s, rss_big, desk_cpu = _daemon_once(server, "technical", folder)
            _, rss_small, _ = _daemon_once(server, "small", folder)
            latencies = _latency(server, "latency", folder, probes)
        finally:
            server.cleanup(graceful=False)
        (folder / "drop").mkdir()
        drop_s, parse_floor_s, drop_cpu = _drop_folder(count, 11, folder / "drop")
    mib = size / 2**20
    print(f"{count} messages, {mib:.1f} MiB, batches of {BATCH}")
    print(f"(a) raw FETCH floor      {floor_s:7.2f} s  {count / floor_s:8.0f} msgs/s")
    print(f"    same, imaplib debug  {debug_s:7.2f} s  {count / debug_s:8.0f} msgs/s  (stock)")
    print(
        f"(b) mbsync (FSync No)    {mbsync_s:7.2f} s  {count / mbsync_s:8.0f} msgs/s  "
        f"(best of {', '.join(f'{r:.2f}' for r in runs)} s)"
    )
    print(
        f"(c) desk-ingest --once   {desk_s:7.2f} s  {count / desk_s:8.0f} msgs/s  "
        f"(CPU {desk_cpu:.2f} s, workers included)"
    )
    print(f"c/a = {desk_s / floor_s:.2f}   c/b = {desk_s / mbsync_s:.2f}  (target c/b <= 1.5)")
    print(
        f"(d) drop folder --once   {drop_s:7.2f} s  {count / drop_s:8.0f} msgs/s  "
        f"(CPU {drop_cpu:.2f} s, workers included)"
    )
    print(f"    parse floor, 2 cores {parse_floor_s:7.2f} s  {count / parse_floor_s:8.0f} msgs/s")
    print(f"d / floor = {parse_floor_s / drop_s:.2f}  (as a rate; target >= 0.9)")
    print(
        f"APPEND -> committed over {probes} (daemon in IDLE; Dovecot adds 0.5 s): "
        f"p50 {_pct(latencies, 50) * 1000:.0f} ms  p95 {_pct(latencies, 95) * 1000:.0f} ms  "
        f"p99 {_pct(latencies, 99) * 1000:.0f} ms  max {max(latencies) * 1000:.0f} ms"
    )
    print(
        f"peak RSS of desk-ingest --once: {small} msgs {rss_small} MiB, {count} msgs {rss_big} MiB"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--probes", type=int, default=100, help="APPENDs timed for latency")
    args = parser.parse_args(argv)
    if not (Dovecot.available() and shutil.which("mbsync")):
        print("skipped: needs dovecot-imapd and isync (mbsync) installed")
        return
    print(f"nproc: {len(os.sched_getaffinity(0))}")
    run(args.count, args.probes)


if __name__ == "__main__":
    print(f"machine: {machine()}")
    main(sys.argv[1:])
