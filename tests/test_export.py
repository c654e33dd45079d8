"""`desk export` as a process on ingested mail: each format parsed back by its standard reader
(json, csv, mailbox.mbox) equals what the database holds; files are owner-only and an
existing one is never replaced without --force."""

from __future__ import annotations

import csv
import json
import mailbox
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from db.core.connect import open_db
from db.tickets import tickets
from tests.conftest import drop, mail, write_config_file

DESK = Path(sys.executable).with_name("desk")
# A body that mbox quoting must survive: a From_ look-alike, one already quoted, and CJK text.
TRICKY = "Hello,\nFrom the start the export failed.\n>From a quoted line\n打印机坏了\n"


@pytest.fixture(scope="module")
def desk_config(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("export")
    config = write_config_file(folder)
    drop(folder, "technical", mail("Printer jam", TRICKY, message_id="<jam@example.com>"))
    drop(folder, "sales", mail("Invoice 7", "Wrong amount.", to="sales@valuit.com"))
    reply = mail(
        "Re: Printer jam",
        "From my side: still jammed.",
        message_id="<jam2@example.com>",
        headers={"In-Reply-To": "<jam@example.com>"},
    )
    drop(folder, "technical", reply)
    subprocess.run(
        [sys.executable, "-m", "ingest.daemon", "--config", str(config), "--once"],
        check=True,
        timeout=120,
        capture_output=True,
    )
    return config


@pytest.fixture(scope="module")
def db(desk_config):
    database = open_db(desk_config.parent / "desk.db")
    yield database
    database.close()


def desk(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DESK), "--config", str(config), *args], capture_output=True, text=True, timeout=120
    )


def export(config: Path, path: Path, *args: str) -> Path:
    result = desk(config, "export", *args, "--output", str(path))
    assert 0 == result.returncode, result.stderr
    assert 0o600 == stat.S_IMODE(path.stat().st_mode)
    return path


def test_json_lines_hold_each_ticket_with_its_thread(desk_config, db, tmp_path):
    path = export(desk_config, tmp_path / "all.jsonl", "--format", "json")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [1, 2] == [t["id"] for t in lines]
    for ticket in lines:
        stored = tickets.get(db, ticket["id"])
        assert stored["subject"] == ticket["subject"]
        assert stored["functions"] == ticket["functions"]
        assert tickets.thread(db, ticket["id"]) == ticket["messages"]
    jam = next(t for t in lines if t["subject"] == "Printer jam")
    assert [TRICKY, "From my side: still jammed.\n"] == [m["body_text"] for m in jam["messages"]]


def test_a_query_picks_the_tickets(desk_config, tmp_path):
    path = export(desk_config, tmp_path / "sales.jsonl", "fn:sales", "--format", "json")
    assert ["Invoice 7"] == [json.loads(x)["subject"] for x in path.read_text().splitlines()]


def test_csv_has_a_row_per_ticket(desk_config, db, tmp_path):
    path = export(desk_config, tmp_path / "all.csv", "--format", "csv")
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert ["1", "2"] == [r["id"] for r in rows]
    for row in rows:
        stored = tickets.get(db, int(row["id"]))
        assert stored["subject"] == row["subject"]
        assert stored["requester_addr"] == row["requester_addr"]
        assert ",".join(stored["functions"]) == row["functions"]
        assert str(stored["message_count"]) == row["message_count"]
        assert stored["last_message_at"] == row["last_message_at"]


def test_mbox_gives_back_the_raw_messages(desk_config, db, tmp_path):
    path = export(desk_config, tmp_path / "all.mbox", "--format", "mbox")
    assert b"\n>From the start" in path.read_bytes()  # mboxrd quoting on disk
    box = mailbox.mbox(path, create=False)
    # mailbox.mbox does not undo mboxrd quoting: take one '>' off a quoted From_ line.
    read = [re.sub(rb"(?m)^>(>*From )", rb"\1", m.as_bytes()) for m in box]
    box.close()
    stored = [
        raw
        for (raw,) in db.execute(
            "SELECT r.raw FROM message m JOIN raw_message r ON r.message_id = m.id "
            "ORDER BY m.ticket_id, m.received_at, m.id"
        )
    ]
    assert 3 == len(stored)
    assert [r if r.endswith(b"\n") else r + b"\n" for r in stored] == read


def test_an_existing_file_is_kept_unless_forced(desk_config, tmp_path):
    path = tmp_path / "kept.csv"
    path.write_text("mine\n")
    result = desk(desk_config, "export", "--format", "csv", "--output", str(path))
    assert 2 == result.returncode
    assert f"desk: {path} already exists: choose another path, or pass --force.\n" == (
        result.stderr
    )
    assert "mine\n" == path.read_text()
    export(desk_config, path, "--format", "csv", "--force")
    assert path.read_text().startswith("id,status,")
    assert [path] == list(tmp_path.iterdir())  # no partial file left behind
