"""Privacy on disk: desk.db, its -wal/-shm and saved attachments are owner-only unless
configured otherwise, looser existing modes are warned about, saved names are safe anywhere."""

from __future__ import annotations

import grp
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from db.core import config, privacy
from db.core.connect import open_db, write
from db.core.errors import ConfigError
from db.mailin.names import safe_name
from tests.conftest import build_config, drop, mail, write_config_file
from tui import files
from tui.app import DeskApp
from tui.cli import main


@pytest.fixture(autouse=True)
def umask_022():
    """The usual umask, under which files SQLite or `open` create on their own are 0644."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes(database: Path) -> dict[str, int]:
    side = (Path(f"{database}{suffix}") for suffix in privacy.SIDE_FILES)
    return {p.name: mode(p) for p in (database, *side)}


def own_group() -> str:
    return grp.getgrgid(os.getgid()).gr_name


def write_something(db) -> None:
    with write(db):
        db.execute(
            "INSERT INTO subscriber (addr, added_at, added_by) VALUES ('ops@example.com', '', 't')"
        )


def test_a_new_database_and_its_wal_and_shm_are_0600_after_writes(tmp_path):
    database = tmp_path / "var" / "desk.db"
    db = open_db(database)
    write_something(db)
    assert {"desk.db": 0o600, "desk.db-wal": 0o600, "desk.db-shm": 0o600} == modes(database)
    assert 0o700 == mode(database.parent)  # the folder the desk made for it
    db.close()


def test_desk_ingest_creates_the_configured_database_0600(tmp_path):
    config_path = write_config_file(tmp_path, functions=("technical",))
    drop(tmp_path, "technical", mail())
    command = [sys.executable, "-m", "ingest.daemon", "--config", str(config_path), "--once"]
    assert 0 == subprocess.run(command, timeout=60).returncode
    assert 0o600 == mode(tmp_path / "desk.db")


def test_sqlite_gives_its_journal_the_main_files_mode(tmp_path):
    database = tmp_path / "desk.db"
    privacy.create(database, privacy.Access(0o640))
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("CREATE TABLE t (x)")
    assert 0o640 == mode(Path(f"{database}-journal"))
    conn.execute("COMMIT")
    conn.close()


def test_a_configured_mode_and_the_users_own_group_are_given_to_all_three_files(tmp_path):
    table = {"path": str(tmp_path / "team" / "desk.db"), "mode": "0640", "group": own_group()}
    desk = build_config(tmp_path, {"database": table})
    assert privacy.Access(0o640, own_group()) == desk.database_access
    db = open_db(desk.database, access=desk.database_access)
    write_something(db)
    assert {"desk.db": 0o640, "desk.db-wal": 0o640, "desk.db-shm": 0o640} == modes(desk.database)
    gid = grp.getgrnam(own_group()).gr_gid
    files_and_folder = [desk.database, Path(f"{desk.database}-wal"), desk.database.parent]
    assert [gid, gid, gid] == [p.stat().st_gid for p in files_and_folder]
    # The folder: searchable by the group, and setgid so other agents' -wal/-shm join the group.
    assert 0o2750 == stat.S_IMODE(desk.database.parent.stat().st_mode)
    assert [] == privacy.warnings(desk.database, desk.database_access)
    db.close()


@pytest.mark.parametrize(
    ("database", "key", "problem"),
    [
        ('mode = "0644x"', "database.mode", "not an octal permission"),
        ('mode = "rw-------"', "database.mode", "not an octal permission"),
        ('mode = "1777"', "database.mode", "not an octal permission"),
        ("mode = 640", "database.mode", "not an octal permission"),
        ('mode = "0400"', "database.mode", "must let the owner read and write"),
        ('group = "no-such-group-for-the-desk"', "database.group", "no group"),
        ("group = 7", "database.group", "must be a str"),
    ],
)
def test_a_bad_mode_or_group_is_a_config_error_naming_the_key(tmp_path, database, key, problem):
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\npath = "desk.db"\n{database}\n')
    with pytest.raises(ConfigError) as info:
        config.load(path)
    message = info.value.message
    assert (False, True, True) == (
        "\n" in message,
        message.startswith(f"{path}: key '{key}': "),
        problem in message,
    )


def test_a_looser_database_is_warned_about_at_start_and_left_as_it_is(tmp_path):
    config_path = write_config_file(tmp_path, functions=("technical",))
    database = tmp_path / "desk.db"
    open_db(database).close()
    database.chmod(0o644)
    drop(tmp_path, "technical", mail())
    command = [sys.executable, "-m", "ingest.daemon", "--config", str(config_path), "--once"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert 0 == result.returncode
    warned = [line for line in result.stderr.splitlines() if "has mode" in line]
    assert 1 == len(warned)
    assert f"{database} has mode 0644" in warned[0]
    assert warned[0].endswith(f"fix: chmod 600 {database}")
    assert 0o644 == mode(database)  # never silently changed


def test_a_team_database_in_a_folder_without_setgid_is_warned_about(tmp_path):
    access = privacy.Access(0o660, own_group())
    open_db(tmp_path / "desk.db", access=access).close()  # tmp_path: made by pytest, not setgid
    (line,) = privacy.warnings(tmp_path / "desk.db", access)
    fix = f"fix: chgrp {own_group()} {tmp_path} && chmod g+s {tmp_path}"
    assert (True, True) == (line.startswith(f"{tmp_path}: "), line.endswith(fix))
    assert 0o660 == mode(tmp_path / "desk.db")


@pytest.mark.anyio
async def test_the_desk_shows_the_looser_database_warning(tmp_path):
    desk = build_config(tmp_path, {"desk": {"agent": "maria"}})  # no "who are you?" notice
    open_db(desk.database).close()
    desk.database.chmod(0o604)
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        shown = [n.message for n in app._notifications]
    assert [
        f"{desk.database} has mode 0604, looser than the configured 0600 ([database] mode): "
        f"it holds customer mail; fix: chmod 600 {desk.database}"
    ] == shown


def test_desk_stats_on_a_tight_database_warns_about_nothing(tmp_path, capsys):
    config_path = write_config_file(tmp_path, functions=("technical",))
    assert 0 == main(["--config", str(config_path), "stats", "--json"])
    assert ("", 0o600) == (capsys.readouterr().err, mode(tmp_path / "desk.db"))


def test_a_saved_attachment_is_0600_and_never_a_device_name(tmp_path):
    saved = files.save(tmp_path, "con.txt", b"secret")  # a name an older version stored
    again = files.save(tmp_path, "con.txt", b"second")
    assert (tmp_path / "_con.txt", tmp_path / "_con (2).txt") == (saved, again)
    assert (0o600, 0o600, b"secret") == (mode(saved), mode(again), saved.read_bytes())


@pytest.mark.parametrize(
    ("display", "expected"),
    [
        ("con.txt", "_con.txt"),
        ("LPT1", "_LPT1"),
        ("aux.tar.gz", "_aux.tar.gz"),
        ("nul.", "_nul"),
        ("Com9.log", "_Com9.log"),
        ("COM¹.txt", "_COM¹.txt"),
        ("con .txt", "_con .txt"),
        ("console.txt", "console.txt"),
        ("com10", "com10"),
        ("report. . .", "report"),
        ("x" * 300 + ".pdf", "x" * 116 + ".pdf"),
        ("é" * 300 + ".pdf", "é" * 98 + ".pdf"),  # 200 bytes of UTF-8: a Linux name fits 255
        ("a" * 115 + " " * 100 + ".pdf", "a" * 115 + ".pdf"),
    ],
)
def test_safe_names_avoid_device_names_and_keep_the_extension_when_shortened(display, expected):
    assert expected == safe_name(display, 0)
    assert expected == safe_name(expected, 0)  # the save path applies it again: no change
