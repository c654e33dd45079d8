"""Search in any script and from the command line: words inside Chinese and Japanese sentences
found through the trigram index, `desk search` as a process, and the two SQL shapes of free
text (walk the list, or gather the matches) finding the same tickets. Mail is ingested by a
real `desk-ingest --once` from Maildir folders into a real SQLite file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from db.core import migrations
from db.core.config import load
from db.core.connect import open_db
from db.tickets import search, tickets
from tests.conftest import drop, mail, write_config_file
from tests.tui_helpers import until
from tui.app import DeskApp
from tui.widgets.ticket_list import TicketList

DESK = Path(sys.executable).with_name("desk")

MAILS = (
    ("technical", "Question", "您好，我们的打印机今天早上突然坏了，请尽快派人来修理。"),
    ("sales", "Rechnung", "お世話になっております。請求書の金額が間違っているようです。"),
    ("technical", "Printer jam", "The printer in room 4 jams on every second page."),
    ("general", "สอบถาม", "สวัสดีครับ ระบบชำระเงินใช้งานไม่ได้ตั้งแต่เมื่อวาน"),
)


def ingest(config: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "ingest.daemon", "--config", str(config), "--once"],
        check=True,
        timeout=120,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def desk_config(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("scripts")
    config = write_config_file(folder)
    for function, subject, body in MAILS:
        drop(folder, function, mail(subject, body, to=f"{function}@valuit.com"))
    drop(folder, "general", mail("Call", "Please call back.", sender="王小明 <wang@example.com>"))
    ingest(config)
    return config


@pytest.fixture(scope="module")
def db(desk_config):
    database = open_db(desk_config.parent / "desk.db")
    yield database
    database.close()


def subjects(db, text: str, *, with_db: bool = True) -> list[str]:
    where = search.where(search.parse(text, "maria"), None, db if with_db else None)
    return [row["subject"] for row in tickets.page(db, *where, "newest", 0, 100)]


def test_a_chinese_word_inside_a_sentence_is_found(db):
    assert ["Question"] == subjects(db, "打印机")
    assert ["Question"] == subjects(db, "突然坏了")


@pytest.mark.anyio
async def test_the_desk_finds_a_chinese_word_typed_after_slash(desk_config):
    app = DeskApp(load(desk_config))
    async with app.run_test(size=(120, 40)) as pilot:
        listing = app.screen.query_one(TicketList)
        await until(pilot, lambda: listing.loaded and listing.total == 5)
        await pilot.press("slash", *"打印机", "enter")
        await until(pilot, lambda: listing.total == 1 and listing.current is not None)
        assert "Question" == listing.current["subject"]


def test_a_japanese_word_inside_a_sentence_is_found(db):
    assert ["Rechnung"] == subjects(db, "請求書")
    assert ["Rechnung"] == subjects(db, "間違っている fn:sales")
    assert [] == subjects(db, "請求書 fn:technical")


def test_a_thai_word_inside_a_sentence_is_found(db):
    assert ["สอบถาม"] == subjects(db, "ชำระเงิน")


def test_a_chinese_sender_name_is_found(db):
    assert ["Call"] == subjects(db, "王小明")
    assert ["Call"] == subjects(db, "小明")


def test_one_or_two_characters_are_looked_for_among_the_newest_messages(db):
    assert ["Rechnung"] == subjects(db, "金額")
    assert ["Question"] == subjects(db, "修理")
    assert "金額 is looked for in the newest" in search.parse("金額").problems[0]


def test_latin_words_still_go_through_the_word_index(db):
    assert ["Printer jam"] == subjects(db, "jams")
    assert ["Printer jam"] == subjects(db, "print")  # the last word is a prefix while typing
    assert [] == subjects(db, "rinter")  # a Latin word is matched from its start, not inside


def test_walking_the_list_and_gathering_the_matches_agree(db, monkeypatch):
    monkeypatch.setattr(search, "DENSE", 1)  # every match set counts as common: walk the list
    for text in ("printer", "打印机", "請求書 fn:sales", "page status:new", "nothing-like-it"):
        assert subjects(db, text, with_db=False) == subjects(db, text), text


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=30), st.booleans())
@example('打\x00印机 %_\\ "', True)
@example("\x00", True)
@example('金"', False)
def test_no_text_in_any_script_raises_in_either_shape(db, monkeypatch, text, walk):
    monkeypatch.setattr(search, "DENSE", 1 if walk else search.DENSE)
    assert isinstance(subjects(db, text), list)


def test_the_count_can_stop_at_a_cap(db):
    where = search.where(search.parse(""), None, db)
    assert 5 == tickets.count(db, *where)
    assert 2 == tickets.count(db, *where, cap=2)
    rows, found = tickets.first_page(db, *where, "newest", 1, 3)
    assert (1, 3) == (len(rows), found)


def test_an_older_database_gets_its_trigram_index_filled(tmp_path):
    config = write_config_file(tmp_path)
    drop(tmp_path, "sales", mail("Rechnung", MAILS[1][2], to="sales@valuit.com"))
    ingest(config)
    db = open_db(tmp_path / "desk.db")
    # Mail stored before the trigram index existed: the upgrade's step fills it from the mail.
    for name in ("message_trigram_ad", "message_trigram_au"):
        db.execute(f"DROP TRIGGER {name}")
    db.execute("DROP TABLE message_trigram")
    with db.conn:
        migrations._v8_search_trigram(db)
        db.execute("DROP TRIGGER message_trigram_ai")  # as the later `_v14_search_per_batch` does
    assert ["Rechnung"] == subjects(db, "請求書")
    db.close()


def desk(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DESK), "--config", str(config), *args], capture_output=True, text=True, timeout=120
    )


def test_desk_search_prints_the_list_and_the_count(desk_config):
    result = desk(desk_config, "search", "打印机")
    assert 0 == result.returncode, result.stderr
    lines = result.stdout.splitlines()
    assert 2 == len(lines)
    assert lines[0].startswith("#")
    assert ["new", "technical", "ann@example.com", "Question"] == lines[0].split()[1:5]
    assert "1 ticket" == lines[1]
    assert "0 tickets" == desk(desk_config, "search", "fn:sales", "打印机").stdout.strip()


def test_desk_search_json_reads_the_query_as_the_desk_does(desk_config):
    result = desk(desk_config, "search", "printer status:bogus", "--json")
    assert 0 == result.returncode, result.stderr
    data = json.loads(result.stdout)
    assert (1, False) == (data["count"], data["more"])
    assert ["Printer jam"] == [t["subject"] for t in data["tickets"]]
    assert "status:bogus ignored" in data["problems"][0]
    assert "status:bogus ignored" in result.stderr


def _characters_around_each_range() -> list[str]:
    """Each range's ends of `migrations.UNSEGMENTED` and the characters just outside them."""
    pattern = migrations.UNSEGMENTED.pattern.strip("[]")
    ends = [ord(c) for c in pattern if c != "-"]
    return [chr(c + step) for c in ends for step in (-1, 0, 1)]


