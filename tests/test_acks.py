"""Acknowledgements through a real SMTP server: a new ticket's sender is told its number and the
expected response time, never by quoting their mail, and never in a loop: not to auto-replies,
bounces, mailing lists, robots or our own addresses, and once an hour at most per sender, even
against an auto-responder that answers everything."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json
from pathlib import Path

import pytest

from db.core import config as config_module
from db.core.connect import open_db
from db.mailin import acks
from ingest import daemon
from ingest.parse import parse
from tests.conftest import drop, mail, write_config_file
from tests.smtp import Received, SmtpServer

ACKS = """
[functions.technical]
acknowledge = true
response_time = "within 4 hours"

[replies]
signature = "Valuit Technical Support"
acknowledge_every_minutes = 60
"""


def setup(tmp_path: Path, server: SmtpServer) -> config_module.Config:
    return config_module.load(write_config_file(tmp_path, extra=server.toml() + ACKS))


def skipped(db) -> list[str]:
    return [
        json.loads(d)["reason"]
        for (d,) in db.execute("SELECT detail FROM ticket_event WHERE action = 'ack-skipped'")
    ]


def test_a_new_ticket_is_acknowledged_with_its_number_and_the_response_time(tmp_path, smtp_server):
    config = setup(tmp_path, smtp_server)
    drop(tmp_path, "technical", mail(
        subject="Export fails", body="My secret account number is 12345.",
        sender="Ann Example <ann@example.com>", message_id="<q1@example.com>",
    ))  # fmt: skip
    daemon.run(config, once=True)

    [got] = smtp_server.handler.wait_for(1)
    msg = got.message
    text = msg.get_content()
    assert "<>" == got.mail_from  # a bounce of it goes nowhere
    assert ["ann@example.com"] == got.rcpt
    assert "Re: Export fails [#1]" == msg["Subject"]
    assert "auto-replied" == msg["Auto-Submitted"]
    assert "<q1@example.com>" == msg["In-Reply-To"]
    assert "ticket #1" in text and "within 4 hours" in text
    assert "12345" not in text and "Export fails" not in text  # never quotes the mail
    db = open_db(config.database)
    thread = db.execute(
        "SELECT direction, auto FROM message WHERE ticket_id = 1 ORDER BY id"
    ).fetchall()
    assert [("in", ""), ("out", "auto-reply")] == thread
    # Not a response from a person: the first response is still owed.
    assert db.execute("SELECT first_response_at FROM ticket WHERE id = 1").fetchone()[0] is None


@pytest.mark.parametrize(
    ("sender", "headers", "reason"),
    [
        (
            "News <news@example.com>",
            {"List-Id": "<news.example.com>"},
            "it comes from a mailing list",
        ),
        ("Robot <no-reply@example.com>", {}, "its sender is an automated address"),
        ("Bob <bob-request@lists.example.com>", {}, "its sender is an automated address"),
        ("Our own <general@valuit.com>", {}, "it comes from one of our own addresses"),
    ],
)
def test_mail_that_must_not_be_answered_opens_a_ticket_but_gets_no_acknowledgement(
    tmp_path, smtp_server, sender, headers, reason
):
    config = setup(tmp_path, smtp_server)
    drop(tmp_path, "technical", mail(sender=sender, headers=headers))
    daemon.run(config, once=True)
    db = open_db(config.database)
    assert 1 == db.execute("SELECT count(*) FROM ticket").fetchone()[0]
    assert 0 == db.execute("SELECT count(*) FROM outbox").fetchone()[0]
    assert [reason] == skipped(db)
    assert [] == smtp_server.handler.delivered


def test_an_internationalised_address_is_stored_and_not_acknowledged(tmp_path, smtp_server):
    """SMTPUTF8 mail (RFC 6532): its ticket opens; we cannot write back, and say so."""
    config = setup(tmp_path, smtp_server)
    drop(tmp_path, "technical", (
        "From: Jörg <jörg@example.de>\r\nTo: technical@valuit.com\r\nSubject: Grüße\r\n"
        "Message-ID: <utf8@example.de>\r\n\r\nHallo\r\n"
    ).encode())  # fmt: skip
    daemon.run(config, once=True)
    db = open_db(config.database)
    assert [("jörg@example.de",)] == db.execute("SELECT requester_addr FROM ticket").fetchall()
    assert 0 == db.execute("SELECT count(*) FROM outbox").fetchone()[0]
    assert ["its sender address is missing or one we cannot write to (not ASCII)"] == skipped(db)


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied"},
        {"Precedence": "junk"},
        {"X-Autoreply": "yes"},
        {"Return-Path": "<>"},
    ],
)
def test_auto_replies_are_never_acknowledged(tmp_path, smtp_server, headers):
    config = setup(tmp_path, smtp_server)
    drop(tmp_path, "technical", mail(headers=headers))
    daemon.run(config, once=True)
    db = open_db(config.database)
    assert 0 == db.execute("SELECT count(*) FROM outbox").fetchone()[0]


def test_a_sender_is_acknowledged_once_per_interval(tmp_path, smtp_server, monkeypatch):
    config = setup(tmp_path, smtp_server)
    monkeypatch.setenv("DESK_NOW", "2026-11-26T10:00:00Z")
    for subject in ("First question", "Second question"):
        drop(tmp_path, "technical", mail(subject=subject))
    daemon.run(config, once=True)
    assert 1 == len(smtp_server.handler.delivered)
    db = open_db(config.database)
    assert ["the sender was acknowledged within 60 minutes"] == skipped(db)

    monkeypatch.setenv("DESK_NOW", "2026-11-26T11:00:01Z")
    drop(tmp_path, "technical", mail(subject="Third question"))
    daemon.run(config, once=True)
    assert 2 == len(smtp_server.handler.delivered)


def test_a_function_without_acknowledgements_sends_none(tmp_path, smtp_server):
    config = setup(tmp_path, smtp_server)
    drop(tmp_path, "sales", mail(to="sales@valuit.com"))
    daemon.run(config, once=True)
    assert 0 == open_db(config.database).execute("SELECT count(*) FROM outbox").fetchone()[0]


@pytest.mark.parametrize("polite", [True, False], ids=["rfc3834-responder", "rude-responder"])
def test_an_auto_responder_that_answers_every_mail_gets_one_acknowledgement(
    tmp_path, smtp_server, polite
):
    """The responder answers each mail it gets; the rude one strips every header that would
    tell (no Auto-Submitted, no In-Reply-To, a fresh subject), so each answer is a new ticket."""
    config = setup(tmp_path, smtp_server)

    def respond(got: Received) -> None:
        original = got.message
        headers = (
            {"Auto-Submitted": "auto-replied", "In-Reply-To": original["Message-ID"]}
            if polite
            else {}
        )
        drop(tmp_path, "technical", mail(
            subject=f"Out of office ({len(smtp_server.handler.delivered)})",
            sender="Away <away@example.com>", headers=headers,
        ))  # fmt: skip

    smtp_server.handler.on_delivery = respond
    drop(tmp_path, "technical", mail(sender="Away <away@example.com>"))
    for _ in range(6):  # each round reads the answers to the last round's mail
        daemon.run(config, once=True)

    assert 1 == len(smtp_server.handler.delivered)
    db = open_db(config.database)
    assert 2 == db.execute("SELECT count(*) FROM message WHERE direction = 'in'").fetchone()[0]


def test_a_failing_acknowledgement_never_costs_the_mail(tmp_path, smtp_server, monkeypatch):
    from db.mailin import acks

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(acks, "plan", broken)
    config = setup(tmp_path, smtp_server)
    drop(tmp_path, "technical", mail(subject="Still here"))
    daemon.run(config, once=True)
    db = open_db(config.database)
    assert [("Still here",)] == db.execute("SELECT subject FROM ticket").fetchall()
    assert ["failed: boom"] == skipped(db)
    assert 0 == db.execute("SELECT count(*) FROM message_failure").fetchone()[0]


@pytest.mark.parametrize(
    ("return_path", "expected"),
    [
        ("<ann.work@example.org>", "ann.work@example.org"),  # the envelope sender, not From
        ("<ann.work@bounce.example.org>", "ann.work@bounce.example.org"),  # only its local part
        ("<bounce-42-ann=example.com@mail.bulk.example>", "ann@example.com"),  # VERP: From
        ("<>", None),  # the null path: nowhere
        (None, "ann@example.com"),  # read without one: From
    ],
)
def test_the_acknowledgement_goes_where_rfc_3834_sends_it(return_path, expected):
    headers = {"Return-Path": return_path} if return_path else {}
    msg = parse(mail(sender="Ann <ann@example.com>", headers=headers))
    assert expected == acks.destination(msg)


def test_mail_that_could_not_be_parsed_is_not_acknowledged_and_the_reason_is_recorded(tmp_path):
    config = config_module.load(write_config_file(tmp_path, extra=ACKS))
    msg = dataclasses.replace(parse(mail()), parse_error="truncated headers")
    reason = acks.skip_reason(open_db(config.database), msg, config.mail)
    assert "it could not be parsed, so its sender is unsure" == reason


@pytest.mark.parametrize(
    ("sender", "greeting"),
    [("Ann Example <ann@example.com>", "Hello Ann Example,"), ("ann@example.com", "Hello,")],
)
def test_the_acknowledgement_says_only_the_number_and_the_time_word_for_word(
    tmp_path, sender, greeting
):
    config = config_module.load(write_config_file(tmp_path, extra=ACKS))
    msg = parse(mail(sender=sender, subject="Re: Export fails"))
    planned = acks.plan(open_db(config.database), msg, 7, "technical", config.mail)
    assert (
        f"{greeting}\n\n"
        "Thank you for writing to Valuit technical support. Your message is ticket #7; please "
        "keep [#7] in the subject if you write again about it.\n\n"
        "We expect to answer within 4 hours.\n\n"
        "This is an automatic acknowledgement; there is no need to reply to it.\n"
        "\n-- \nValuit Technical Support\n"
    ) == planned.body
    assert "Re: Export fails [#7]" == planned.subject
    assert planned.message_id.endswith("@valuit.com>")  # in our domain, as RFC 5322 3.6.4 asks
    # RFC 3834 and Exchange's own marks: no responder answers it.
    sent = email.message_from_bytes(planned.raw, policy=email.policy.default)
    assert ("auto-replied", "All") == (sent["Auto-Submitted"], sent["X-Auto-Response-Suppress"])
    # It answers the mail, so the customer's client shows it in the thread (RFC 5322 3.6.4).
    assert (msg.message_id, msg.message_id) == (sent["In-Reply-To"], sent["References"])


def test_an_acknowledgement_of_mail_without_a_message_id_answers_nothing_by_id(tmp_path):
    config = config_module.load(write_config_file(tmp_path, extra=ACKS))
    msg = parse(
        mail(message_id="<gone@example.com>").replace(b"Message-ID: <gone@example.com>\n", b"")
    )
    planned = acks.plan(open_db(config.database), msg, 7, "technical", config.mail)
    sent = email.message_from_bytes(planned.raw, policy=email.policy.default)
    assert (None, None) == (sent["In-Reply-To"], sent["References"])


@pytest.mark.parametrize(
    "headers", [{"From": "technical@valuit.com"}, {"Return-Path": "<technical@valuit.com>"}]
)
def test_mail_from_our_own_address_by_either_its_from_or_its_return_path_is_not_acknowledged(
    tmp_path, headers
):
    config = config_module.load(write_config_file(tmp_path, extra=ACKS))
    sender = headers.get("From", "Ann <ann@example.com>")
    rest = {k: v for k, v in headers.items() if k != "From"}  # the parameter stays whole
    msg = parse(mail(sender=sender, headers={"Return-Path": "<ann@example.com>", **rest}))
    reason = acks.skip_reason(open_db(config.database), msg, config.mail)
    assert "it comes from one of our own addresses" == reason
