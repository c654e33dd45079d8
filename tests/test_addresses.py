"""Address headers read as mail clients read them: the requester is the real address the From
names (or the Sender, when From names several), never a fragment; a ticket whose mail names no
address says so and refuses a reply; replies go to the Reply-To, acknowledgements do not."""

from __future__ import annotations

import email
import time
from email.policy import default
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from db.core import config as config_module
from db.core.connect import open_db
from db.core.errors import DeskError
from db.tickets import replies, tickets
from ingest import daemon
from ingest.parse import parse
from tests.conftest import build_config, drop, mail
from tui.screens.ticket import message_view

FIELD_MAIL = Path(__file__).parent / "fixtures" / "field-mail"
SENDER = "Valuit Technical Support <technical@valuit.com>"


def from_header(value: str | bytes) -> bytes:
    value = value.encode("utf-8") if isinstance(value, str) else value
    return b"From: " + value + b"\r\nTo: technical@valuit.com\r\nSubject: Help\r\n\r\nbody\r\n"


@pytest.mark.parametrize(
    ("header", "addr", "name"),
    [
        # An unquoted comma in the name (cpython #143938): the words before it are the name's.
        ("Smith, Jane <jane.smith@example.com>", "jane.smith@example.com", "Smith, Jane"),
        ("Smith, Jane, Dr. <jane@example.com>", "jane@example.com", "Smith, Jane, Dr."),
        ('"Smith, Jane" <jane@example.com>', "jane@example.com", "Smith, Jane"),
        # A comma inside an encoded word is part of the name, encoded or written as it is.
        ("=?utf-8?q?Smith=2C_Jane?= <jane@example.com>", "jane@example.com", "Smith, Jane"),
        ("=?utf-8?q?Smith,_Jane?= <jane@example.com>", "jane@example.com", "Smith, Jane"),
        ("=?iso-8859-1?q?M=FCller=2C_J=F6rg?= <j@example.de>", "j@example.de", "Müller, Jörg"),
        ('"=?utf-8?q?Doe=2C_Jane?=" <jane@example.com>', "jane@example.com", "Doe, Jane"),
        # The whole mailbox inside encoded words.
        ("=?utf-8?q?Jane_Doe_=3Cjane=40example.com=3E?=", "jane@example.com", "Jane Doe"),
        (
            "=?utf-8?b?IlNtaXRoLCBKYW5lIiA8amFuZUBleGFtcGxlLmNvbT4=?=",
            "jane@example.com",
            "Smith, Jane",
        ),
        # A comment as the name (RFC 5322 3.4's legacy form), and a comment within a name.
        ("jane@example.com (Jane Doe)", "jane@example.com", "Jane Doe"),
        ("jane@example.com (=?utf-8?q?Zo=C3=AB?=)", "jane@example.com", "Zoë"),
        ("Jane (Sales) <jane@example.com>", "jane@example.com", "Jane (Sales)"),
        # No angle brackets, one of them missing, junk after the address, obsolete spacing.
        ("Jane Doe jane@example.com", "jane@example.com", "Jane Doe"),
        ("Jane Doe <jane@example.com", "jane@example.com", "Jane Doe"),
        ("jane@example.com>", "jane@example.com", ""),
        ("Jane <jane@example.com> sent from my phone", "jane@example.com", "Jane"),
        ("jane . doe @ example . com", "jane.doe@example.com", ""),
        ("<@relay.example.net:jane@example.com>", "jane@example.com", ""),
        # Groups (RFC 5322 3.4): the member, not the group's name.
        ("Support team: Jane <jane@example.com>;", "jane@example.com", "Jane"),
        # Internationalised domains, as Unicode and as ASCII (one address, shown in Unicode).
        ("Jörg <joerg@bücher.example>", "joerg@bücher.example", "Jörg"),
        ("Jörg <joerg@xn--bcher-kva.example>", "joerg@bücher.example", "Jörg"),
        ("=?utf-8?b?5byg5LiJ?= <Zhang@Example.CN>", "zhang@example.cn", "张三"),
        # A company's own .local domain is an address its mail server delivers to.
        (
            "Father Time <father.time@xcar.wooster.local>",
            "father.time@xcar.wooster.local",
            "Father Time",
        ),
    ],
)
def test_the_requester_and_name_are_what_a_mail_client_shows(header, addr, name):
    msg = parse(from_header(header))
    assert (addr, name) == (msg.from_addr, msg.from_name)
    assert "NoUsableSender" not in msg.defects