def test_the_trigram_index_takes_exactly_the_scripts_search_asks_it_for(tmp_path):
    db = open_db(tmp_path / "desk.db")
    for character in _characters_around_each_range():
        text = f"abc {character} xyz"
        (indexed,) = db.execute("SELECT ? GLOB ?", [text, migrations._UNSEGMENTED_GLOB]).fetchone()
        assert bool(indexed) == bool(migrations.UNSEGMENTED.search(text)), hex(ord(character))
        assert bool(indexed) == migrations.unsegmented(text), hex(ord(character))
    db.close()


def test_an_edited_message_is_found_by_what_it_says_now(tmp_path):
    config = write_config_file(tmp_path)
    drop(tmp_path, "sales", mail("Rechnung", "The invoice total is wrong.", to="sales@valuit.com"))
    ingest(config)
    db = open_db(tmp_path / "desk.db")
    assert [] == subjects(db, "請求書")
    # What a newer parser reading the mail again does: rewrite the text columns.
    db.execute("UPDATE message SET body_text = ?", [MAILS[1][2]])
    assert ["Rechnung"] == subjects(db, "請求書")
    db.execute("UPDATE message SET body_text = 'The invoice total is wrong.'")
    assert [] == subjects(db, "請求書")
    # An index told to forget what it was never given would be corrupt; this raises then.
    db.execute("INSERT INTO message_trigram (message_trigram) VALUES ('integrity-check')")
    db.close()
