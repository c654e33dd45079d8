"""desk-ingest's processes end with it: `kill -9` of the daemon leaves no parse worker behind,
and SIGTERM ends everything within 5 s.

The daemon runs as a real process (its own process group, as a service manager starts it) on
a drop folder big enough that its parse workers are busy when the signal comes.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from db.core.connect import open_db
from ingest.demo import generate, write_maildir
from ingest.workers import parse_workers
from tests.conftest import write_config_file
from tests.dovecot import live_processes_in_group

COUNT = 3000
GRACE = 5.0  # seconds the issue allows


STARTED: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _no_daemon_left() -> Iterator[None]:
    """A test that fails before its signal leaves no daemon running after it (they used to
    outlive the suite, holding their databases)."""
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def start(config_path: Path, *more: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest.daemon", "--config", str(config_path), *more],
        start_new_session=True,
        stderr=subprocess.PIPE,
    )
    STARTED.append(proc)
    return proc


def children(pid: int) -> list[int]:
    """The ids of `pid`'s child processes (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def busy_daemon(tmp_path: Path) -> tuple[subprocess.Popen[bytes], list[int]]:
    """A running daemon that has begun storing COUNT messages, and its parse workers' ids."""
    write_maildir(tmp_path / "spool", generate(COUNT, seed=12))
    proc = start(write_config_file(tmp_path), "--log-level", "warning")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if (tmp_path / "desk.db").exists() and stored(tmp_path) > 0:
            break
        time.sleep(0.01)
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    assert 0 < stored(tmp_path) < COUNT, "nothing stored yet, or all: no signal mid-sync"
    workers = children(proc.pid)
    assert parse_workers() == len(workers)
    return proc, workers


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped by init, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def stored(tmp_path: Path) -> int:
    db = open_db(tmp_path / "desk.db")
    try:
        return db.execute("SELECT count(*) FROM message").fetchone()[0]
    finally:
        db.close()


def gone_within(pgid: int, seconds: float) -> list[int]:
    """The processes of group `pgid` still alive after up to `seconds` (none, hopefully)."""
    deadline = time.monotonic() + seconds
    while (left := live_processes_in_group(pgid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


needs_workers = pytest.mark.skipif(parse_workers() < 2, reason="one core: no parse workers")


@needs_workers
def test_kill_9_of_the_daemon_leaves_no_worker_behind(tmp_path: Path) -> None:
    proc, workers = busy_daemon(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)  # the main process only, as `kill -9 PID` does
    proc.wait()
    assert [] == gone_within(proc.pid, GRACE)
    assert [] == [w for w in workers if alive(w)]


@needs_workers
@pytest.mark.parametrize("to_group", [False, True], ids=["daemon", "process-group"])
def test_sigterm_ends_everything_within_5_s_and_loses_nothing(
    tmp_path: Path, to_group: bool
) -> None:
    proc, _workers = busy_daemon(tmp_path)
    distinct = len({hashlib.sha256(raw).digest() for _fn, raw in generate(COUNT, seed=12)})
    sent = time.monotonic()
    if to_group:  # as systemd stops a unit: every process of it at once
        os.killpg(proc.pid, signal.SIGTERM)
    else:
        os.kill(proc.pid, signal.SIGTERM)
    code = proc.wait(timeout=30)
    left = gone_within(proc.pid, GRACE - (time.monotonic() - sent))
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert ([], 0) == (left, code), err
    assert time.monotonic() - sent < GRACE
    assert "Traceback" not in err
    at_stop = stored(tmp_path)  # what was committed before the signal stays, and only once
    assert 0 < at_stop < distinct

    final = start(tmp_path / "config.toml", "--once")
    _, err2 = final.communicate(timeout=120)
    assert 0 == final.returncode, err2
    assert distinct == stored(tmp_path)


def test_a_second_daemon_on_the_same_database_is_refused_with_a_clear_line(
    tmp_path: Path,
) -> None:
    config_path = write_config_file(tmp_path)
    first = start(config_path)
    lock = tmp_path / "desk.db.ingest.lock"
    deadline = time.monotonic() + 30
    while not (lock.exists() and lock.read_text().strip()) and first.poll() is None:
        assert time.monotonic() < deadline, "the first daemon never took its lock"
        time.sleep(0.01)
    try:
        for more in ((), ("--once",)):
            second = subprocess.run(
                [sys.executable, "-m", "ingest.daemon", "--config", str(config_path), *more],
                capture_output=True,
                text=True,
                timeout=30,
            )
            expected = f"desk-ingest: another desk-ingest (pid {first.pid}) is already reading"
            assert (1, True) == (second.returncode, second.stderr.startswith(expected))
            assert 1 == len(second.stderr.splitlines())
        # Reading stored mail again and checking [smtp] are no daemons: still allowed.
        said = {}
        for flag in ("--reparse", "--check-smtp"):
            said[flag] = subprocess.run(
                [sys.executable, "-m", "ingest.daemon", "--config", str(config_path), flag],
                capture_output=True,
                text=True,
                timeout=30,
            )
        assert 0 == said["--reparse"].returncode, said["--reparse"].stderr
        assert "no [smtp] in" in said["--check-smtp"].stderr  # it went as far as looking
    finally:
        first.send_signal(signal.SIGTERM)
        assert 0 == first.wait(timeout=GRACE)
    after = start(config_path, "--once")
    assert 0 == after.wait(timeout=30)  # the lock went with the first daemon