@pytest.mark.parametrize(
    ("header", "defect"),
    [
        ("Smith, Jane <jane.smith@example.com>", "UnquotedCommaInName"),
        ("=?utf-8?q?Jane_Doe_=3Cjane=40example.com=3E?=", "AddressInEncodedWord"),
        ("Jane Doe jane@example.com", "MissingAngleBracket"),
        ("Jane <jane@example.com> sent from my phone", "JunkAfterAddress"),
    ],
)
def test_each_repair_is_recorded_as_a_defect(header, defect):
    assert defect in parse(from_header(header)).defects


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("smith", "smith"),
        ("Jane Doe", "Jane Doe"),
        ("=?utf-8?q?Jane_Doe?=", "Jane Doe"),
        ("undisclosed-recipients:;", "undisclosed-recipients:;"),
        ("<>", "<>"),
        ("Mail Delivery System <MAILER-DAEMON>", "Mail Delivery System <MAILER-DAEMON>"),
        ("jane@", "jane@"),
        ("root@localhost", "root@localhost"),
        ('"jane doe"@example.com', '"jane doe"@example.com'),
        ("", ""),
    ],
)
def test_a_from_without_a_real_address_leaves_no_requester_and_says_why(header, name):
    msg = parse(from_header(header))
    assert ("", name) == (msg.from_addr, msg.from_name)
    assert "NoUsableSender" in msg.defects


def test_a_mail_with_no_from_at_all_has_no_usable_sender():
    msg = parse(b"Subject: Help\r\n\r\nbody\r\n")
    assert ("", "") == (msg.from_addr, msg.from_name)
    assert "NoUsableSender" in msg.defects


def test_several_authors_make_the_sender_the_requester_else_the_first():
    with_sender = parse(
        b"From: Jane <jane@example.com>, Bob <bob@example.com>\r\n"
        b"Sender: Office <office@example.com>\r\nSubject: x\r\n\r\nbody\r\n"
    )
    assert ("office@example.com", "Office") == (with_sender.from_addr, with_sender.from_name)
    assert "MultipleFrom" in with_sender.defects
    without = parse(from_header("smith, Jane <jane@example.com>, Bob <bob@example.com>"))
    assert ("jane@example.com", "smith, Jane") == (without.from_addr, without.from_name)
    assert "MultipleFrom" in without.defects


def test_a_from_with_no_address_falls_back_to_the_sender():
    msg = parse(b"From: smith\r\nSender: Jane <jane@example.com>\r\nSubject: x\r\n\r\nbody\r\n")
    assert ("jane@example.com", "Jane") == (msg.from_addr, msg.from_name)


def test_to_cc_and_reply_to_are_read_alike_and_stored_so_they_read_back():
    msg = parse(
        b"From: jane@example.com\r\n"
        b"To: Smith, Jane <jane@example.com>, Support <technical@valuit.com>\r\n"
        b"Cc: =?utf-8?q?Doe=2C_John?= <john@example.com>, undisclosed recipients\r\n"
        b"Reply-To: Team: =?utf-8?q?Support_List_=3Clist=40example.org=3E?=, smith;\r\n"
        b"Subject: x\r\n\r\nbody\r\n"
    )
    assert ['"Smith, Jane" <jane@example.com>', "Support <technical@valuit.com>"] == msg.to_addrs
    assert ['"Doe, John" <john@example.com>', "undisclosed recipients"] == msg.cc_addrs
    assert ["Support List <list@example.org>"] == msg.reply_to  # only real addresses
    assert ["jane@example.com", "technical@valuit.com", "john@example.com"] == msg.recipients


# The pieces address headers are made of, for headers that break them in every way.
PIECES = [
    b"Jane", b"Smith,", b" ", b"<", b">", b"@", b",", b";", b":", b'"', b"(", b")", b"\\", b"[",
    b"]", b".", b"=?utf-8?q?a=40b=2C_c?=", b"=?utf-8?b?QEA+?=", b"jane@example.com",
    b"example.com", b"\xc3\xa9", b"\xff", b"\x00", b"=?", b"?=",
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    value=st.one_of(
        st.binary(max_size=120),
        st.lists(st.sampled_from(PIECES), max_size=14).map(b"".join),
    )
)
def test_any_from_header_gives_text_and_an_address_or_none(value):
    msg = parse(from_header(value.replace(b"\r", b"").replace(b"\n", b"")))
    assert isinstance(msg.from_addr, str) and isinstance(msg.from_name, str)
    if msg.from_addr:
        local, _, domain = msg.from_addr.partition("@")
        assert (1, True, True) == (msg.from_addr.count("@"), bool(local), bool(domain))
    # Never a Python object's repr where an address belongs.
    assert not msg.from_addr.startswith(("b'", 'b"', "[", "(", "<"))


