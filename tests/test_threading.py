"""Storing and threading: exactly once by content, tickets joined by the documented rules."""

from __future__ import annotations

from db.mailin.model import Delivery
from db.mailin.store import store_batch
from db.tickets import merge
from ingest.parse import parse
from tests.conftest import mail
from tests.test_automatic_mail import mdn


def put(db, raw: bytes, key: str | None = None, functions=("technical",)):
    msg = parse(raw)
    (stored,) = store_batch(db, [(msg, Delivery("src", key or msg.sha256, tuple(functions)))])
    return stored


def ticket(db, number: int) -> dict:
    return next(db.query("SELECT * FROM ticket WHERE id = ?", [number]))


def test_the_same_bytes_twice_are_one_message(db):
    raw = mail()
    first, second = put(db, raw, "a"), put(db, raw, "b")
    assert (True, False, first.message_id) == (first.new, second.new, second.message_id)
    assert 1 == db.execute("SELECT count(*) FROM message").fetchone()[0]
    assert 2 == db.execute("SELECT count(*) FROM message_location").fetchone()[0]


def test_the_same_message_id_with_other_bytes_is_two_messages(db):
    a = put(db, mail(body="one", message_id="<same@example.com>"))
    b = put(db, mail(body="two", message_id="<same@example.com>", subject="Other"))
    assert a.message_id != b.message_id
    assert 2 == db.execute("SELECT count(*) FROM message").fetchone()[0]


def test_replies_join_by_in_reply_to_then_references(db):
    first = put(db, mail(message_id="<q1@example.com>"))
    reply = put(db, mail(subject="Re: Help", headers={"In-Reply-To": "<q1@example.com>"}))
    later = put(
        db,
        mail(subject="Re: Help", headers={"References": "<unknown@x> <q1@example.com> <gone@x>"}),
    )
    assert "new" == first.rule
    assert (first.ticket_id, "in-reply-to") == (reply.ticket_id, reply.rule)
    assert (first.ticket_id, "references") == (later.ticket_id, later.rule)
    assert 3 == ticket(db, first.ticket_id)["message_count"]


def test_subject_token_joins_only_for_participants(db):
    first = put(db, mail(sender="ann@example.com"))
    number = first.ticket_id
    own = put(db, mail(subject=f"Re: [#{number}] more", sender="ann@example.com"))
    stranger = put(db, mail(subject=f"[#{number}] let me in", sender="eve@example.org"))
    assert (number, "subject-token") == (own.ticket_id, own.rule)
    assert stranger.ticket_id != number and "new" == stranger.rule
    assert "let me in" == ticket(db, stranger.ticket_id)["subject"]  # without the token


def test_a_mail_to_two_support_addresses_is_one_ticket_with_both_functions(db):
    stored = put(db, mail(), functions=("technical", "compliance"))
    functions = {
        r[0]
        for r in db.execute(
            "SELECT function FROM ticket_function WHERE ticket_id = ?", [stored.ticket_id]
        )
    }
    assert {"technical", "compliance"} == functions


def test_a_copy_that_differs_in_more_than_transport_joins_the_first_copys_ticket(db):
    # The second copy came through a list that added its footer: another message, same ticket.
    a = put(
        db,
        mail(
            body="Help.",
            message_id="<c@example.com>",
            headers={"Delivered-To": "technical@valuit.com"},
        ),
    )
    b = put(
        db,
        mail(
            body="Help.\n-- \nsupport-all mailing list",
            message_id="<c@example.com>",
            headers={"Delivered-To": "sales@valuit.com"},
        ),
        functions=("sales",),
    )
    assert (a.ticket_id, "copy") == (b.ticket_id, b.rule)
    functions = {
        r[0]
        for r in db.execute(
            "SELECT function FROM ticket_function WHERE ticket_id = ?", [a.ticket_id]
        )
    }
    assert {"technical", "sales"} == functions


