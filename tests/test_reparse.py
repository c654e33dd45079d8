"""Healing what is stored: `desk-ingest --reparse`, the daemon's background healing, and the
desk's key that asks for one message to be read again.

An older parser is simulated the way it would have stored mail: today's parse of the bytes with
some fields read wrong, stored through the real store (so the ticket it opened repeats them),
with `parser_version` 0.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from db.core.connect import open_db
from db.mailin import reparse as db_reparse
from db.mailin.model import Delivery, Incoming
from db.mailin.store import store_batch
from db.tickets import tickets
from ingest import daemon
from ingest.demo import generate
from ingest.parse import PARSER_VERSION, parse
from tests.conftest import drop, mail, write_config_file

ENCODED = "=?utf-8?q?Fee_=E2=82=AC_5?="
GOOGLE_GROUP = Path(__file__).parent / "fixtures/field-mail/02-google-group-precedence-list.eml"


def old(raw: bytes, **wrong: object) -> Incoming:
    """What an older parser made of `raw`: today's reading with `wrong` fields, version 0."""
    msg = parse(raw)
    for name, value in wrong.items():
        setattr(msg, name, value)
    msg.parser_version = 0
    return msg


def store(db, msg: Incoming, key: str = "k1") -> int:
    (stored,) = store_batch(db, [(msg, Delivery("technical-maildir", key, ("technical",)))])
    return stored.message_id


