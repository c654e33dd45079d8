"""desk-ingest outlives faults of its own database (a full disk, a write lock held by another
process, a read-only file) and of its mail server (Dovecot stopped for a minute). While each
lasts `desk stats --json` names it; once it clears, ingest resumes by itself within one backoff
step, the same process, nothing lost or duplicated.

The daemon and `desk stats` run as real processes; the full disk is a real tmpfs (we run as
root; the test is skipped where mount is refused), the lock a real `BEGIN IMMEDIATE` in another
process, the read-only file a real `chattr +i`, the mail server the private Dovecot fixture.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from db.core.config import Config
from db.core.connect import BUSY_TIMEOUT_MS, open_db
from db.mailin import sources
from ingest.demo import generate, write_maildir
from tests.conftest import write_config_file
from tests.dovecot import Dovecot
from tests.test_imap import Desk, configure, imap_source, passwords, write_config
from tests.test_imap import running as imap_running

CAP = 2  # [ingest] retry_cap_seconds for these tests: a fault's clearing is seen within it
RESUME = 60.0  # seconds the issue allows from a fault's clearing to ingest going on
DESK = "import sys; from tui.cli import main; sys.exit(main())"  # `desk`, from this tree
INGEST = f"\n[ingest]\nretry_cap_seconds = {CAP}\ngive_up_minutes = 30\n"


def config_for(tmp_path: Path, database: Path, functions: tuple[str, ...]) -> Path:
    path = write_config_file(tmp_path, functions, extra=INGEST)
    path.write_text(path.read_text().replace(str(tmp_path / "desk.db"), str(database)))
    return path


def start(config_path: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "ingest.daemon", "--config", str(config_path)],
            stderr=err,
            start_new_session=True,
        )


@contextlib.contextmanager
def running(config_path: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = start(config_path, log)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def stats(config_path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", DESK, "--config", str(config_path), "stats", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert 0 == done.returncode, done.stderr
    return json.loads(done.stdout)


def wait_for(what: Callable[[], Any], seconds: float, why: str) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := what()):
        assert time.monotonic() < deadline, why
        time.sleep(0.2)
    return found


def faulted(config_path: Path, words: str) -> list[dict[str, Any]]:
    """The sources `desk stats` shows backing off with an error containing `words`."""
    return [
        s
        for s in stats(config_path)["sources"]
        if s["state"] == "backing-off" and words in (s["last_error"] or "")
    ]


def distinct(messages: list[tuple[str, bytes]]) -> int:
    return len({hashlib.sha256(raw).digest() for _fn, raw in messages})


def assert_all_stored_once(config_path: Path, messages: list[tuple[str, bytes]]) -> None:
    expected = distinct(messages)
    wait_for(
        lambda: stats(config_path)["messages"] >= expected,
        RESUME,
        "ingest did not resume within 60 s of the fault clearing",
    )
    final = stats(config_path)
    assert (expected, []) == (final["messages"], final["failures"])


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 MiB tmpfs, unmounted afterwards; skips if this system refuses the mount."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def stored_now(path: Path) -> int:
    """Messages in the database at `path` now, 0 before its schema is made."""
    if not path.exists():
        return 0
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        try:
            return db.execute("SELECT count(*) FROM message").fetchone()[0]
        except sqlite3.OperationalError:  # no message table yet
            return 0


def fill(folder: Path) -> Path:
    """A file taking every free byte of `folder`'s filesystem."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as out:
        for size in (1 << 20, 4096):  # then the last pages, smaller than a MiB
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError as exc:
                assert errno.ENOSPC == exc.errno
    return filler


def test_a_full_disk_is_named_and_ingest_resumes_once_there_is_room(
    tmp_path: Path, small_disk: Path
) -> None:
    messages = list(generate(3000, seed=21))
    write_maildir(tmp_path / "spool", messages)
    config_path = config_for(tmp_path, small_disk / "desk.db", ("technical", "sales", "general"))
    wanted = [(fn, raw) for fn, raw in messages if fn in ("technical", "sales", "general")]
    with running(config_path, tmp_path / "daemon.log") as proc:
        # Read directly, not through `desk stats`: a first sync of 3,000 outruns a process start.
        wait_for(lambda: stored_now(small_disk / "desk.db") > 0, 60, "the daemon stored nothing")
        filler = fill(small_disk)  # mid-ingest
        assert stats(config_path)["messages"] < distinct(wanted), "ingest ended before the fill"
        wait_for(
            lambda: faulted(config_path, "the disk holding desk.db is full"),
            60,
            "desk stats never named the full disk",
        )
        filler.unlink()
        assert_all_stored_once(config_path, wanted)
        assert proc.poll() is None  # the same daemon, never restarted
    log = (tmp_path / "daemon.log").read_text()
    assert "Traceback" not in log


# Seconds the other process keeps the write lock: half the busy timeout of `desk` and the
# other readers, so the lock must be named while it lasts, not once that timeout has run out.
HOLD = BUSY_TIMEOUT_MS / 1000 / 2


