"""The search indexes filled a batch at a time by the store: what was stored is found in both
indexes the moment its batch commits, an edit or a delete keeps them right, and a database
made by the previous schema (indexed by triggers) moves over without losing what it found."""

from __future__ import annotations

from db.core import config as config_module
from db.core import migrations
from db.core.connect import open_db
from db.mailin.model import Delivery
from db.mailin.store import store_batch
from db.tickets import search, tickets
from ingest.parse import parse
from tests.conftest import mail, write_config_file

CHINESE = "您好，我们的打印机今天早上突然坏了，请尽快派人来修理。"


def subjects(db, text: str) -> list[str]:
    where = search.where(search.parse(text, "maria"), None, db)
    return sorted(row["subject"] for row in tickets.page(db, *where, "newest", 0, 100))


def store(db, *raws: bytes, mail_out=None) -> list[int]:
    pairs = [(msg, Delivery("src", msg.sha256, ("technical",))) for msg in map(parse, raws)]
    return [stored.message_id for stored in store_batch(db, pairs, mail=mail_out)]


def check_indexes(db) -> None:
    """FTS5's own checks, raising if an index does not match `message`: the word index holds
    every message, the trigram index exactly those its delete trigger's GLOB would take out."""
    db.execute("INSERT INTO message_fts (message_fts, rank) VALUES ('integrity-check', 1)")
    db.execute("INSERT INTO message_trigram (message_trigram) VALUES ('integrity-check')")
    indexed = [row[0] for row in db.execute("SELECT id FROM message_trigram_docsize ORDER BY id")]
    glob = f"{migrations._unsegmented('message')} ORDER BY id"
    assert [row[0] for row in db.execute(f"SELECT id FROM message WHERE {glob}")] == indexed


def test_a_batch_is_found_by_another_connection_once_committed(tmp_path):
    db = open_db(tmp_path / "desk.db")
    store(
        db,
        mail("Printer jam", "The printer in room 4 jams."),
        mail("Question", CHINESE),
        mail("Invoice", "The total is wrong.", sender="Bob Brown <bob@example.com>"),
    )
    reader = open_db(tmp_path / "desk.db")
    assert ["Printer jam"] == subjects(reader, "jams")
    assert ["Question"] == subjects(reader, "打印机")
    assert ["Invoice"] == subjects(reader, "from:bob@example.com")
    check_indexes(reader)


def test_a_nul_hides_the_rest_of_the_text_from_the_trigram_test_as_it_does_from_sqlite(tmp_path):
    # SQLite's GLOB, which the delete trigger asks, reads text up to its first NUL; had the
    # store put this message in the trigram index, deleting it would leave the index corrupt.
    db = open_db(tmp_path / "desk.db")
    (nul,) = store(db, mail("Zero", "abc\x00" + CHINESE))
    store(db, mail("Kept", CHINESE))
    assert ["Kept"] == subjects(db, "打印机")
    with db.conn:
        db.execute("DELETE FROM attachment WHERE message_id = ?", [nul])
        db.execute("DELETE FROM raw_message WHERE message_id = ?", [nul])
        db.execute("DELETE FROM message_location WHERE message_id = ?", [nul])
        db.execute("DELETE FROM message WHERE id = ?", [nul])
    check_indexes(db)


