"""One mail, several mailboxes: copies that differ only in transport headers are one message
with a location in each mailbox and all their functions; copies that differ in content are not."""

from __future__ import annotations

import email
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from db.core import config as config_module
from db.core.connect import open_db
from db.mailin import sources
from db.mailin.model import Delivery, Stored
from db.mailin.store import store_batch
from db.tickets import stats, tickets
from ingest import daemon
from ingest.copies import copy_key
from ingest.parse import parse
from tests.conftest import build_config, drop, write_config_file
from tests.dovecot import Dovecot
from tests.smtp import SmtpServer
from tests.tui_helpers import NOW, line_text, until
from tests.tui_helpers import build_config as desk_config
from tui.app import DeskApp
from tui.screens.ticket import TicketScreen
from tui.widgets.ticket_list import TicketList

FIELD = Path(__file__).parent / "fixtures" / "field-mail"
TECHNICAL = FIELD / "16-same-mail-to-two-mailboxes-technical-copy.eml"
SALES = FIELD / "16-same-mail-to-two-mailboxes-sales-copy.eml"
MAILBOX = {TECHNICAL: "technical", SALES: "sales"}

# What the sender wrote, as it leaves the sender's server: signed, not yet relayed.
SENT = (
    "From: Hugo Doppel <hugo@example.com>\r\n"
    "To: technical@valuit.com\r\n"
    "Subject: Upgrade my plan and fix the API key\r\n"
    "Date: Tue, 12 May 2026 08:12:00 +0200\r\n"
    "Message-ID: <plan-1@example.com>\r\n"
    "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s1; h=from:to:subject:date;\r\n"
    " bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=dGVzdA==\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "Please upgrade us to the Pro plan; also our API key stopped working.\r\n"
)


def received(box: str, queue_id: str, minute: int) -> str:
    return (
        "Received: from mx.example.net (mx.example.net [192.0.2.10])\r\n"
        f"\tby mail.valuit.com (Postfix) with ESMTPS id {queue_id}\r\n"
        f"\tfor <{box}@valuit.com>; Tue, 12 May 2026 06:{minute:02d}:03 +0000 (UTC)\r\n"
    )


# Per case, what the receiving side put on the technical copy and on the sales copy.
TRANSPORT = {
    "trace and delivery": (
        received("technical", "4AB12C", 14) + "Delivered-To: technical@valuit.com\r\n",
        received("sales", "9FF301", 15) + "Delivered-To: sales@valuit.com\r\n",
    ),
    "envelope": (
        "Return-Path: <hugo@example.com>\r\nX-Original-To: technical@valuit.com\r\n",
        "Return-Path: <bounces+hugo=example.com@relay.example.net>\r\n"
        "X-Original-To: sales@valuit.com\r\nEnvelope-To: sales@valuit.com\r\n",
    ),
    "a relay's DKIM and ARC stamps": (
        "",
        "ARC-Seal: i=1; a=rsa-sha256; d=relay.example.net; s=arc; cv=none; b=c2VhbA==\r\n"
        "ARC-Message-Signature: i=1; a=rsa-sha256; d=relay.example.net; s=arc; b=bXNn\r\n"
        "ARC-Authentication-Results: i=1; relay.example.net; dkim=pass header.d=example.com\r\n"
        "DKIM-Signature: v=1; a=rsa-sha256; d=relay.example.net; s=fwd; b=cmVsYXk=\r\n",
    ),
    "filter verdicts": (
        "Authentication-Results: mail.valuit.com; dkim=pass header.d=example.com\r\n"
        "Received-SPF: pass (mail.valuit.com: domain of example.com) client-ip=192.0.2.10\r\n"
        "X-Spam-Status: No, score=-0.1\r\nX-Virus-Scanned: clamav at mail.valuit.com\r\n",
        "Authentication-Results: mail.valuit.com; dkim=pass header.d=example.com;\r\n"
        "\tspf=pass smtp.mailfrom=example.com\r\n"
        "X-Spam-Status: No, score=0.4\r\nX-Rspamd-Queue-Id: 9FF301\r\n",
    ),
    "mail store flags": (
        "Status: RO\r\nX-Status: A\r\nX-UID: 17\r\nX-Keywords: $Forwarded\r\n"
        "Content-Length: 70\r\nLines: 1\r\n",
        "X-UID: 4\r\n",
    ),
}


def copy(trace: str, sent: str = SENT, *, after: str = "") -> bytes:
    """A copy as its mailbox holds it: the receiving side's headers on top (and `after` the
    sender's, where Exchange puts its own)."""
    head, _, body = sent.partition("\r\n\r\n")
    return f"{trace}{head}\r\n{after}\r\n{body}".encode()


