"""Mail out: a maintenance notice to N subscribers, queued and sent, against raw smtplib.

(a) baseline: smtplib hands the same N mails to the server over one connection, nothing else;
(b) queue: the notice is issued and one mail per subscriber queued, in one transaction;
(c) send: the daemon's sender drains the outbox (a connection per batch, two commits a mail).
The server is aiosmtpd's Sink in its own process, so it does not share our interpreter.
Prints mails/s for each and c/a.
"""

from __future__ import annotations

import argparse
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

from db.core import clock
from db.core.config import load
from db.core.connect import open_db, write
from db.mailout import outbox, subscribers
from db.maintenance import windows
from ingest import sender


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c",
         "aiosmtpd.handlers.Sink"],
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("aiosmtpd did not start")


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:8.0f} mails/s  ({seconds:6.2f} s)"


def run(count: int) -> None:
    port = _port()
    server = _server(port)
    folder = Path(tempfile.mkdtemp(prefix="bench-mail-"))
    try:
        path = folder / "config.toml"
        path.write_text(
            f'[database]\npath = "{folder / "desk.db"}"\n[addresses]\n"general@valuit.com" = '
            f'"general"\n[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        )
        config = load(path)
        db = open_db(config.database)
        subscribers.add(db, [f"user{i}@example.com" for i in range(count)], "bench")
        start = clock.now() + timedelta(days=3)
        w = windows.add(
            db, title="Ledger upgrade", kind="adhoc", update_type="feature", start=start,
            end=start + timedelta(hours=2), zone="UTC", actor="bench", features=("Trading",),
        )  # fmt: skip

        began = time.perf_counter()
        windows.issue_notice(db, w.id, "announcement", "bench", mail=config.mail)
        queued = time.perf_counter() - began
        mails = [(r["mail_from"], r["rcpt"], r["raw"]) for r in outbox.due(db, clock.now(), count)]
        assert len(mails) == count

        began = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port) as conn:
            for mail_from, rcpt, raw in mails:
                conn.sendmail(mail_from, [rcpt], raw)
        baseline = time.perf_counter() - began

        began = time.perf_counter()
        lock = sender.lock_file(config.database)
        sender.run(db, config.mail.smtp, threading.Event(), once=True, lock=lock)
        sent = time.perf_counter() - began
        with write(db):
            left = outbox.counts(db)
        assert {"sent": count} == left, left

        print(f"  N = {count} subscribers, one notice")
        print(f"  (a) smtplib, one connection:  {_rate(count, baseline)}")
        print(f"  (b) issue + queue:            {_rate(count, queued)}")
        print(f"  (c) desk-ingest sender:       {_rate(count, sent)}")
        print(f"  c/a = {sent / baseline:.2f}   (batches of {config.mail.smtp.batch_size} per "
              "connection, two commits per mail)")  # fmt: skip
    finally:
        server.terminate()
        server.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args(argv)
    run(args.count)


if __name__ == "__main__":
    main()
