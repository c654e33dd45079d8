"""Routing: the kind of sender recognised, functions chosen from source and recipients."""

from __future__ import annotations

import pytest

from db.core.config import Source
from ingest import route
from ingest.parse import parse
from tests.conftest import mail

ADDRESSES = {
    "technical@valuit.com": "technical",
    "compliance@valuit.com": "compliance",
    "sales@valuit.com": "sales",
}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Auto-Submitted": "auto-replied"}, "auto-reply"),
        ({"Auto-Submitted": "auto-generated"}, "auto-reply"),
        ({"Auto-Submitted": "no"}, ""),
        ({"Precedence": "bulk"}, "list"),  # a person's mail, passed on by a list
        ({"Precedence": "list"}, "list"),
        ({"X-Autoreply": "yes"}, "auto-reply"),
        ({"Return-Path": "<>"}, "auto-reply"),
        ({"X-POST-MessageClass": "9; Autoresponder"}, "auto-reply"),  # Lotus Notes
        ({"X-Autoreply": "NO"}, ""),  # "no" in any case is not set
        ({}, ""),
    ],
)
def test_auto_replies_are_recognised(headers, expected):
    assert expected == parse(mail(headers=headers)).kind


def test_bounces_are_recognised_and_know_what_they_bounce():
    raw = (
        b"From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\nReturn-Path: <>\r\n"
        b"Subject: Undelivered Mail\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=r\r\n\r\n"
        b"--r\r\nContent-Type: text/plain\r\n\r\nCould not deliver.\r\n"
        b"--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        b"Final-Recipient: rfc822; x@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"--r\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <orig@valuit.com>\r\n"
        b"Subject: Re: your ticket\r\n--r--\r\n"
    )
    msg = parse(raw)
    assert ("bounce", ["<orig@valuit.com>"]) == (msg.auto, msg.bounced_ids)
    assert "<orig@valuit.com>" == msg.bounce_of
    # The body is the part written for people; the report's fields are kept apart.
    assert "Could not deliver." == msg.body_text
    assert "Action: failed\nStatus: 5.1.1" in msg.report
    [report] = msg.attachments
    assert ("delivery-status.txt", "message/delivery-status", True) == (
        report.display_name,
        report.content_type,
        report.inline,
    )
    assert report.data.decode() == (
        "Reporting-MTA: dns; mx\n\n"
        "Final-Recipient: rfc822; x@example.org\nAction: failed\nStatus: 5.1.1\n"
    )
    assert "bounce" == parse(mail(sender="MAILER-DAEMON@example.net")).auto


def test_function_comes_from_the_source_plus_other_support_addresses():
    source = Source("tech", "technical", "maildir")
    msg = parse(
        mail(to="technical@valuit.com", headers={"Cc": "Compliance <compliance@valuit.com>"})
    )
    assert ("technical", "compliance") == route.functions(source, msg.recipients, ADDRESSES)
    assert ("technical",) == route.functions(source, ["ann@example.com"], ADDRESSES)


def test_a_shared_account_routes_by_recipient():
    shared = Source(
        "shared",
        "general",
        "imap",
        addresses={"sales@valuit.com": "sales", "general@valuit.com": "general"},
    )
    via_delivered_to = parse(
        mail(to="list@example.org", headers={"Delivered-To": "sales@valuit.com"})
    )
    assert ("sales",) == route.functions(shared, via_delivered_to.recipients, ADDRESSES)
    assert ("general",) == route.functions(shared, ["nobody@example.org"], ADDRESSES)


def test_a_report_that_names_no_report_type_is_a_bounce():
    """Before RFC 3464 every report failed something; one without the parameter still does."""
    assert "bounce" == route.kind(lambda name: "", "multipart/report", "", "ann@example.com")
    # RFC 6533's report for internationalised mail is a delivery report too.
    report = "global-delivery-status"
    assert "bounce" == route.kind(lambda name: "", "multipart/report", report, "ann@example.com")


def test_only_the_bounce_senders_own_names_make_a_bounce():
    def header(name: str) -> str:
        return "Mail System <POSTMASTERX>" if name == "from" else ""

    assert "" == route.kind(header, "text/plain", "", "")
    quoted = '"MAILER-DAEMON"'  # a quoted bare name is still the mailer daemon
    assert "bounce" == route.kind(
        lambda name: quoted if name == "from" else "", "text/plain", "", ""
    )


def test_an_unsubscribe_request_gives_its_token_and_other_subjects_none():
    token = "A" * 16 + "_-9"
    assert (token, None) == (
        route.unsubscribe_token(f"Re: unsubscribe {token}"),
        route.unsubscribe_token("How do I unsubscribe?"),
    )