def put(db, raw: bytes, function: str, key: str | None = None) -> Stored:
    """Store one copy as read from `function`'s mailbox."""
    msg = parse(raw)
    (stored,) = store_batch(db, [(msg, Delivery(f"{function}-imap", key or function, (function,)))])
    return stored


def one(db, sql: str, *params: Any) -> Any:
    return db.execute(sql, params).fetchone()[0]


def assert_one_message(db, functions: set[str], locations: set[str]) -> None:
    """What the agent and ops see of one mail fetched from several mailboxes."""
    assert (1, 1) == (
        one(db, "SELECT count(*) FROM message"),
        one(db, "SELECT count(*) FROM ticket"),
    )
    (ticket_id,) = db.execute("SELECT id FROM ticket").fetchone()
    assert 1 == len(tickets.thread(db, ticket_id))
    assert functions == set(tickets.get(db, ticket_id)["functions"])
    assert functions == set(json.loads(one(db, "SELECT functions FROM message")))
    assert locations == {s for (s,) in db.execute("SELECT source FROM message_location")}


@pytest.mark.parametrize("case", TRANSPORT)
def test_copies_that_differ_only_in_transport_headers_are_one_message(db, case):
    technical, sales = TRANSPORT[case]
    first = put(db, copy(technical), "technical")
    second = put(db, copy(sales), "sales")
    assert (True, False, first.message_id) == (first.new, second.new, second.message_id)
    assert_one_message(db, {"technical", "sales"}, {"technical-imap", "sales-imap"})


def test_exchange_stamps_below_the_senders_headers_still_make_one_message(db):
    put(db, copy("", after="X-MS-Exchange-Organization-SCL: 1\r\nX-Forefront-Antispam-Report: "
                 "CIP:192.0.2.10;SFV:NSPM\r\n"), "technical")  # fmt: skip
    put(db, copy("", after="X-Microsoft-Antispam: BCL:0;\r\nX-MS-Exchange-Organization-SCL: -1"
                 "\r\nX-MS-Exchange-CrossTenant-Id: 6f1c\r\n"), "sales")  # fmt: skip
    assert_one_message(db, {"technical", "sales"}, {"technical-imap", "sales-imap"})


def test_line_endings_folding_and_an_mbox_envelope_line_do_not_make_another_message(db):
    lf = copy(received("sales", "9FF301", 15)).replace(b"\r\n", b"\n")
    refolded = lf.replace(b"Subject: Upgrade my plan", b"Subject: Upgrade\n\t my  plan")
    mbox = b"From hugo@example.com Tue May 12 06:15:03 2026\n" + refolded + b"\n\n"
    put(db, copy(received("technical", "4AB12C", 14)), "technical")
    put(db, mbox, "sales")
    assert_one_message(db, {"technical", "sales"}, {"technical-imap", "sales-imap"})


def test_a_copy_adds_its_participants_and_an_audit_line_and_counts_once(db):
    first = put(db, copy("Delivered-To: technical@valuit.com\r\n"), "technical")
    put(db, copy("Delivered-To: sales@valuit.com\r\n"), "sales")
    participants = {a for (a,) in db.execute("SELECT addr FROM ticket_participant")}
    assert {"hugo@example.com", "technical@valuit.com", "sales@valuit.com"} == participants
    events = [(e["action"], e["detail"]) for e in tickets.events(db, first.ticket_id)][1:]
    assert [("copy", {"message": first.message_id, "source": "sales-imap"})] == events
    assert 1 == one(db, "SELECT message_count FROM ticket")


@pytest.mark.parametrize(
    ("change", "same_ticket"),
    [
        (lambda s: s.replace("Pro plan;", "Pro plan,"), True),  # one byte of the body
        (lambda s: s.replace("Subject: Upgrade", "Subject: [support-all] Upgrade"), False),
    ],
    ids=["a body byte", "the subject"],
)
def test_copies_that_differ_in_content_stay_two_messages(db, change, same_ticket):
    first = put(db, copy("Delivered-To: technical@valuit.com\r\n"), "technical")
    second = put(db, copy("Delivered-To: sales@valuit.com\r\n", change(SENT)), "sales")
    assert (True, True) == (first.new, second.new)
    assert 2 == one(db, "SELECT count(*) FROM message")
    # The same Message-ID, sender, date and subject: the copy rule keeps them in one ticket.
    assert same_ticket == (first.ticket_id == second.ticket_id)
    assert ("copy" if same_ticket else "new") == second.rule


