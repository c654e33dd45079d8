"""`desk backup`: a checked, owner-only copy taken while a real desk-ingest writes, and a restore
done as the README says; run as real processes on real files."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from db.core import backup as db_backup
from db.core.connect import open_db
from db.core.errors import DeskError
from ingest.demo import generate, write_maildir
from tests.conftest import write_config_file

DESK = Path(sys.executable).with_name("desk")


def desk(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DESK, "--config", str(config), *args], capture_output=True, text=True, timeout=120
    )


def ingest(config: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ingest.daemon", "--config", str(config), "--log-level", "warning"]
        + list(args),
        start_new_session=True,
        stderr=subprocess.PIPE,
    )


def config_for(tmp_path: Path, database: Path) -> Path:
    """A config file naming `database`, to open a backup the way an operator would."""
    path = tmp_path / f"{database.stem}.toml"
    path.write_text(f'[database]\npath = "{database}"\n', encoding="utf-8")
    return path


def counts(config: Path) -> dict[str, object]:
    result = desk(config, "stats", "--json")
    assert 0 == result.returncode, result.stderr
    data = json.loads(result.stdout)
    return {key: data[key] for key in ("messages", "tickets", "tickets_by_status", "locations")}


def test_backups_taken_while_desk_ingest_writes_are_sound_owner_only_and_open(tmp_path):
    config = write_config_file(tmp_path)
    total = 5000  # a first sync outruns a backup process starting up at fewer
    write_maildir(tmp_path / "spool", generate(total, seed=12))
    db = open_db(tmp_path / "desk.db")

    def stored() -> int:
        return db.execute("SELECT count(*) FROM message").fetchone()[0]

    folder = tmp_path / "backups"
    folder.mkdir()
    taken: list[tuple[Path, subprocess.CompletedProcess[str]]] = []
    daemon = ingest(config)
    try:
        deadline = time.monotonic() + 120
        while stored() == 0:
            assert time.monotonic() < deadline and daemon.poll() is None, "ingest never began"
            time.sleep(0.01)
        # Back to back until everything is in: some copies are taken mid-ingest.
        while stored() < total and time.monotonic() < deadline:
            copy = folder / f"copy-{len(taken)}.db"
            taken.append((copy, desk(config, "backup", str(copy))))
        assert total == stored(), "desk-ingest stopped storing while backups ran"
    finally:
        daemon.terminate()
        daemon.wait(timeout=20)

    in_copies = []
    for copy, result in taken:
        assert 0 == result.returncode, result.stderr
        assert 0o600 == stat.S_IMODE(copy.stat().st_mode)
        with sqlite3.connect(copy) as conn:
            assert [("ok",)] == conn.execute("PRAGMA integrity_check").fetchall()
            in_copy = conn.execute("SELECT count(*) FROM message").fetchone()[0]
        conn.close()
        assert f", {in_copy} messages," in result.stdout
        in_copies.append(in_copy)
    mid_ingest = [n for n in in_copies if 0 < n < total]
    assert mid_ingest, f"no copy was taken mid-ingest ({in_copies}): raise the message count"
    middle = taken[in_copies.index(mid_ingest[0])][0]
    assert mid_ingest[0] == counts(config_for(tmp_path, middle))["messages"]
    # Only the copies are left in their folder: no temporary file, no journal.
    assert sorted(copy.name for copy, _ in taken) == sorted(os.listdir(folder))


def test_an_existing_path_is_kept_unless_forced(tmp_path):
    config = write_config_file(tmp_path)
    write_maildir(tmp_path / "spool", generate(20, seed=3))
    assert 0 == ingest(config, "--once").wait(timeout=120)
    target = tmp_path / "precious.db"
    target.write_bytes(b"last week's backup")

    refused = desk(config, "backup", str(target))
    assert (2, "") == (refused.returncode, refused.stdout)
    assert [f"desk: {target} already exists: choose another path, or pass --force."] == (
        refused.stderr.splitlines()
    )
    assert b"last week's backup" == target.read_bytes()

    forced = desk(config, "backup", str(target), "--force")
    assert 0 == forced.returncode, forced.stderr
    assert 20 == counts(config_for(tmp_path, target))["messages"]


def test_a_path_that_cannot_be_written_is_one_line_and_exit_2(tmp_path):
    config = write_config_file(tmp_path)
    assert 0 == ingest(config, "--once").wait(timeout=120)
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("a file, not a folder")

    result = desk(config, "backup", str(not_a_folder / "desk.db"))
    assert 2 == result.returncode
    assert [f"desk: cannot write a backup in {not_a_folder}: not a directory."] == (
        result.stderr.splitlines()
    )


@contextlib.contextmanager
def tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted on `folder` for the block (skips the test where mounting is not allowed)."""
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)]).returncode:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_read_only_folder_is_one_line_and_exit_2(tmp_path):
    config = write_config_file(tmp_path)
    assert 0 == ingest(config, "--once").wait(timeout=120)
    with tmpfs(tmp_path / "readonly", "ro,size=1m") as folder:
        result = desk(config, "backup", str(folder / "desk.db"))
    assert 2 == result.returncode
    assert [f"desk: cannot write a backup in {folder}: read-only file system."] == (
        result.stderr.splitlines()
    )