def test_a_long_hostile_address_header_is_read_at_once():
    started = time.monotonic()
    for value in ("a" + " " * 100_000 + "x", "Smith, " * 20_000 + "Jane <j@example.com>",
                  '"' + "a" * 100_000, "(" * 50_000, "a@b:" * 20_000):  # fmt: skip
        parse(from_header(value))
    assert time.monotonic() - started < 5


# Through a drop folder, a ticket, and a reply queued on it.


def customer(tmp_path: Path, cfg: config_module.Config, raw: bytes) -> int:
    drop(tmp_path, "technical", raw)
    daemon.run(cfg, once=True)
    db = open_db(cfg.database)
    try:
        return db.execute("SELECT max(id) FROM ticket").fetchone()[0]
    finally:
        db.close()


@pytest.fixture
def desk(tmp_path: Path) -> config_module.Config:
    return build_config(tmp_path, {"functions": {"technical": {"sender": SENDER}}})


def outgoing(db, outbox_id: int) -> email.message.EmailMessage:
    (raw,) = db.execute("SELECT raw FROM outbox WHERE id = ?", [outbox_id]).fetchone()
    return email.message_from_bytes(raw, policy=default)


def test_the_unquoted_comma_field_mail_opens_janes_ticket_and_the_reply_goes_to_her(tmp_path, desk):
    raw = (FIELD_MAIL / "10-from-unquoted-comma-display-name.eml").read_bytes()
    ticket = customer(tmp_path, desk, raw)
    db = open_db(desk.database)
    assert ("jane.smith@example.com", "Smith, Jane") == db.execute(
        "SELECT requester_addr, requester_name FROM ticket WHERE id = ?", [ticket]
    ).fetchone()
    target = replies.addressee(db, ticket)
    assert ('"Smith, Jane" <jane.smith@example.com>', "", "") == (
        target.to,
        target.via,
        target.refusal,
    )
    sent = outgoing(db, replies.send(db, ticket, "Both positions are back.", "maria", desk.mail))
    assert "jane.smith@example.com" == sent["To"].addresses[0].addr_spec
    assert "Smith, Jane" == sent["To"].addresses[0].display_name
    assert ["jane.smith@example.com"] == [
        r for (r,) in db.execute("SELECT rcpt FROM outbox").fetchall()
    ]


def test_a_reply_goes_to_the_reply_to_and_says_so(tmp_path, desk):
    raw = mail(
        sender="Jane Smith <jane@example.com>",
        headers={"Reply-To": "Accounts Team <accounts@example.com>, Bob <bob@example.com>"},
    )
    ticket = customer(tmp_path, desk, raw)
    db = open_db(desk.database)
    target = replies.addressee(db, ticket)
    assert "Accounts Team <accounts@example.com>" == target.to
    assert "Reply-To of Jane Smith <jane@example.com>" == target.via
    # The Reply-To's other address is offered as a copy; Jane herself is not copied.
    assert "Bob <bob@example.com>" == replies.default_cc(db, ticket, desk.mail)
    outbox_id = replies.send(db, ticket, "Done.", "maria", desk.mail, cc="Bob <bob@example.com>")
    sent = outgoing(db, outbox_id)
    assert "Accounts Team <accounts@example.com>" == str(sent["To"])
    assert ("accounts@example.com", '["bob@example.com"]') == db.execute(
        "SELECT rcpt, cc FROM outbox WHERE id = ?", [outbox_id]
    ).fetchone()
    # The requester stays Jane: the ticket is hers, only the answer goes where she asked.
    assert ("jane@example.com",) == db.execute("SELECT requester_addr FROM ticket").fetchone()


def test_a_reply_to_list_mail_goes_to_the_person_not_the_lists_reply_to(tmp_path, desk):
    raw = mail(
        sender="Pia <pia@example.org>",
        headers={
            "List-Id": "<support-forum.lists.example.org>",
            "Reply-To": "support-forum@lists.example.org",
        },
    )
    ticket = customer(tmp_path, desk, raw)
    db = open_db(desk.database)
    target = replies.addressee(db, ticket)
    assert "Pia <pia@example.org>" == target.to
    assert "mail via a list: its Reply-To support-forum@lists.example.org is left out" == (
        target.via
    )


def test_a_reply_to_naming_our_own_address_is_left_out(tmp_path, desk):
    raw = mail(sender="Bruno <bruno@example.org>", headers={"Reply-To": "technical@valuit.com"})
    ticket = customer(tmp_path, desk, raw)
    db = open_db(desk.database)
    target = replies.addressee(db, ticket, desk.mail.own_addresses)
    assert ("Bruno <bruno@example.org>", "") == (target.to, target.via)