def reparse(tmp_path: Path, *args: str) -> str:
    """Run `desk-ingest --reparse ARGS` as the command line does; its standard output."""
    out = subprocess.run(
        [sys.executable, "-m", "ingest.daemon", "--config", str(tmp_path / "config.toml")]
        + ["--reparse", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout


def ingest_once(config_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "ingest.daemon", "--config", str(config_path), "--once"],
        check=True,
        timeout=300,
    )


def row(db, sql: str, params: list[object] | None = None) -> tuple:
    return tuple(db.execute(sql, params or []).fetchone())


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config_file(tmp_path)


def fee_mail() -> bytes:
    return mail(
        subject="Fee € 5",
        body="Please explain the fee.",
        sender="Jane Smith <jane.smith@example.com>",
        message_id="<fee@example.com>",
    )


def test_reparse_heals_the_message_and_its_ticket_and_leaves_the_agents_work(tmp_path, config_path):
    db = open_db(tmp_path / "desk.db")
    store(db, old(fee_mail(), subject=ENCODED, from_addr="smith", from_name="", body_text=""))
    version = tickets.get(db, 1)["version"]
    tickets.update(db, 1, version, "maria", status="open", assignee="maria", tags=["vip"])
    tickets.add_note(db, 1, "maria", "called her")
    before = tickets.get(db, 1)

    out = reparse(tmp_path)

    assert [
        f"#1 msg 1: subject '{ENCODED}' -> 'Fee € 5'; from 'smith' -> 'jane.smith@example.com'; "
        "name '' -> 'Jane Smith'; body '' -> 'Please explain the fee.'; "
        f"ticket requester 'smith' -> 'jane.smith@example.com'; ticket requester name '' -> "
        f"'Jane Smith'; ticket subject '{ENCODED}' -> 'Fee € 5'",
        "read 1 message(s) again: 1 changed",
    ] == out.splitlines()
    today = parse(fee_mail())
    assert ("Fee € 5", "jane.smith@example.com", "Jane Smith", today.body_text) == row(
        db, "SELECT subject, from_addr, from_name, body_text FROM message WHERE id = 1"
    )
    assert (PARSER_VERSION,) == row(db, "SELECT parser_version FROM message WHERE id = 1")
    after = tickets.get(db, 1)
    assert ("Fee € 5", "jane.smith@example.com", "Jane Smith") == (
        after["subject"],
        after["requester_addr"],
        after["requester_name"],
    )
    kept = ("id", "status", "assignee", "priority", "tags", "kind", "created_at", "updated_at")
    assert {k: before[k] for k in kept} == {k: after[k] for k in kept}
    trail = [(e["actor"], e["action"]) for e in tickets.events(db, 1)]
    assert ("maria", "note") in trail and ("desk-ingest", "reparsed") == trail[-1]
    # The search index follows the message.
    assert (1,) == row(db, "SELECT rowid FROM message_fts WHERE message_fts MATCH 'jane'")
    # Her reply with the ticket's token now threads: she takes part in the ticket.
    reply = mail(subject="Re: [#1] Fee € 5", sender="jane.smith@example.com")
    (stored,) = store_batch(
        db, [(parse(reply), Delivery("technical-maildir", "k2", ("technical",)))]
    )
    assert 1 == stored.ticket_id
    version = tickets.get(db, 1)["version"]

    # Idempotent: nothing left for the default, and reading everything again changes nothing.
    assert ["read 0 message(s) again: 0 changed"] == reparse(tmp_path).splitlines()
    assert ["read 2 message(s) again: 0 changed"] == reparse(tmp_path, "--all").splitlines()
    assert version == tickets.get(db, 1)["version"]


def test_what_an_agent_made_of_the_ticket_stays(tmp_path, config_path):
    db = open_db(tmp_path / "desk.db")
    store(db, old(fee_mail(), subject=ENCODED))
    db.execute("UPDATE ticket SET subject = 'Fee question (renamed)' WHERE id = 1")
    db.conn.commit()

    reparse(tmp_path)

    assert "Fee question (renamed)" == tickets.get(db, 1)["subject"]
    assert ("Fee € 5",) == row(db, "SELECT subject FROM message WHERE id = 1")


def test_a_message_an_older_parser_could_not_read_loses_its_unparsed_mark(tmp_path, config_path):
    db = open_db(tmp_path / "desk.db")
    store(db, old(fee_mail(), parse_error="RecursionError: too deep"))
    assert 1 == tickets.get(db, 1)["unparsed"]

    out = reparse(tmp_path, "--unparsed")

    assert [
        "#1 msg 1: parse error 'RecursionError: too deep' -> none; ticket unparsed 1 -> 0",
        "read 1 message(s) again: 1 changed",
    ] == out.splitlines()
    assert 0 == tickets.get(db, 1)["unparsed"]


def test_a_persons_mail_taken_for_an_auto_reply_gets_its_ticket(tmp_path, config_path):
    db = open_db(tmp_path / "desk.db")
    store(db, old(fee_mail(), kind="auto-reply"))
    assert (None, "no-ticket") == row(db, "SELECT ticket_id, thread_rule FROM message")
    assert (0,) == row(db, "SELECT count(*) FROM ticket")

    out = reparse(tmp_path)

    assert [
        "msg 1: kind auto-reply -> person (ticket #1 opened)",
        "read 1 message(s) again: 1 changed, 1 ticket(s) opened",
    ] == out.splitlines()
    assert (1, "new", "", "") == row(db, "SELECT ticket_id, thread_rule, kind, auto FROM message")
    ticket = tickets.get(db, 1)
    assert ("jane.smith@example.com", "Fee € 5", "new", ["technical"]) == (
        ticket["requester_addr"],
        ticket["subject"],
        ticket["status"],
        ticket["functions"],
    )
    assert ["created"] == [e["action"] for e in tickets.events(db, 1)]
    assert ["read 1 message(s) again: 0 changed"] == reparse(tmp_path, "--all").splitlines()


def test_a_message_in_a_ticket_stays_and_a_different_thread_is_reported(tmp_path, config_path):
    db = open_db(tmp_path / "desk.db")
    store(db, parse(mail(subject="Login fails", message_id="<a@example.com>")), "k1")
    # An older parser read a Message-ID inside a forwarded mail as this one's In-Reply-To.
    other = mail(subject="My deposit", sender="bob@example.org", message_id="<b@example.org>")
    store(db, old(other, in_reply_to="<a@example.com>"), "k2")
    assert (1, "in-reply-to") == row(db, "SELECT ticket_id, thread_rule FROM message WHERE id = 2")

    out = reparse(tmp_path)

    assert [
        "#1 msg 2: in-reply-to '<a@example.com>' -> none; today's threading says a new ticket, "
        "left in #1",
        "read 1 message(s) again: 1 changed, 1 would thread elsewhere today (left where they are)",
    ] == out.splitlines()
    assert (1, "in-reply-to") == row(db, "SELECT ticket_id, thread_rule FROM message WHERE id = 2")
    assert (1,) == row(db, "SELECT count(*) FROM ticket")


def test_since_unparsed_and_dry_run_select_and_change_nothing(tmp_path, config_path, monkeypatch):
    db = open_db(tmp_path / "desk.db")
    monkeypatch.setenv("DESK_NOW", "2026-11-01T10:00:00Z")
    store(db, old(mail(subject="early"), body_text=""), "k1")
    monkeypatch.setenv("DESK_NOW", "2026-11-20T10:00:00Z")
    store(db, parse(mail(subject="late")), "k2")
    store(db, parse(b"\x00 not mail at all"), "k3")
    monkeypatch.delenv("DESK_NOW")

    def read(*args: str) -> tuple[int, list[int]]:
        result = json.loads(reparse(tmp_path, "--dry-run", "--json", *args))
        return result["summary"]["read"], [c["message"] for c in result["changes"]]

    assert (1, [1]) == read()  # the default: what an older version read
    assert (3, [1]) == read("--all")
    assert (1, []) == read("--unparsed")
    assert (2, []) == read("--since", "2026-11-10")
    # A dry run wrote nothing.
    assert (0, "") == row(db, "SELECT parser_version, body_text FROM message WHERE id = 1")
    assert ["read 1 message(s) again: 1 changed"] == reparse(tmp_path).splitlines()[-1:]


def test_the_daemon_heals_older_messages_in_the_background_and_on_request(tmp_path, config_path):
    drop(tmp_path, "technical", fee_mail())
    ingest_once(config_path)
    db = open_db(tmp_path / "desk.db")
    db.execute("UPDATE message SET from_addr = 'smith', body_text = '', parser_version = 0")
    db.conn.commit()

    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest.daemon", "--config", str(config_path)],
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        healed = ("jane.smith@example.com", parse(fee_mail()).body_text, PARSER_VERSION)
        query = "SELECT from_addr, body_text, parser_version FROM message"
        wait_for(lambda: healed == row(db, query))
        # The desk's key: the daemon reads the message again within about a second.
        db.execute("UPDATE message SET from_addr = 'smith'")
        db.conn.commit()
        db_reparse.request(db, 1)
        wait_for(lambda: healed == row(db, query), timeout=30)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert 0 == proc.returncode, err
    assert "healed what older parsers stored: read 1 message(s) again: 1 changed" in err
    assert "read again on request: #1 msg 1: from 'smith' -> 'jane.smith@example.com'" in err


def test_desk_ingest_once_reads_again_what_an_agent_asked_for(tmp_path, config_path):
    drop(tmp_path, "technical", fee_mail())
    ingest_once(config_path)
    db = open_db(tmp_path / "desk.db")
    db.execute("UPDATE message SET from_addr = 'smith'")
    db.conn.commit()
    db_reparse.request(db, 1)

    ingest_once(config_path)

    assert ("jane.smith@example.com", PARSER_VERSION) == row(
        db, "SELECT from_addr, parser_version FROM message"
    )


def test_kill_9_mid_reparse_leaves_every_message_once(tmp_path, config_path):
    for function, raw in generate(1000, seed=5):
        drop(tmp_path, function, raw)
    ingest_once(config_path)
    db = open_db(tmp_path / "desk.db")
    db.execute("UPDATE message SET body_text = '', parser_version = 0 WHERE direction = 'in'")
    db.execute("DELETE FROM attachment")
    db.conn.commit()
    expected = {
        sha: (parse(raw).body_text, len(parse(raw).attachments))
        for sha, raw in db.execute(
            "SELECT m.sha256, r.raw FROM message m JOIN raw_message r ON r.message_id = m.id "
            "WHERE m.direction = 'in'"
        )
    }
    healed = f"SELECT count(*) FROM message WHERE parser_version = {PARSER_VERSION}"

    command = [sys.executable, "-m", "ingest.daemon", "--config", str(config_path), "--reparse"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)
    wait_for(lambda: row(db, healed)[0] > 0 or proc.poll() is not None)
    assert proc.poll() is None, "the re-read finished before it could be killed; raise the count"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 0 < row(db, healed)[0] < len(expected)
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True, timeout=300)

    actual = {
        sha: (body, attachments)
        for sha, body, attachments in db.execute(
            "SELECT m.sha256, m.body_text, (SELECT count(*) FROM attachment a "
            "WHERE a.message_id = m.id) FROM message m WHERE m.direction = 'in'"
        )
    }
    assert expected == actual
    assert (len(expected),) == row(db, "SELECT count(*) FROM message WHERE direction = 'in'")
    assert (len(expected),) == row(db, healed)
    assert ("ok",) == row(db, "PRAGMA integrity_check")
    db.execute("INSERT INTO message_fts (message_fts) VALUES ('integrity-check')")


