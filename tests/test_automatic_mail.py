"""Automatic mail told from a person's, by every signal the field uses: auto-replies (RFC 3834
and the vendors' ways), bounces and delay notices (RFC 3464), read receipts (RFC 8098), and a
person's mail through a mailing list, which opens a ticket but is never acknowledged."""

from __future__ import annotations

import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console

from db.core.connect import open_db
from db.mailout import outbox
from db.tickets import tickets
from ingest import daemon
from ingest.parse import parse
from tests.conftest import drop, mail
from tests.test_acks import setup
from tests.test_mail_out import answered_ticket, dsn, make_config, status
from tui.screens.ticket import message_view
from tui.widgets.ticket_list import marks

FIELD = Path(__file__).parent / "fixtures" / "field-mail"
OOO = "Automatic reply: Your request [#7]"


def kind_of(**kw: object) -> str:
    return parse(mail(**kw)).kind


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Auto-Submitted": "auto-replied"}, "auto-reply"),
        ({"Auto-Submitted": "auto-generated"}, "auto-reply"),
        ({"Auto-Submitted": "auto-notified"}, "auto-reply"),
        ({"Auto-Submitted": "no"}, ""),
        ({"X-Autoreply": "yes"}, "auto-reply"),
        ({"X-Autorespond": "Vacation"}, "auto-reply"),
        ({"Precedence": "auto_reply"}, "auto-reply"),
        ({"Precedence": "junk"}, "auto-reply"),
        ({"Return-Path": "<>"}, "auto-reply"),
        # Set on people's mail too: alone they do not make a machine.
        ({"X-Auto-Response-Suppress": "All"}, ""),
        ({"X-MS-Exchange-Inbox-Rules-Loop": "ann@example.com"}, ""),
        ({"X-MS-Exchange-Generated-Message-Source": "Mailbox Rules Agent"}, ""),
        # A person through a list or group.
        ({"Precedence": "list"}, "list"),
        ({"Precedence": "bulk"}, "list"),
        ({"List-Id": "<support.lists.example.com>"}, "list"),
        ({"List-Post": "<mailto:support@lists.example.com>"}, "list"),
        ({"List-Id": "<x.example.com>", "Auto-Submitted": "auto-replied"}, "auto-reply"),
        ({}, ""),
    ],
)
def test_each_signal_alone(headers, expected):
    assert expected == kind_of(headers=headers)


@pytest.mark.parametrize(
    "header",
    [
        {"X-Auto-Response-Suppress": "All"},
        {"X-MS-Exchange-Inbox-Rules-Loop": "ann@example.com"},
        {"X-MS-Exchange-Generated-Message-Source": "Mailbox Rules Agent"},
        {"Precedence": "bulk"},
    ],
)
def test_an_out_of_office_subject_with_a_second_signal_is_an_auto_reply(header):
    assert "auto-reply" == kind_of(subject=OOO, headers=header)
    assert "" == kind_of(subject=OOO)  # the subject alone is a person's


@pytest.mark.parametrize(
    "subject",
    [
        "Abwesenheitsnotiz: Ihre Anfrage",
        "Automatische Antwort: Ihre Anfrage",
        "Réponse automatique : Votre demande",
        "Absence : Votre demande",
        "Respuesta automática: Su solicitud",
        "Fuera de la oficina: Su solicitud",
        "Risposta automatica: La sua richiesta",
        "Automatisch antwoord: Uw aanvraag",
        "Resposta automática: O seu pedido",
        "Autosvar: Din förfrågan",
        "Automaattinen vastaus: Pyyntösi",
        "Odpowiedź automatyczna: Twoje zgłoszenie",
        "自動応答: お問い合わせ",
        "不在: お問い合わせ",
        "Out of Office: Your request",
        "Out of Office AutoReply: Your request",
        "[External] Automatic reply: Your request",
    ],
)
def test_out_of_office_replies_in_the_common_languages(subject):
    """As Exchange sends them: no RFC 3834 header, the subject in the mailbox's language."""
    headers = {"X-Auto-Response-Suppress": "All", "X-MS-Exchange-Inbox-Rules-Loop": "x@example.com"}
    assert "auto-reply" == kind_of(subject=subject, headers=headers)


@pytest.mark.parametrize(
    "subject", ["Out of office question", "Absence of invoices", "Autoreply settings lost"]
)
def test_a_person_writing_about_out_of_office_stays_a_person(subject):
    assert "" == kind_of(subject=subject, headers={"X-Auto-Response-Suppress": "All"})


