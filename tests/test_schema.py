"""The schema: created and migrated idempotently, by several processes at once, in WAL mode."""

from __future__ import annotations

import subprocess
import sys

from db import migrations
from db.connect import open_db


def test_opening_twice_changes_nothing(tmp_path):
    first = open_db(tmp_path / "d.db")
    schema = first.execute("SELECT group_concat(sql) FROM sqlite_master").fetchone()[0]
    again = open_db(tmp_path / "d.db")
    assert schema == again.execute("SELECT group_concat(sql) FROM sqlite_master").fetchone()[0]
    assert len(migrations.MIGRATIONS) == migrations.version(again)


def test_pragmas_every_connection_relies_on(tmp_path):
    db = open_db(tmp_path / "d.db")
    assert "wal" == db.execute("PRAGMA journal_mode").fetchone()[0]
    assert 1 == db.execute("PRAGMA foreign_keys").fetchone()[0]
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000


def test_several_processes_creating_the_schema_at_once_all_succeed(tmp_path):
    path = tmp_path / "race.db"
    code = f"from db.connect import open_db; open_db({str(path)!r})"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE) for _ in range(6)
    ]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [0] * 6 == [p.returncode for p in procs], errors
    assert len(migrations.MIGRATIONS) == migrations.version(open_db(path))