@pytest.mark.anyio
async def test_the_desk_key_asks_desk_ingest_and_the_thread_shows_the_new_reading(tmp_path):
    from tests.tui_helpers import build_config, until
    from tui.app import DeskApp
    from tui.screens.ticket import TicketScreen

    config = build_config(tmp_path)
    db = open_db(config.database)
    store(db, parse(fee_mail()))
    db.execute("UPDATE message SET body_text = 'garbled', parser_version = ?", [PARSER_VERSION])
    db.conn.commit()
    stop = threading.Event()
    runner = threading.Thread(
        target=daemon.run, args=(config,), kwargs={"once": False, "stop": stop}
    )
    runner.start()
    try:
        app = DeskApp(config)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.2)
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen.data)
            assert "garbled" == app.screen.data["thread"][0]["body_text"]
            await pilot.press("P")
            await until(
                pilot,
                lambda: (
                    "desk-ingest will read message 1 again"
                    in [n.message for n in app._notifications]
                ),
            )
            await until(
                pilot,
                lambda: parse(fee_mail()).body_text == app.screen.data["thread"][0]["body_text"],
            )
    finally:
        stop.set()
        runner.join()
    assert (PARSER_VERSION,) == row(db, "SELECT parser_version FROM message")


def test_list_mail_once_taken_for_an_auto_reply_opens_a_ticket_marked_via_list(
    tmp_path, config_path
):
    raw = GOOGLE_GROUP.read_bytes()
    db = open_db(tmp_path / "desk.db")
    store(db, old(raw, kind="auto-reply"))
    assert (0,) == row(db, "SELECT count(*) FROM ticket")

    reparse(tmp_path)

    assert ("list", 1) == row(
        db, "SELECT m.kind, t.via_list FROM message m JOIN ticket t ON t.id = m.ticket_id"
    )


def test_a_ticket_follows_its_first_message_into_the_list_mark(tmp_path, config_path):
    raw = GOOGLE_GROUP.read_bytes()
    db = open_db(tmp_path / "desk.db")
    store(db, old(raw, kind=""))
    assert (0,) == row(db, "SELECT via_list FROM ticket")

    reparse(tmp_path)

    assert (1,) == row(db, "SELECT via_list FROM ticket")