def test_auto_replies_and_bounces_open_no_ticket(db):
    orphan = put(db, mail(headers={"Auto-Submitted": "auto-replied"}))
    first = put(db, mail(message_id="<asked@example.com>"))
    ooo = put(
        db,
        mail(
            subject="Out of office",
            headers={"Auto-Submitted": "auto-replied", "In-Reply-To": "<asked@example.com>"},
        ),
    )
    assert (None, "no-ticket") == (orphan.ticket_id, orphan.rule)
    assert first.ticket_id == ooo.ticket_id
    assert 1 == db.execute("SELECT count(*) FROM ticket").fetchone()[0]


def test_a_customer_reply_reopens_a_resolved_ticket_but_an_auto_reply_does_not(db):
    first = put(db, mail(message_id="<r@example.com>"))
    db.execute("UPDATE ticket SET status = 'resolved' WHERE id = ?", [first.ticket_id])
    put(db, mail(headers={"Auto-Submitted": "auto-replied", "In-Reply-To": "<r@example.com>"}))
    assert "resolved" == ticket(db, first.ticket_id)["status"]
    put(db, mail(subject="Re: still", headers={"In-Reply-To": "<r@example.com>"}))
    assert "open" == ticket(db, first.ticket_id)["status"]
    changes = db.execute("SELECT actor, detail FROM ticket_event WHERE action = 'status'")
    assert [("desk-ingest", '{"from": "resolved", "to": "open"}')] == changes.fetchall()
    db.execute("UPDATE ticket SET status = 'closed' WHERE id = ?", [first.ticket_id])
    put(db, mail(subject="Re: again", headers={"In-Reply-To": "<r@example.com>"}))
    assert "open" == ticket(db, first.ticket_id)["status"]  # closed is settled too


def test_unparsed_mail_opens_a_flagged_ticket(db):
    stored = put(db, b"\x00\xffnot mail")
    assert 1 == ticket(db, stored.ticket_id)["unparsed"]
    raw = db.execute("SELECT raw FROM raw_message WHERE message_id = ?", [stored.message_id])
    assert b"\x00\xffnot mail" == raw.fetchone()[0]


def test_search_index_follows_the_messages(db):
    put(db, mail(subject="Balance wrong", body="the statement shows 120 instead of 100"))
    hits = db.execute("SELECT count(*) FROM message_fts WHERE message_fts MATCH 'statement'")
    assert 1 == hits.fetchone()[0]


def test_mail_read_late_keeps_the_time_it_arrived(db):
    raw = b"Received: from mx by mail.valuit.com; Mon, 23 Nov 2026 08:30:00 +0000\r\n" + mail(
        subject="sent during the weekend"
    )
    stored = put(db, raw)
    row = ticket(db, stored.ticket_id)
    assert ("2026-11-23T08:30:00.000Z", "2026-11-23T08:30:00.000Z") == (
        row["created_at"],
        row["last_message_at"],
    )


def test_a_token_of_a_ticket_merged_twice_threads_into_the_end_of_the_chain(db):
    b, a, c = (put(db, mail(sender=f"{who}@example.com")).ticket_id for who in ("ann", "bo", "cy"))
    merge.merge(db, b, a, "maria")
    merge.merge(db, a, c, "maria")
    again = put(db, mail(subject=f"Re: [#{b}] still broken", sender="ann@example.com"))
    assert (c, "subject-token") == (again.ticket_id, again.rule)


def test_a_read_receipt_joins_the_ticket_of_the_mail_it_reports_on_by_that_alone(db):
    first = put(db, mail(sender="cy@example.com", message_id="<q1@example.com>"))
    receipt = mdn("<q1@example.com>").replace(b"In-Reply-To: <reply-1@valuit.com>\r\n", b"")
    stored = put(db, receipt)
    assert (first.ticket_id, "references") == (stored.ticket_id, stored.rule)


def test_a_ticket_is_known_by_its_subject_without_reply_prefixes(db):
    reply = put(db, mail(subject="Re: AW: Fwd: Login fails"))
    empty = put(db, mail(subject="Re: "))
    subjects = [ticket(db, s.ticket_id)["subject"] for s in (reply, empty)]
    assert ["Login fails", "(no subject)"] == subjects
