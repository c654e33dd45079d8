"""The drop-folder source and the daemon around it, run for real on files and a SQLite file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from db.core.connect import open_db
from db.mailin import sources
from ingest import daemon, maildir
from tests.conftest import build_config, drop, mail, write_config_file


def count(db, sql: str) -> int:
    return db.execute(sql).fetchone()[0]


def test_once_ingests_every_file_and_marks_it_done(tmp_path, cfg):
    for fn in ("technical", "sales"):
        drop(tmp_path, fn, mail(subject=f"{fn} question"))
    drop(tmp_path, "technical", b"\x00 not mail at all")
    daemon.run(cfg, once=True)
    db = open_db(cfg.database)
    assert 3 == count(db, "SELECT count(*) FROM message")
    assert 1 == count(db, "SELECT count(*) FROM ticket WHERE unparsed = 1")
    for fn in ("technical", "sales"):
        assert [] == os.listdir(tmp_path / "spool" / fn / "new")
        assert all(n.endswith(":2,S") for n in os.listdir(tmp_path / "spool" / fn / "cur"))


def test_two_files_with_the_same_bytes_are_one_message(tmp_path, cfg):
    raw = mail()
    drop(tmp_path, "technical", raw)
    drop(tmp_path, "technical", raw)
    daemon.run(cfg, once=True)
    db = open_db(cfg.database)
    assert (1, 1) == (
        count(db, "SELECT count(*) FROM message"),
        count(db, "SELECT count(*) FROM ticket"),
    )


def test_a_file_committed_but_not_yet_marked_is_not_stored_twice(tmp_path, cfg):
    path = drop(tmp_path, "technical", mail())
    daemon.run(cfg, once=True)
    # As if the daemon died between commit and rename: the file is back in new/.
    marked = next((tmp_path / "spool" / "technical" / "cur").iterdir())
    marked.rename(path)
    daemon.run(cfg, once=True)
    assert 1 == count(open_db(cfg.database), "SELECT count(*) FROM message")


def test_a_plain_folder_of_eml_files_works_too(tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "one.eml").write_bytes(mail(subject="plain one"))
    (folder / "two.eml").write_bytes(mail(subject="plain two"))
    config = build_config(
        tmp_path, {"source": [{"function": "general", "kind": "maildir", "path": str(folder)}]}
    )
    daemon.run(config, once=True)
    assert 2 == count(open_db(config.database), "SELECT count(*) FROM message")
    assert ["one.eml", "two.eml"] == sorted(os.listdir(folder / "done"))


def test_watching_picks_up_new_mail_and_stops_cleanly(tmp_path, cfg):
    stop = threading.Event()
    runner = threading.Thread(target=daemon.run, args=(cfg,), kwargs={"once": False, "stop": stop})
    runner.start()
    try:
        db = open_db(cfg.database)
        deadline = time.monotonic() + 30
        while (sources.get(db, "marketing-maildir") or {}).get("state") != "watching":
            assert time.monotonic() < deadline, "the source never started watching"
            time.sleep(0.02)
        drop(tmp_path, "marketing", mail(subject="Partnership?"))
        # Normally within a second; a file landing just before the watch is registered waits
        # for the periodic rescan, which makes this slow, not wrong.
        deadline = time.monotonic() + maildir.RESCAN_SECONDS + 5
        while count(db, "SELECT count(*) FROM ticket") < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ("Partnership?", "marketing") == tuple(
            db.execute("SELECT subject, function FROM ticket").fetchone()
        )
    finally:
        stop.set()
        runner.join(timeout=10)
    assert not runner.is_alive()


def test_attachments_are_stored_and_their_names_never_written_as_paths(tmp_path, cfg):
    raw = (
        b"From: a@example.com\r\nSubject: files\r\nContent-Type: multipart/mixed; boundary=b\r\n"
        b"\r\n--b\r\nContent-Type: text/plain\r\n\r\nattached\r\n--b\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="../../escape.sh"\r\n\r\nrm -rf /\r\n--b--\r\n'
    )
    drop(tmp_path, "technical", raw)
    before = set(tmp_path.rglob("*"))
    daemon.run(cfg, once=True)
    db = open_db(cfg.database)
    row = db.execute("SELECT display_name, safe_name, data FROM attachment").fetchone()
    assert ("../../escape.sh", "escape.sh", b"rm -rf /") == tuple(row)
    created = {p.name for p in set(tmp_path.rglob("*")) - before}
    assert "escape.sh" not in created and not (tmp_path.parent / "escape.sh").exists()


def test_sigterm_commits_and_exits_zero(tmp_path):
    config_path = write_config_file(tmp_path, functions=("general",))
    for i in range(50):
        drop(tmp_path, "general", mail(subject=f"question {i}"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest.daemon", "--config", str(config_path)],
        stderr=subprocess.PIPE,
        text=True,
    )
    db = open_db(tmp_path / "desk.db")
    deadline = time.monotonic() + 20
    while count(db, "SELECT count(*) FROM message") < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert 0 == proc.returncode, err
    assert "stopped" in err
    # Whatever it had stored is marked done, and nothing marked done went unstored.
    done = os.listdir(tmp_path / "spool" / "general" / "cur")
    left = os.listdir(tmp_path / "spool" / "general" / "new")
    assert (len(done), 50) == (count(db, "SELECT count(*) FROM message"), len(done) + len(left))


def test_a_bad_config_is_one_line_naming_file_and_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[database]\npath = "x.db"\n[[source]]\nfunction = "billing"\nkind = "maildir"\n'
        'path = "spool"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "ingest.daemon", "--config", str(bad), "--once"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert 2 == result.returncode
    lines = result.stderr.strip().splitlines()
    assert 1 == len(lines)
    assert str(bad) in lines[0] and "source[0].function" in lines[0] and "'billing'" in lines[0]


def test_a_folder_larger_than_one_slice_is_read_in_slices_each_file_once(
    tmp_path, cfg, monkeypatch
):
    # Slices of 3 over 10 files, one of them skipped after failing GIVE_UP_AFTER times: it
    # stays in new/ and is not listed again in the same pass, which ends.
    monkeypatch.setattr(maildir, "SLICE", 3)
    paths = [
        drop(tmp_path, "technical", mail(subject=f"question {i}", message_id=f"<q{i}@example.com>"))
        for i in range(10)
    ]
    db = open_db(cfg.database)
    sources.register(db, "technical-maildir", "maildir", "technical")
    for _ in range(sources.GIVE_UP_AFTER):
        sources.record_failure(db, "technical-maildir", paths[4].name, "failed before")
    daemon.run(cfg, once=True)
    assert 9 == count(db, "SELECT count(*) FROM message")
    assert [paths[4].name] == os.listdir(tmp_path / "spool" / "technical" / "new")
    assert 9 == len(os.listdir(tmp_path / "spool" / "technical" / "cur"))
