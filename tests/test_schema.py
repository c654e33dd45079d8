"""The schema: created and migrated idempotently, by several processes at once, in WAL mode."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from db.core import migrations
from db.core.connect import open_db


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
    code = f"from db.core.connect import open_db; open_db({str(path)!r})"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE) for _ in range(6)
    ]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [0] * 6 == [p.returncode for p in procs], errors
    assert len(migrations.MIGRATIONS) == migrations.version(open_db(path))


def test_a_v2_database_keeps_its_notices_and_takes_the_new_kinds(tmp_path, monkeypatch):
    path = tmp_path / "desk.db"
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:2])
    db = open_db(path)
    db.execute(
        "INSERT INTO window (title, kind, update_type, start_at, end_at, zone, created_at, "
        "created_by) VALUES ('W', 'adhoc', 'feature', '2026-01-01', '2026-01-02', 'UTC', "
        "'2025-12-01', 'ops')"
    )
    db.execute(
        "INSERT INTO notice (window_id, revision, kind, channel, body, rendered_at, issued_by) "
        "VALUES (1, 1, 'announcement', 'email', 'We will…', '2025-12-01', 'ops')"
    )
    db.conn.commit()
    with pytest.raises(sqlite3.IntegrityError):  # v2 knew no change notice
        db.execute(
            "INSERT INTO notice (window_id, revision, kind, channel, body, rendered_at, "
            "issued_by) VALUES (1, 2, 'change', 'email', 'x', '2025-12-02', 'ops')"
        )
    db.close()
    monkeypatch.undo()

    db = open_db(path)
    assert len(migrations.MIGRATIONS) == migrations.version(db)
    assert [(1, "announcement", "We will…")] == db.execute(
        "SELECT id, kind, body FROM notice"
    ).fetchall()
    db.execute(
        "INSERT INTO notice (window_id, revision, kind, channel, body, rendered_at, issued_by) "
        "VALUES (1, 2, 'change', 'email', 'x', '2025-12-02', 'ops')"
    )
    assert [] == db.execute("PRAGMA foreign_key_check").fetchall()


def test_a_v3_database_keeps_the_kind_of_its_mail(tmp_path, monkeypatch):
    path = tmp_path / "desk.db"
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:3])
    db = open_db(path)
    for sha, auto in (("a", ""), ("b", "auto-reply"), ("c", "bounce")):
        db.execute(
            "INSERT INTO message (sha256, size, function, source, received_at, ingested_at, auto)"
            " VALUES (?, 1, 'technical', 's', '2026-01-01', '2026-01-01', ?)",
            [sha, auto],
        )
    db.conn.commit()
    db.close()
    monkeypatch.undo()

    db = open_db(path)
    assert [("a", "", 0), ("b", "auto-reply", 0), ("c", "bounce", 0)] == db.execute(
        "SELECT sha256, kind, parser_version FROM message ORDER BY sha256"
    ).fetchall()