def test_a_full_disk_is_one_line_exit_2_and_leaves_nothing_behind(tmp_path):
    config = write_config_file(tmp_path)
    write_maildir(tmp_path / "spool", generate(200, seed=5))
    assert 0 == ingest(config, "--once").wait(timeout=120)
    with tmpfs(tmp_path / "small", "size=256k") as small:
        result = desk(config, "backup", str(small / "desk.db"))
        left = os.listdir(small)
    assert 2 == result.returncode
    assert [f"desk: the disk holding {small} is full: free space and run again."] == (
        result.stderr.splitlines()
    )
    assert [] == left


def test_a_damaged_database_fails_the_check_and_writes_nothing(tmp_path):
    config = write_config_file(tmp_path)
    write_maildir(tmp_path / "spool", generate(200, seed=8))
    assert 0 == ingest(config, "--once").wait(timeout=120)
    database = tmp_path / "desk.db"
    with contextlib.closing(sqlite3.connect(database)) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE type = 'index' AND tbl_name = 'message'"
        ).fetchone()[0]
    with open(database, "r+b") as handle:  # garbage over the cell pointers of an index's root
        handle.seek((root - 1) * page_size + 8)
        handle.write(b"\xff" * 64)
    target = tmp_path / "copy.db"

    result = desk(config, "backup", str(target))
    assert 2 == result.returncode
    [line] = result.stderr.splitlines()
    assert line.startswith(f"desk: the copy of {database} failed its integrity check (")
    assert not target.exists()
    assert [] == [name for name in os.listdir(tmp_path) if name.startswith(".copy.db")]


def test_a_backup_restored_as_the_readme_says_gives_the_same_counts(tmp_path):
    config = write_config_file(tmp_path)
    write_maildir(tmp_path / "spool", generate(150, seed=21))
    assert 0 == ingest(config, "--once").wait(timeout=120)
    at_backup = counts(config)
    backup = tmp_path / "nightly.db"
    taken = desk(config, "backup", str(backup))
    assert 0 == taken.returncode, taken.stderr
    assert f"{at_backup['messages']} messages, {at_backup['tickets']} tickets," in taken.stdout

    # Life goes on after the backup, then desk.db is lost and the backup restored.
    write_maildir(tmp_path / "spool", generate(40, seed=22))
    assert 0 == ingest(config, "--once").wait(timeout=120)
    assert at_backup != counts(config)
    database = tmp_path / "desk.db"
    # README, "Restoring a backup": with desk-ingest stopped, copy the backup over desk.db and
    # remove its -wal and -shm.
    shutil.copyfile(backup, database)
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)

    assert at_backup == counts(config)
    with sqlite3.connect(database) as conn:
        assert [("ok",)] == conn.execute("PRAGMA integrity_check").fetchall()


def test_a_backup_over_the_database_itself_is_refused(tmp_path):
    database = tmp_path / "desk.db"
    open_db(database).close()
    for target in (database, tmp_path / "link.db"):
        if target != database:
            target.symlink_to(database)
        with pytest.raises(DeskError, match="is the database itself"):
            db_backup.backup(database, target, force=True)
    assert 0 < database.stat().st_size


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_backup_stopped_by_a_signal_leaves_no_temporary_file(tmp_path, signum):
    database = tmp_path / "desk.db"
    db = open_db(database)
    # About 200 MiB, so the copy (16 MiB a step) is still going when the signal arrives.
    db.execute("CREATE TABLE filler (blob BLOB)")
    db.conn.executemany("INSERT INTO filler VALUES (randomblob(1 << 20))", [()] * 200)
    db.conn.commit()
    db.close()
    target = tmp_path / "backups" / "desk-Sun.db"
    target.parent.mkdir()
    proc = subprocess.Popen(
        [DESK, "--config", str(config_for(tmp_path, database)), "backup", str(target)],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not list(target.parent.iterdir()) and proc.poll() is None:
        assert time.monotonic() < deadline, "the backup never began"
        time.sleep(0.005)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the backup finished before the signal arrived")
    assert 128 + signum == proc.returncode, err
    assert f"stopped by {signal.Signals(signum).name}" in err
    assert [] == list(target.parent.iterdir())