def test_a_write_lock_held_by_another_process_is_named_and_waited_out(tmp_path: Path) -> None:
    first = list(generate(40, seed=22))
    write_maildir(tmp_path / "spool", first, per_function=False)
    database = tmp_path / "desk.db"
    config_path = config_for(tmp_path, database, ())
    config_path.write_text(
        config_path.read_text()
        + f'\n[[source]]\nfunction = "general"\nkind = "maildir"\npath = "{tmp_path / "spool"}"\n'
    )
    with running(config_path, tmp_path / "daemon.log") as proc:
        wait_for(
            lambda: database.exists() and stats(config_path)["messages"] == distinct(first),
            60,
            "the first mail was not stored",
        )
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sqlite3, sys, time\n"
                f"c = sqlite3.connect({str(database)!r}, isolation_level=None)\n"
                "c.execute('BEGIN IMMEDIATE'); print('held', flush=True)\n"
                f"time.sleep({HOLD}); c.execute('ROLLBACK')\n",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert "held" == holder.stdout.readline().strip()
            more = list(generate(80, seed=23))[40:]
            write_maildir(tmp_path / "spool", more, per_function=False)
            wait_for(
                lambda: faulted(config_path, "desk.db is locked by another process"),
                HOLD,
                "desk stats never named the lock",
            )
            assert holder.poll() is None  # the fault was shown while it lasted
        finally:
            holder.wait(timeout=HOLD + 30)
        assert_all_stored_once(config_path, first + more)
        assert proc.poll() is None
    assert "Traceback" not in (tmp_path / "daemon.log").read_text()