def report(report_type: str, part_type: str, fields: str, extra_part: str = "") -> bytes:
    """A multipart/report (RFC 6522) from ann@example.com with one machine-readable part."""
    return (
        "From: Ann Example <ann@example.com>\r\nTo: technical@valuit.com\r\n"
        "Subject: Read: Re: Help please [#1]\r\nDate: Fri, 20 Nov 2026 10:00:00 +0000\r\n"
        "Message-ID: <report-1@example.com>\r\nIn-Reply-To: <reply-1@valuit.com>\r\n"
        "MIME-Version: 1.0\r\n"
        f"Content-Type: multipart/report; report-type={report_type}; boundary=r\r\n\r\n"
        "--r\r\nContent-Type: text/plain\r\n\r\nYour message was displayed.\r\n"
        f"--r\r\nContent-Type: {part_type}\r\n\r\n{fields}\r\n{extra_part}--r--\r\n"
    ).encode()


def mdn(original: str, disposition: str = "displayed") -> bytes:
    """A read receipt (RFC 8098) for the mail with Message-ID `original`."""
    return report(
        "disposition-notification",
        "message/disposition-notification",
        "Reporting-UA: pc.example.com; Thunderbird\r\nFinal-Recipient: rfc822; ann@example.com\r\n"
        f"Original-Message-ID: {original}\r\n"
        f"Disposition: manual-action/MDN-sent-manually; {disposition}\r\n",
    )


def test_a_read_receipt_names_the_mail_it_reports_on():
    msg = parse(mdn("<our-reply@valuit.com>"))
    assert ("read-receipt", "<our-reply@valuit.com>") == (msg.kind, msg.receipt_of)
    assert None is parse(mdn("<our-reply@valuit.com>", "deleted")).receipt_of  # never read
    folded = mdn("\r\n <folded@valuit.com>", "\r\n displayed")
    assert "<folded@valuit.com>" == parse(folded).receipt_of
    # Without the fields, the receipt's In-Reply-To names the mail.
    bare = report("disposition-notification", "text/plain", "Read.")
    assert ("read-receipt", "<reply-1@valuit.com>") == (parse(bare).kind, parse(bare).receipt_of)
    # A report's parts count only inside a report (RFC 6522 section 3): a customer who
    # forwards a receipt inline wrote a person's mail, and cannot mark our mail as read.
    mixed = mdn("<x@valuit.com>").replace(b"multipart/report", b"multipart/mixed")
    assert ("", None) == (parse(mixed).kind, parse(mixed).receipt_of)


def test_a_bounce_a_customer_forwards_inline_is_the_customers_mail():
    raw = report("delivery-status", "message/delivery-status", dsn_fields("failed"))
    raw = raw.replace(b"multipart/report", b"multipart/mixed")
    assert "" == parse(raw).kind


def dsn_fields(*actions: str) -> str:
    recipients = "".join(
        f"\r\nFinal-Recipient: rfc822; r{i}@example.com\r\nAction: {a}\r\nStatus: 4.4.1\r\n"
        for i, a in enumerate(actions)
    )
    return "Reporting-MTA: dns; mx.example.org\r\n" + recipients


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        (("delayed",), "delay"),
        (("delayed", "delivered"), "delay"),
        (("delayed", "failed"), "bounce"),
        (("failed",), "bounce"),
        ((), "bounce"),  # says nothing: a bounce, as every MTA meant before RFC 3464
    ],
)
def test_a_delivery_report_is_a_bounce_only_when_something_failed(actions, expected):
    raw = report("delivery-status", "message/delivery-status", dsn_fields(*actions))
    assert expected == parse(raw).kind


def test_other_machine_reports_and_classic_notices():
    abuse = report("feedback-report", "message/feedback-report", "Feedback-Type: abuse\r\n")
    assert "auto-reply" == parse(abuse).kind  # fails nothing
    daemon_mail = "Mail Delivery System <MAILER-DAEMON@mx.example.org>"
    assert "bounce" == kind_of(sender=daemon_mail, subject="Undelivered Mail Returned to Sender")
    late = "Delayed Mail (still being retried)"
    assert "delay" == kind_of(sender=daemon_mail, subject=late)
    # A failure's subject may quote the returned mail's, which may speak of a delay.
    quoted = "Undeliverable: Re: Delayed shipment [#12]"
    assert "bounce" == kind_of(sender=daemon_mail, subject=quoted)
    for bare in ("<MAILER-DAEMON>", "MAILER-DAEMON", "Mail System <postmaster>"):
        assert "bounce" == kind_of(sender=bare)


def test_auto_submitted_no_with_a_comment_is_a_person():
    assert "" == parse(mail(headers={"Auto-Submitted": "no (manual)"})).kind
    assert "auto-reply" == parse(mail(headers={"Auto-Submitted": "auto-replied (vacation)"})).kind


def test_a_bounce_returning_our_mail_as_message_global_names_it():
    raw = dsn("<ours@valuit.com>", "failed", "550 5.1.1 no such user").replace(
        b"text/rfc822-headers", b"message/global"
    )
    msg = parse(raw)
    assert ("bounce", "<ours@valuit.com>") == (msg.kind, msg.bounce_of)