def test_without_a_message_id_the_date_still_tells_one_mail_from_two_sendings(db):
    dated = SENT.replace("Message-ID: <plan-1@example.com>\r\n", "")
    put(db, copy("Delivered-To: technical@valuit.com\r\n", dated), "technical")
    put(db, copy("Delivered-To: sales@valuit.com\r\n", dated), "sales")
    assert 1 == one(db, "SELECT count(*) FROM message")
    # Neither a Message-ID nor a Date: the same text twice may be two sendings; both are kept.
    bare = dated.replace("Date: Tue, 12 May 2026 08:12:00 +0200\r\n", "")
    put(db, copy("Delivered-To: technical@valuit.com\r\n", bare), "technical", "t2")
    put(db, copy("Delivered-To: sales@valuit.com\r\n", bare), "sales", "s2")
    assert 3 == one(db, "SELECT count(*) FROM message")


def test_the_same_copy_read_again_after_a_crash_is_still_one_location_each(db):
    technical = copy(received("technical", "4AB12C", 14))
    sales = copy(received("sales", "9FF301", 15))
    put(db, technical, "technical", "7/1")
    put(db, sales, "sales", "3/1")
    # The checkpoint was lost: both mailboxes are read again from the start.
    again = [put(db, technical, "technical", "7/1"), put(db, sales, "sales", "3/1")]
    assert [False, False] == [s.new for s in again]
    assert_one_message(db, {"technical", "sales"}, {"technical-imap", "sales-imap"})
    assert 2 == one(db, "SELECT count(*) FROM message_location")
    assert 1 == one(db, "SELECT count(*) FROM ticket_event WHERE action = 'copy'")


def test_two_copies_in_one_batch_are_one_message(db):
    pairs = [
        (parse(TECHNICAL.read_bytes()), Delivery("technical-imap", "1/1", ("technical",))),
        (parse(SALES.read_bytes()), Delivery("sales-imap", "1/1", ("sales",))),
    ]
    results = store_batch(db, pairs)
    assert [True, False] == [r.new for r in results]
    assert_one_message(db, {"technical", "sales"}, {"technical-imap", "sales-imap"})


def assert_field_result(db) -> None:
    """The field files' right result, as `desk` and `desk stats` show it."""
    assert_one_message(db, {"technical", "sales"}, {"technical-maildir", "sales-maildir"})
    summary = stats.summary(db)
    assert (1, 1, 2) == (summary["messages"], summary["tickets"], summary["locations"])
    assert (1, 1) == tuple(
        sources.get(db, name)["stored_count"] for name in ("technical-maildir", "sales-maildir")
    )


@pytest.mark.parametrize("order", [(TECHNICAL, SALES), (SALES, TECHNICAL)], ids=["t-s", "s-t"])
def test_the_field_copies_read_in_two_runs_either_order_are_one_message(tmp_path, order):
    cfg = build_config(tmp_path)
    for path in order:
        drop(tmp_path, MAILBOX[path], path.read_bytes())
        assert daemon.run(cfg, once=True)
    assert_field_result(open_db(cfg.database))


def test_the_field_copies_read_in_one_run_are_one_message(tmp_path):
    cfg = build_config(tmp_path)
    drop(tmp_path, "technical", TECHNICAL.read_bytes())
    drop(tmp_path, "sales", SALES.read_bytes())
    assert daemon.run(cfg, once=True)
    # The copies are files already read: moving them back (a crash before the move) changes
    # nothing.
    for function in ("technical", "sales"):
        for done in (tmp_path / "spool" / function / "cur").iterdir():
            shutil.move(done, tmp_path / "spool" / function / "new" / done.name.partition(":")[0])
    assert daemon.run(cfg, once=True)
    assert_field_result(open_db(cfg.database))


ACKS = """
[functions.technical]
acknowledge = true

[functions.sales]
acknowledge = true
"""


def test_a_copy_is_not_acknowledged_again(tmp_path, smtp_server: SmtpServer):
    path = write_config_file(tmp_path, extra=smtp_server.toml() + ACKS)
    cfg = config_module.load(path)
    drop(tmp_path, "technical", TECHNICAL.read_bytes())
    drop(tmp_path, "sales", SALES.read_bytes())
    daemon.run(cfg, once=True)
    db = open_db(cfg.database)
    assert 1 == one(db, "SELECT count(*) FROM outbox WHERE kind = 'ack'")