def test_a_read_only_database_is_one_line_and_shown_until_it_is_writable(
    tmp_path: Path,
) -> None:
    config_path = config_for(tmp_path, tmp_path / "desk.db", ("general",))
    first = subprocess.run(
        [sys.executable, "-m", "ingest.daemon", "--config", str(config_path), "--once"],
        capture_output=True,
        timeout=60,
    )
    assert 0 == first.returncode, first.stderr
    database = tmp_path / "desk.db"
    if subprocess.run(["chattr", "+i", str(database)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is refused here")
    try:
        once = subprocess.run(
            [sys.executable, "-m", "ingest.daemon", "--config", str(config_path), "--once"]
            + ["--log-level", "warning"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        lines = once.stderr.strip().splitlines()
        assert (1, 1) == (once.returncode, len(lines)), once.stderr
        assert "desk.db is read-only" in lines[0]

        messages = [m for m in generate(30, seed=24) if m[0] == "general"]
        write_maildir(tmp_path / "spool", messages)
        with running(config_path, tmp_path / "daemon.log") as proc:
            wait_for(
                lambda: faulted(config_path, "desk.db is read-only"),
                30,
                "desk stats never named the read-only database",
            )
            subprocess.run(["chattr", "-i", str(database)], check=True)
            assert_all_stored_once(config_path, messages)
            assert proc.poll() is None
    finally:
        subprocess.run(["chattr", "-i", str(database)], check=False)
    assert "Traceback" not in (tmp_path / "daemon.log").read_text()


def test_no_source_making_progress_for_give_up_minutes_ends_the_daemon_non_zero(
    tmp_path: Path,
) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on: every connect refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config_path = config_for(tmp_path, tmp_path / "desk.db", ())
    config_path.write_text(
        config_path.read_text().replace("give_up_minutes = 30", "give_up_minutes = 0.05")
        + '\n[[source]]\nfunction = "sales"\nkind = "imap"\nhost = "127.0.0.1"\n'
        f'port = {port}\nsecurity = "none"\nusername = "sales"\npassword_env = "HOME"\n'
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "ingest.daemon", "--config", str(config_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert 1 == done.returncode, done.stderr
    assert "no source has made progress for 0.05 minute(s)" in done.stderr
    assert time.monotonic() - started < 30  # 3 s of failing, then one look of the daemon's
    assert "Traceback" not in done.stderr


@pytest.fixture
def imap(monkeypatch: pytest.MonkeyPatch, dovecot_server: Dovecot) -> Dovecot:
    for key, value in passwords(dovecot_server).items():
        monkeypatch.setenv(key, value)
    return dovecot_server


def imap_config(tmp_path: Path, server: Dovecot) -> Config:
    return replace(configure(tmp_path, imap_source(server)), retry_cap_seconds=CAP)


OUTAGE = 60.0  # seconds Dovecot stays stopped: the "stopped for a minute"


def test_imap_server_stopped_for_a_minute_is_shown_and_ingest_resumes_once_it_is_back(
    imap: Dovecot, tmp_path: Path
) -> None:
    # The one test of the suite that takes a minute by design: the outage is the point.
    config_path = write_config(tmp_path, imap_source(imap))
    config_path.write_text(config_path.read_text() + INGEST)
    before = [raw for _fn, raw in generate(30, seed=25)]
    for raw in before[:20]:
        imap.append("technical", raw)
    with running(config_path, tmp_path / "daemon.log") as proc:
        wait_for(
            lambda: (
                (tmp_path / "desk.db").exists()
                and stats(config_path)["messages"]
                == distinct([("technical", r) for r in before[:20]])
            ),
            60,
            "the first mail was not stored",
        )
        for raw in before[20:]:  # arriving just before the server goes
            imap.append("technical", raw)
        imap.stop(graceful=False)
        stopped = time.monotonic()
        wait_for(
            lambda: faulted(config_path, "refused the connection"),
            30,
            "desk stats never named the stopped server",
        )
        while time.monotonic() - stopped < OUTAGE:  # shown all the minute long
            # Between two tries, or during one (`connecting`, the error kept beside it).
            [source] = stats(config_path)["sources"]
            shown = (source["state"], "refused the connection" in (source["last_error"] or ""))
            assert shown in (("backing-off", True), ("connecting", True)), source
            time.sleep(5)
        imap.start()
        after = [raw for _fn, raw in generate(35, seed=26)][30:]
        for raw in after:
            imap.append("technical", raw)
        assert_all_stored_once(config_path, [("technical", raw) for raw in before + after])
        wait_for(lambda: stats(config_path)["sources"][0]["state"] == "idle", 30, "idle again")
        assert proc.poll() is None  # the same daemon, never restarted
    assert "Traceback" not in (tmp_path / "daemon.log").read_text()


def test_an_imap_message_that_failed_is_retried_without_new_mail(
    imap: Dovecot, tmp_path: Path
) -> None:
    cfg = imap_config(tmp_path, imap)
    desk = Desk(cfg)
    # A real store failure for one message, while a row is in `gate`: a trigger refuses it.
    desk.db.executescript(
        "CREATE TABLE gate (x); INSERT INTO gate VALUES (1);"
        "CREATE TRIGGER refuse BEFORE INSERT ON message "
        "WHEN NEW.message_id = '<refused@example.com>' AND EXISTS (SELECT 1 FROM gate) "
        "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
    )
    raw = (
        b"From: Ann <ann@example.com>\r\nTo: technical@valuit.com\r\nSubject: Retry me\r\n"
        b"Message-ID: <refused@example.com>\r\n\r\nHelp\r\n"
    )
    with imap_running(cfg):
        wait_for(lambda: desk.state("technical-imap").get("state") == "idle", 30, "idle")
        imap.append("technical", raw)
        wait_for(lambda: sources.failures(desk.db), 10, "the failed attempt recorded")
        desk.db.execute("DELETE FROM gate")
        desk.db.conn.commit()
        wait_for(lambda: desk.messages() == 1, 3 * CAP + 5, "the retry, with no new mail")
        assert [] == sources.failures(desk.db)


def test_server_count_follows_the_expunges_of_after_ingest_move(
    imap: Dovecot, tmp_path: Path
) -> None:
    for _fn, raw in generate(5, seed=28):
        imap.append("technical", raw)
    cfg = replace(
        configure(tmp_path, imap_source(imap, after_ingest="move:Archive")),
        retry_cap_seconds=CAP,
    )
    desk = Desk(cfg)
    with imap_running(cfg):
        wait_for(lambda: desk.state("technical-imap").get("state") == "idle", 30, "idle")
        assert (5, 0) == (desk.messages(), desk.state("technical-imap")["server_count"])


def test_server_count_follows_expunges_while_idle(imap: Dovecot, tmp_path: Path) -> None:
    for _fn, raw in generate(5, seed=26):
        imap.append("technical", raw)
    cfg = imap_config(tmp_path, imap)
    desk = Desk(cfg)
    name = "technical-imap"
    with imap_running(cfg):
        wait_for(lambda: desk.state(name).get("state") == "idle", 30, "idle")
        assert 5 == desk.state(name)["server_count"]
        with imap.session("technical") as client:
            client.select_folder("INBOX")
            client.delete_messages(client.search(["ALL"])[:2])
            client.expunge()
        wait_for(lambda: desk.state(name).get("server_count") == 3, 10, "server_count 3")


def test_a_drop_folder_failure_record_is_cleared_once_the_message_is_stored(
    tmp_path: Path,
) -> None:
    config_path = config_for(tmp_path, tmp_path / "desk.db", ("general",))
    messages = [m for m in generate(20, seed=27) if m[0] == "general"][:1]
    write_maildir(tmp_path / "spool", messages)
    key = next((tmp_path / "spool" / "general" / "new").iterdir()).name.partition(":")[0]
    with closing(open_db(tmp_path / "desk.db")) as db:  # an earlier attempt that failed
        sources.record_failure(db, "general-maildir", key, "cannot read: [Errno 5] I/O error")
    once = subprocess.run(
        [sys.executable, "-m", "ingest.daemon", "--config", str(config_path), "--once"],
        capture_output=True,
        timeout=60,
    )
    assert 0 == once.returncode, once.stderr
    final = stats(config_path)
    assert (1, []) == (final["messages"], final["failures"])