@pytest.mark.parametrize(
    "name, greeted",
    [
        ("Jane Smith", "Jane"),
        ("Smith, Jane", "Jane"),
        ("Müller, Kurt", "Kurt"),
        ("Dr. Jane Smith", "Jane"),
        ("Smith, Dr. Jane", "Jane"),
        ("Smith,", "Smith"),
        ("", ""),
    ],
)
def test_a_reply_greets_the_given_name_of_last_first_names(name, greeted):
    assert greeted == replies.given_name(name)


def test_an_internationalised_domain_is_written_to_in_its_ascii_form(tmp_path, desk):
    ticket = customer(tmp_path, desk, mail(sender="Jörg <joerg@bücher.example>"))
    db = open_db(desk.database)
    assert ("joerg@bücher.example",) == db.execute("SELECT requester_addr FROM ticket").fetchone()
    outbox_id = replies.send(db, ticket, "Hello.", "maria", desk.mail)
    assert ("joerg@xn--bcher-kva.example",) == db.execute(
        "SELECT rcpt FROM outbox WHERE id = ?", [outbox_id]
    ).fetchone()


def test_a_ticket_with_no_usable_sender_refuses_a_reply_and_says_why(tmp_path, desk):
    raw = mail(sender="x@example.com").replace(b"From: x@example.com", b"From: smith")
    ticket = customer(tmp_path, desk, raw)
    db = open_db(desk.database)
    assert ("", "smith") == db.execute(
        "SELECT requester_addr, requester_name FROM ticket WHERE id = ?", [ticket]
    ).fetchone()
    why = (
        f'Ticket #{ticket} has no usable sender: the From of its mail ("smith") is no address, '
        "so no reply can be sent. Write to the customer from your own mail client if you know "
        "their address."
    )
    assert ("", why) == (replies.addressee(db, ticket).to, replies.addressee(db, ticket).refusal)
    with pytest.raises(DeskError) as refused:
        replies.send(db, ticket, "Hello?", "maria", desk.mail)
    assert why == refused.value.message
    assert 0 == db.execute("SELECT count(*) FROM outbox").fetchone()[0]


def test_acknowledgements_go_to_the_return_path_never_the_reply_to(tmp_path):
    cfg = build_config(
        tmp_path,
        {"functions": {"technical": {"sender": SENDER, "acknowledge": True}}},
    )
    raw = mail(
        sender="Jane Smith <jane@example.com>",
        headers={"Reply-To": "all-staff@example.com", "Return-Path": "<j.smith@mail.example.com>"},
    )
    customer(tmp_path, cfg, raw)
    db = open_db(cfg.database)
    assert [("ack", "j.smith@mail.example.com")] == db.execute(
        "SELECT kind, rcpt FROM outbox"
    ).fetchall()
    drop(tmp_path, "technical", mail(sender="Bob <bob@example.org>",
                                     headers={"Reply-To": "all-staff@example.com"}))  # fmt: skip
    daemon.run(cfg, once=True)
    assert ("bob@example.org",) == db.execute(
        "SELECT rcpt FROM outbox ORDER BY id DESC LIMIT 1"
    ).fetchone()


def test_an_acknowledgement_skips_a_bulk_senders_bounce_handler_for_the_from(tmp_path):
    cfg = build_config(
        tmp_path,
        {"functions": {"technical": {"sender": SENDER, "acknowledge": True}}},
    )
    verp = "<bounces+4711-ab12=example.com@em.sendgrid.net>"
    customer(tmp_path, cfg, mail(sender="Jane <jane@example.com>", headers={"Return-Path": verp}))
    db = open_db(cfg.database)
    assert [("ack", "jane@example.com")] == db.execute("SELECT kind, rcpt FROM outbox").fetchall()


def shown_thread(db, ticket: int) -> str:
    console = Console(width=200, record=True)
    for message in tickets.thread(db, ticket):
        console.print(message_view(message, [], ZoneInfo("UTC"), False))
    return console.export_text()


def test_the_thread_names_a_mail_without_a_usable_sender_and_shows_the_reply_to(tmp_path, desk):
    nobody = customer(tmp_path, desk, mail(sender="smith"))
    asked = customer(
        tmp_path,
        desk,
        mail(sender='"Doe, John" <john@example.com>', headers={"Reply-To": "accounts@example.com"}),
    )
    db = open_db(desk.database)
    assert "smith (no usable sender)" in shown_thread(db, nobody)
    assert "Doe, John <john@example.com>  reply-to accounts@example.com" in shown_thread(db, asked)