def test_a_read_receipt_and_a_delay_notice_fail_nothing_and_the_receipt_is_noted(
    tmp_path, smtp_server
):
    config = make_config(tmp_path, smtp_server)
    db, ticket, outbox_id = answered_ticket(tmp_path, config)
    daemon.run(config, once=True)
    assert "sent" == status(db, outbox_id)[0]
    ours = outbox.get(db, outbox_id)["message_id"]
    db.execute("UPDATE ticket SET status = 'pending' WHERE id = ?", [ticket])
    db.conn.commit()

    drop(tmp_path, "technical", dsn(ours, "delayed", "451 4.4.1 mailbox busy"))
    drop(tmp_path, "technical", mdn(ours))
    daemon.run(config, once=True)

    assert "sent" == status(db, outbox_id)[0]  # not failed by either
    rows = db.execute(
        "SELECT kind, ticket_id FROM message WHERE direction = 'in' ORDER BY id"
    ).fetchall()
    assert [("", ticket), ("delay", ticket), ("read-receipt", ticket)] == rows
    read_at = db.execute(
        "SELECT read_at FROM message WHERE message_id = ? AND direction = 'out'", [ours]
    ).fetchone()[0]
    assert "2026-11-20T10:00:00.000Z" == read_at  # the receipt's Date
    [event] = [e for e in tickets.events(db, ticket) if e["action"] == "read"]
    assert ("ann@example.com", read_at) == (event["detail"]["by"], event["detail"]["at"])
    assert "pending" == tickets.get(db, ticket)["status"]  # machines reopen nothing

    shown = {m["kind"]: rendered(m) for m in tickets.thread(db, ticket)}
    assert "read by the customer at 2026-11-20 10:00" in rendered(
        next(m for m in tickets.thread(db, ticket) if m["direction"] == "out")
    )
    assert "[delay notice]" in shown["delay"] and "[read receipt]" in shown["read-receipt"]


def rendered(message: dict) -> str:
    console = Console(width=200, record=True)
    console.print(message_view(message, [], ZoneInfo("UTC"), False))
    return console.export_text()


def skipped(db) -> list[str]:
    return [
        json.loads(d)["reason"]
        for (d,) in db.execute("SELECT detail FROM ticket_event WHERE action = 'ack-skipped'")
    ]


def test_google_group_mail_opens_a_ticket_via_list_without_an_acknowledgement(
    tmp_path, smtp_server
):
    config = setup(tmp_path, smtp_server)
    drop(tmp_path, "technical", (FIELD / "02-google-group-precedence-list.eml").read_bytes())
    drop(tmp_path, "technical", mail(sender="Dora <dora@example.org>", headers={
        "List-Id": "<customers.example.org>",
    }))  # fmt: skip
    daemon.run(config, once=True)
    db = open_db(config.database)
    rows = db.execute("SELECT id, via_list, status FROM ticket ORDER BY id").fetchall()
    assert [(1, 1, "new"), (2, 1, "new")] == rows
    assert 0 == db.execute("SELECT count(*) FROM outbox").fetchone()[0]
    assert ["it comes from a mailing list"] * 2 == skipped(db)
    assert ["list", "list"] == [m["kind"] for m in tickets.thread(db, 1) + tickets.thread(db, 2)]
    # Marked in the list and in the thread, and found by is:via-list.
    assert "L" in marks(tickets.get(db, 1), "2026-01-01T00:00:00.000Z").plain
    assert "[via list]" in rendered(tickets.thread(db, 1)[0])
    assert 2 == tickets.count(db, "t.via_list = 1", [])


def test_out_of_office_without_rfc3834_headers_reopens_nothing_and_is_not_acknowledged(
    tmp_path, smtp_server
):
    config = setup(tmp_path, smtp_server)
    drop(tmp_path, "technical", (FIELD / "03-pre-customer-original.eml").read_bytes())
    daemon.run(config, once=True)
    db = open_db(config.database)
    tickets.update(db, 1, tickets.get(db, 1)["version"], "alice", status="resolved")
    acknowledged = db.execute("SELECT count(*) FROM outbox").fetchone()[0]

    for name in ("03-out-of-office-without-rfc3834-headers.eml", "03b-out-of-office-no-token.eml"):
        drop(tmp_path, "technical", (FIELD / name).read_bytes())
    daemon.run(config, once=True)

    assert (1, "resolved") == (acknowledged, tickets.get(db, 1)["status"])
    assert 1 == db.execute("SELECT count(*) FROM ticket").fetchone()[0]
    assert 1 == db.execute("SELECT count(*) FROM outbox").fetchone()[0]  # no acknowledgement
    rows = db.execute(
        "SELECT message_id, kind, ticket_id FROM message WHERE direction = 'in' ORDER BY id"
    ).fetchall()
    assert [
        ("<carla-orig@example.net>", "", 1),
        ("<ooo-1@example.net>", "auto-reply", 1),  # in its thread, by the [#1] token
        ("<ooo-2@example.net>", "auto-reply", None),  # threads nowhere: stored, no ticket
    ] == rows