def test_a_database_of_the_previous_schema_moves_over_and_stays_right(tmp_path, monkeypatch):
    path = tmp_path / "desk.db"
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:-1])
    db = open_db(path)
    # The previous schema's row triggers index these; the store of today would index them again.
    for sha, subject, body in (("a", "Old printer", "The old printer jams."), ("b", "旧", CHINESE)):
        db.execute(
            "INSERT INTO message (sha256, size, function, source, received_at, ingested_at, "
            "subject, body_text, ticket_id) VALUES (?, 1, 'technical', 's', '2026-01-01', "
            "'2026-01-01', ?, ?, (SELECT max(id) FROM ticket))",
            [sha, subject, body],
        )
    db.conn.commit()
    db.close()
    monkeypatch.undo()

    db = open_db(path)
    assert len(migrations.MIGRATIONS) == migrations.version(db)
    triggers = {
        row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
    }
    assert {"message_ad", "message_au", "message_trigram_ad", "message_trigram_au"} == triggers
    old_ids = [row[0] for row in db.execute("SELECT id FROM message ORDER BY id")]
    new_ids = store(db, mail("New printer", "The new printer jams too."), mail("新", CHINESE))

    def found(expression: str, table: str = "message_fts") -> list[int]:
        return [
            row[0]
            for row in db.execute(
                f"SELECT rowid FROM {table} WHERE {table} MATCH ? ORDER BY rowid", [expression]
            )
        ]

    assert [*old_ids[:1], *new_ids[:1]] == found("jams")
    assert [old_ids[1], new_ids[1]] == found('"打印机"', "message_trigram")
    with db.conn:  # what `desk-ingest --reparse` and a merge do to a stored message
        db.execute(
            "UPDATE message SET body_text = 'The old copier smokes.' WHERE id = ?", [old_ids[0]]
        )
        db.execute("UPDATE message SET body_text = 'Fixed.' WHERE id = ?", [old_ids[1]])
        db.execute(
            "UPDATE message SET ticket_id = NULL, read_at = '2026-02-01' WHERE id = ?", [new_ids[0]]
        )
    assert [new_ids[0]] == found("jams")
    assert [old_ids[0]] == found("smokes")
    assert [new_ids[1]] == found('"打印机"', "message_trigram")
    with db.conn:
        for message_id in (old_ids[0], new_ids[1]):
            db.execute("DELETE FROM message_location WHERE message_id = ?", [message_id])
            db.execute("DELETE FROM raw_message WHERE message_id = ?", [message_id])
            db.execute("DELETE FROM attachment WHERE message_id = ?", [message_id])
            db.execute("DELETE FROM message WHERE id = ?", [message_id])
    assert ([], []) == (found("smokes"), found('"打印机"', "message_trigram"))
    check_indexes(db)


def test_the_acknowledgement_a_batch_queues_is_indexed_too(tmp_path):
    extra = '[functions.technical]\nacknowledge = true\nresponse_time = "within 4 hours"\n'
    config = config_module.load(write_config_file(tmp_path, extra=extra))
    db = open_db(config.database)
    store(db, mail("Export fails", "The export stops half-way."), mail_out=config.mail)
    (ack,) = db.execute("SELECT id FROM message WHERE direction = 'out'").fetchone()
    found = db.execute("SELECT rowid FROM message_fts WHERE message_fts MATCH 'hours'")
    assert [ack] == [row[0] for row in found]
    check_indexes(db)


def test_mail_an_older_daemon_stored_unindexed_is_indexed_when_desk_ingest_starts(
    tmp_path, monkeypatch
):
    # A `desk` command upgraded the schema (the insert triggers went) while the older
    # desk-ingest, which relied on them, kept storing: its mail reached no index.
    import subprocess
    import sys

    from db.mailin import search_index

    config = write_config_file(tmp_path, ("technical",))
    db = open_db(tmp_path / "desk.db")
    store(db, mail("Indexed", "The printer jams."))
    with monkeypatch.context() as older:
        older.setattr(search_index, "add", lambda db, messages: None)
        store(db, mail("Missed", "The scanner jams."), mail("Missed too", CHINESE))
    assert ["Indexed"] == subjects(db, "jams")
    db.close()

    daemon = [sys.executable, "-m", "ingest.daemon", "--config", str(config), "--once"]
    assert 0 == subprocess.run(daemon, timeout=120).returncode
    db = open_db(tmp_path / "desk.db")
    assert ["Indexed", "Missed"] == subjects(db, "jams")
    assert ["Missed too"] == subjects(db, "打印机")
    db.execute("UPDATE message SET body_text = body_text || ' again'")  # as --reparse does
    check_indexes(db)
