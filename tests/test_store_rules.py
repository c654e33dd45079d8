"""The storing rules of db/mailin/store.py, each asserted so that a one-line slip fails it."""

import json

from db.core import config as config_module
from db.core.connect import open_db, write
from db.mailin import reparse
from db.mailin.model import Delivery
from db.mailin.store import store_batch
from db.mailout import subscribers
from db.tickets import replies
from ingest.parse import parse
from tests.conftest import mail, write_config_file
from tests.test_acks import ACKS
from tests.test_automatic_mail import mdn


def put(db, raw: bytes, config) -> int:
    msg = parse(raw)
    (stored,) = store_batch(
        db, [(msg, Delivery("src", msg.sha256, ("technical",)))], mail=config.mail
    )
    return stored.ticket_id


def test_the_acknowledgement_and_a_reply_are_stored_in_the_thread_as_they_go_out(tmp_path):
    config = config_module.load(write_config_file(tmp_path, extra=ACKS))
    db = open_db(config.database)
    ticket = put(db, mail(sender="ann@example.com", message_id="<q1@example.com>"), config)
    replies.send(db, ticket, "It works again.", "maria", config.mail)
    # The acknowledgement goes with the null sender (RFC 3834 section 3.3), a person's reply
    # from our address, so its bounces come back to us.
    assert [("ack", ""), ("reply", "technical@valuit.com")] == db.execute(
        "SELECT kind, mail_from FROM outbox ORDER BY id"
    ).fetchall()
    # The thread shows each as sent, headers and all.
    (headers,) = db.execute(
        "SELECT headers FROM message WHERE direction = 'out' ORDER BY id LIMIT 1"
    ).fetchone()
    assert "Auto-Submitted: auto-replied" in headers
    queued = db.execute("SELECT action, detail FROM ticket_event WHERE action LIKE '%-queued'")
    assert [
        ("ack-queued", {"outbox": 1, "to": "ann@example.com"}),
        ("reply-queued", {"outbox": 2, "to": "ann@example.com"}),
    ] == [(a, json.loads(d)) for a, d in queued]
    assert [("technical@valuit.com", "Valuit Technical Support")] == db.execute(
        "SELECT DISTINCT from_addr, from_name FROM message WHERE direction = 'out'"
    ).fetchall()


def test_a_message_that_joins_a_ticket_is_on_its_audit_trail_with_the_rule(tmp_path):
    config = config_module.load(write_config_file(tmp_path, extra=ACKS))
    db = open_db(config.database)
    ticket = put(db, mail(sender="ann@example.com", message_id="<q1@example.com>"), config)
    headers = {"In-Reply-To": "<q1@example.com>"}
    assert ticket == put(db, mail(subject="Re: Help", headers=headers), config)
    joined = [
        json.loads(d)
        for (d,) in db.execute("SELECT detail FROM ticket_event WHERE action = 'message'")
    ]
    assert [{"message": 3, "rule": "in-reply-to", "auto": "", "kind": ""}] == joined


def test_an_unsubscribe_request_by_mail_unsubscribes_its_owner_and_opens_no_ticket(tmp_path):
    config = config_module.load(write_config_file(tmp_path, extra=ACKS))
    db = open_db(config.database)
    subscribers.add(db, ["Dana Lee <dana@example.com>"], "olga")
    with write(db):  # as a notice to dana makes it
        (token,) = subscribers._tokens(db, ["dana@example.com"]).values()
    msg = parse(mail(sender="dana@example.com", subject=f"Re: unsubscribe {token}"))
    (stored,) = store_batch(db, [(msg, Delivery("src", "k1", ("general",)))], mail=config.mail)
    assert (None, "unsubscribe") == (stored.ticket_id, stored.rule)
    assert ("mail", "desk-ingest") == db.execute(
        "SELECT left_via, left_by FROM unsubscribe WHERE addr = 'dana@example.com'"
    ).fetchone()


def test_reading_a_stored_message_again_writes_the_columns_a_newer_parser_reads(tmp_path):
    config = config_module.load(write_config_file(tmp_path, extra=ACKS))
    db = open_db(config.database)
    put(db, mail(sender="ann@example.com", body="Balance wrong"), config)
    db.execute("UPDATE message SET from_addr = 'smith', body_html = 'old' WHERE id = 1")
    db.conn.commit()
    (raw,) = db.execute("SELECT raw FROM raw_message WHERE message_id = 1").fetchone()
    (change,) = reparse.heal(db, [(1, parse(raw))])
    assert {"from_addr": ("smith", "ann@example.com"), "body_html": ("old", "")} == change.message


def test_a_read_receipt_without_a_date_marks_our_mail_read_when_it_came(tmp_path, monkeypatch):
    monkeypatch.setenv("DESK_NOW", "2026-06-01T10:00:00Z")
    config = config_module.load(write_config_file(tmp_path, extra=ACKS))
    db = open_db(config.database)
    ticket = put(db, mail(sender="ann@example.com"), config)
    replies.send(db, ticket, "It works again.", "maria", config.mail)
    (ours,) = db.execute("SELECT message_id FROM message WHERE outbox_id = 2").fetchone()
    receipt = mdn(ours).replace(b"Date: Fri, 20 Nov 2026 10:00:00 +0000\r\n", b"")
    put(db, receipt, config)
    assert ("2026-06-01T10:00:00.000Z",) == db.execute(
        "SELECT read_at FROM message WHERE outbox_id = 2"
    ).fetchone()
    (detail,) = db.execute("SELECT detail FROM ticket_event WHERE action = 'read'").fetchone()
    (message,) = db.execute("SELECT id FROM message WHERE outbox_id = 2").fetchone()
    assert (message, "ann@example.com") == (json.loads(detail)["message"], json.loads(detail)["by"])


def test_mail_to_a_function_that_does_not_acknowledge_is_stored_without_one(tmp_path):
    config = config_module.load(write_config_file(tmp_path, extra=ACKS))
    db = open_db(config.database)
    msg = parse(mail(sender="ann@example.com", to="sales@valuit.com"))
    (stored,) = store_batch(db, [(msg, Delivery("src", "k", ("sales",)))], mail=config.mail)
    assert (True, 0) == (stored.new, db.execute("SELECT count(*) FROM outbox").fetchone()[0])


def test_the_copies_list_is_stored_as_the_desk_shows_it(tmp_path):
    config = config_module.load(write_config_file(tmp_path, extra=ACKS))
    db = open_db(config.database)
    put(db, mail(headers={"Cc": "Bo <bo@example.com>, cy@example.com"}), config)
    assert ("Bo <bo@example.com>, cy@example.com",) == db.execute(
        "SELECT cc_addrs FROM message"
    ).fetchone()