@pytest.mark.parametrize("first", ["sales", "technical"])
def test_a_mail_to_two_functions_is_acknowledged_whichever_copy_comes_first(
    tmp_path, smtp_server: SmtpServer, first: str
):
    only_technical = "\n[functions.technical]\nacknowledge = true\n"
    path = write_config_file(tmp_path, extra=smtp_server.toml() + only_technical)
    cfg = config_module.load(path)
    copies = {"technical": TECHNICAL, "sales": SALES}
    drop(tmp_path, first, copies[first].read_bytes())
    daemon.run(cfg, once=True)
    second = "technical" if first == "sales" else "sales"
    drop(tmp_path, second, copies[second].read_bytes())
    daemon.run(cfg, once=True)
    db = open_db(cfg.database)
    (raw,) = [r[0] for r in db.execute("SELECT raw FROM outbox WHERE kind = 'ack'")]
    assert "technical@valuit.com" == email.message_from_bytes(raw)["From"].split("<")[-1].strip(">")


def test_the_field_copies_fetched_from_two_imap_mailboxes_are_one_message(
    dovecot_server: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    tables = []
    for user, path in (("technical", TECHNICAL), ("sales", SALES)):
        dovecot_server.append(user, path.read_bytes())
        monkeypatch.setenv(f"DESK_TEST_PASSWORD_{user.upper()}", dovecot_server.password(user))
        tables.append({
            "function": user, "kind": "imap", "host": dovecot_server.host,
            "port": dovecot_server.port, "security": "none", "username": user,
            "password_env": f"DESK_TEST_PASSWORD_{user.upper()}",
        })  # fmt: skip
    data = {
        "database": {"path": str(tmp_path / "desk.db")},
        "addresses": {"technical@valuit.com": "technical", "sales@valuit.com": "sales"},
        "source": tables,
    }
    cfg = config_module.parse(data, tmp_path / "config.toml")
    assert daemon.run(cfg, once=True)
    db = open_db(cfg.database)
    assert_one_message(db, {"technical", "sales"}, {"technical-imap", "sales-imap"})
    states = [sources.get(db, f"{u}-imap") for u in ("technical", "sales")]
    assert [(1, 1), (1, 1)] == [(s["server_count"], s["stored_count"]) for s in states]
    assert 1 == stats.summary(db)["messages"]


def shown(widget) -> str:
    return "\n".join(line_text(widget, y) for y in range(widget.size.height))


@pytest.mark.anyio
async def test_the_desk_shows_the_mail_once_under_both_functions(tmp_path, monkeypatch):
    monkeypatch.setenv("DESK_NOW", NOW)
    config = desk_config(tmp_path)
    db = open_db(config.database)
    put(db, TECHNICAL.read_bytes(), "technical")
    put(db, SALES.read_bytes(), "sales")
    db.close()
    app = DeskApp(config)
    async with app.run_test(size=(120, 40)) as pilot:
        listing = app.screen.query_one(TicketList)
        await until(pilot, lambda: listing.loaded and listing.current is not None)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen.data)
        head = " ".join(shown(app.screen.query_one("#ticket-head")).split())
        thread = app.screen.query_one("#thread").children
        assert "sales, technical · from hugo@example.com" in head
        assert 1 == len(thread)
        assert 1 == shown(thread[0]).count("Please upgrade us to the Pro plan")


def test_an_empty_message_id_is_no_origin_and_a_known_mail_keeps_its_key():
    assert None is copy_key(b"Message-ID: \r\nFrom: ann@example.com\r\n\r\nHello\r\n")
    assert None is not copy_key(b"Message-ID: <a@x>\r\n\r\nHello\r\n")  # either origin will do
    folded = b"Message-ID: <a@x>\r\nSubject: Upgrade\r\n of the plan\r\n\r\nHello\r\n"
    assert copy_key(folded) == copy_key(folded.replace(b"\r\n", b"\n"))
    # A last letter X is part of the body, not a line end.
    assert copy_key(b"Message-ID: <a@x>\r\n\r\nTAX\r\n") != copy_key(
        b"Message-ID: <a@x>\r\n\r\nTA\r\n"
    )
    # Keys are stored; a mail read after an upgrade must still find its copies. The key is the
    # SHA-256 of the kept fields (relaxed, in order) and the body, one per line.
    known = (
        b"Received: by mx\r\nMessage-ID: <a@x>\r\nDate: Fri, 20 Nov 2026 10:00 +0000\r\n\r\nHi\r\n"
    )
    kept = b"message-id:<a@x>\ndate:Fri, 20 Nov 2026 10:00 +0000\n\nHi"
    assert hashlib.sha256(kept).hexdigest() == copy_key(known)
