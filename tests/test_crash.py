"""Crash safety: `kill -9` of desk-ingest at random moments, then restarts, store each message once.

The daemon runs as a real process on 2,000 generated messages; it is killed (with its parse
workers, as systemd would kill the unit's process group) five times at random moments.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time

from db.core.connect import open_db
from ingest.demo import generate, write_maildir
from tests.conftest import write_config_file

COUNT = 2000


def start(config_path):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ingest.daemon",
            "--config",
            str(config_path),
            "--once",
            "--log-level",
            "warning",
        ],
        start_new_session=True,
        stderr=subprocess.PIPE,
    )


def test_kill_9_at_five_random_moments_loses_and_duplicates_nothing(tmp_path):
    config_path = write_config_file(tmp_path)
    messages = list(generate(COUNT, seed=99))
    write_maildir(tmp_path / "spool", messages)
    expected = {hashlib.sha256(raw).hexdigest() for _, raw in messages}
    rng = random.Random(2026)
    db = open_db(tmp_path / "desk.db")
    kills = 0
    while kills < 5:
        proc = start(config_path)
        stored_before = db.execute("SELECT count(*) FROM message").fetchone()[0]
        # Kill once it has begun storing, at a random point of the run.
        deadline = time.monotonic() + 30
        while (
            db.execute("SELECT count(*) FROM message").fetchone()[0] == stored_before
            and proc.poll() is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.15))
        if proc.poll() is not None:
            break  # it finished before we could kill it: nothing left to crash
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
    final = start(config_path)
    _, err = final.communicate(timeout=120)
    assert 0 == final.returncode, err
    assert kills >= 3, "the run was too quick to be killed mid-way; raise COUNT"

    stored = [r[0] for r in db.execute("SELECT sha256 FROM message")]
    assert len(stored) == len(set(stored))  # exactly once
    assert expected == set(stored)  # nothing lost
    for fn in ("technical", "sales", "compliance", "general", "marketing"):
        assert [] == os.listdir(tmp_path / "spool" / fn / "new")
        assert all(n.endswith(":2,S") for n in os.listdir(tmp_path / "spool" / fn / "cur"))
    assert [("ok",)] == db.execute("PRAGMA integrity_check").fetchall()
