"""The body as a mail client chooses it, the other text shown after it (inline parts, a report's
fields), calendars, TNEF and mails forwarded as attachments."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console

from db.core.connect import open_db
from db.mailin.invitation import render
from db.tickets import tickets
from ingest import daemon
from ingest.body import MAX_FORWARDED, MAX_PARTS, reflow
from ingest.parse import parse
from tests.conftest import drop
from tests.tui_helpers import NOW, build_config, deliver, until
from tui.app import DeskApp
from tui.screens.ticket import TicketScreen

FIELD = Path(__file__).parent / "fixtures" / "field-mail"
TNEF = Path(__file__).parent / "fixtures" / "tnef"
HEAD = (
    b"From: Ann <ann@example.com>\r\nTo: technical@valuit.com\r\nSubject: s\r\n"
    b"MIME-Version: 1.0\r\n"
)


def mime(content_type: str, *parts: bytes, boundary: str = "b") -> bytes:
    """A message (or, without HEAD, a part) of `parts` under one boundary."""
    body = b"".join(b"--%s\r\n%s\r\n" % (boundary.encode(), p) for p in parts)
    return b'Content-Type: %s; boundary="%s"\r\n\r\n%s--%s--\r\n' % (
        content_type.encode(),
        boundary.encode(),
        body,
        boundary.encode(),
    )


def part(content_type: str, text: str, extra: str = "") -> bytes:
    return f"Content-Type: {content_type}\r\n{extra}\r\n{text}\r\n".encode()


def names(msg) -> list[tuple[str, str]]:
    return [(a.display_name, a.content_type) for a in msg.attachments]


# The body


def test_a_blank_text_alternative_does_not_hide_the_html_one():
    msg = parse((FIELD / "18-blank-text-plain-alternative-real-html.eml").read_bytes())
    assert "Hello,\n\nmy May statement is missing from the portal.\n\nKai" == msg.body_text
    assert "<b>May statement</b>" in msg.body_html


def test_html_that_shows_nothing_does_not_hide_the_text_alternative_either():
    raw = HEAD + mime(
        "multipart/alternative",
        part("text/plain", "the words"),
        part("text/html", "<html><body><p>&nbsp;</p></body></html>"),
    )
    assert "the words" == parse(raw).body_text.strip()


def test_a_named_inline_text_part_is_body_and_attachment_as_thunderbird_shows_it():
    raw = HEAD + mime(
        "multipart/mixed",
        part('text/plain; name="error.log"', "Traceback: disk full"),
        part("application/pdf", "JVBERi0=", "Content-Transfer-Encoding: base64\r\n"),
        part("text/plain", "kept apart", 'Content-Disposition: attachment; filename="a.txt"\r\n'),
    )
    msg = parse(raw)
    assert "Traceback: disk full" == msg.body_text.strip()
    assert [
        ("error.log", "text/plain"),
        ("part-2", "application/pdf"),
        ("a.txt", "text/plain"),
    ] == names(msg)


def shown(msg) -> list[tuple[str, str, str]]:
    """The parts kept to show after the body: name, content type, text."""
    return [(a.display_name, a.content_type, a.data.decode()) for a in msg.attachments if a.inline]


APPLE_MAIL = HEAD + mime(
    "multipart/mixed",
    part("text/plain; charset=us-ascii", "Here is the screenshot:"),
    part(
        'image/png; name="shot.png"',
        "iVBORw0=",
        'Content-Transfer-Encoding: base64\r\nContent-Disposition: inline; filename="shot.png"\r\n',
    ),
    part("text/plain; charset=iso-8859-1", "Grüße, Ann", "Content-Transfer-Encoding: 8bit\r\n"),
).replace("Grüße".encode(), "Grüße".encode("latin-1"))


def test_text_after_an_image_is_shown_after_the_body_and_kept():
    # Apple Mail sends text / image / text; the body is the first text, as get_body() finds it.
    msg = parse(APPLE_MAIL)
    assert "Here is the screenshot:\n" == msg.body_text
    assert [
        ("shot.png", "image/png", False),
        ("part-3.txt", "text/plain", True),
    ] == [(a.display_name, a.content_type, a.inline) for a in msg.attachments]
    assert [("part-3.txt", "text/plain", "Grüße, Ann\n")] == shown(msg)


def test_a_second_inline_text_part_and_a_list_footer_are_shown_not_joined():
    raw = HEAD + mime(
        "multipart/mixed",
        mime(
            "multipart/alternative",
            part("text/plain", "The question."),
            part("text/html", "<p>The <b>question</b>.</p>"),
            boundary="a",
        ),
        part("text/plain", "second part"),
        part('text/html; name="footer.html"', "<p>Unsubscribe: <i>here</i></p>"),
    )
    msg = parse(raw)
    assert ("The question.\n", "<p>The <b>question</b>.</p>\n") == (msg.body_text, msg.body_html)
    assert [
        ("part-4.txt", "text/plain", "second part\n"),
        ("footer.html", "text/html", "<p>Unsubscribe: <i>here</i></p>\n"),
    ] == shown(msg)


def test_a_blank_text_alternative_gives_way_to_its_html_not_to_a_footer_after_it():
    raw = HEAD + mime(
        "multipart/mixed",
        mime(
            "multipart/alternative",
            part("text/plain", " \r\n"),
            part("text/html", "<p>Hello</p>"),
            boundary="a",
        ),
        part("text/plain", "-- \r\nlist footer"),
    )
    msg = parse(raw)
    assert ("Hello", [("part-4.txt", "text/plain", "-- \nlist footer\n")]) == (
        msg.body_text,
        shown(msg),
    )


def test_a_read_receipt_s_fields_are_kept_apart_from_its_text():
    raw = HEAD + mime(
        "multipart/report; report-type=disposition-notification",
        part("text/plain", "Your message was displayed."),
        part(
            "message/disposition-notification",
            "Reporting-UA: mail.example.com\r\nFinal-Recipient: rfc822; ann@example.com\r\n"
            "Original-Message-ID: <q@valuit.com>\r\n"
            "Disposition: manual-action/MDN-sent-manually; displayed\r\n",
        ),
    )
    msg = parse(raw)
    assert ("read-receipt", "<q@valuit.com>") == (msg.kind, msg.receipt_of)
    assert "Your message was displayed.\n" == msg.body_text
    [(name, content_type, text)] = shown(msg)
    assert ("disposition-notification.txt", "message/disposition-notification") == (
        name,
        content_type,
    )
    assert "Original-Message-ID: <q@valuit.com>\nDisposition: manual-action" in text


def test_in_a_related_part_only_the_start_part_can_be_the_body():
    raw = HEAD + mime(
        'multipart/related; type="text/html"; start="<root@x>"',
        part("text/plain", "a text resource", "Content-ID: <notes@x>\r\n"),
        part("text/html", "<p>the page</p>", "Content-ID: <root@x>\r\n"),
        part(
            "image/png", "iVBORw0=", "Content-ID: <i1@x>\r\nContent-Transfer-Encoding: base64\r\n"
        ),
    )
    msg = parse(raw)
    assert "the page" == msg.body_text
    assert [("part-1.txt", "text/plain", "a text resource\n")] == shown(msg)
    without_start = raw.replace(b'; start="<root@x>"', b"")
    assert "a text resource\n" == parse(without_start).body_text


def test_a_mail_client_shows_one_alternative_so_the_others_are_not_shown_again():
    raw = HEAD + mime(
        "multipart/alternative",
        part("text/plain", "words"),
        part("text/plain", "the same words, other format"),
        part("text/html", "<p>words</p>"),
    )
    msg = parse(raw)
    assert ("words\n", []) == (msg.body_text, shown(msg))


@pytest.mark.parametrize(
    ("header", "boundary"),
    [
        # folded inside the quotes: the sender meant no blank
        (b'multipart/mixed; boundary="----=_Part_1234\r\n 5678"', "----=_Part_12345678"),
        # folded at a blank that is part of the boundary (RFC 5322 unfolding keeps it)
        (b'multipart/mixed; boundary="----=_Part_1234\r\n 5678"', "----=_Part_1234 5678"),
        (b'multipart/mixed;\r\n\tboundary="----=_Part_99"', "----=_Part_99"),
        (b'multipart/mixed;\r\n boundary*0="----=_Pa";\r\n boundary*1="rt_7"', "----=_Part_7"),
    ],
)
def test_a_folded_boundary_is_read_whole(header, boundary):
    b = boundary.encode()
    raw = (
        HEAD
        + b"Content-Type: "
        + header
        + b"\r\n\r\n--%s\r\nContent-Type: text/plain\r\n\r\nthe body\r\n--%s\r\n"
        b'Content-Type: application/pdf; name="x.pdf"\r\n\r\n%%PDF\r\n--%s--\r\n' % (b, b, b)
    )
    msg = parse(raw)
    assert ("the body", [("x.pdf", "application/pdf")]) == (msg.body_text.strip(), names(msg))


def test_nested_multiparts_pick_the_best_alternative_at_each_level():
    related = mime(
        "multipart/related",
        part("text/html", "<p>rich <b>words</b></p>"),
        part("image/png", "iVBORw0=", "Content-ID: <i1>\r\nContent-Transfer-Encoding: base64\r\n"),
        boundary="r",
    )
    raw = HEAD + mime(
        "multipart/mixed",
        mime("multipart/alternative", part("text/plain", "plain words"), related, boundary="a"),
        part(
            "application/pdf", "JVBERi0=", 'Content-Disposition: attachment; filename="i.pdf"\r\n'
        ),
        mime("multipart/alternative", part("text/plain", " "), related, boundary="a2"),
        boundary="m",
    )
    msg = parse(raw)
    # The first alternative is the body; the second, its text blank, shows its HTML after it.
    assert "plain words\n" == msg.body_text
    assert "<b>words</b>" in msg.body_html
    assert [
        ("part-5", "image/png", False),
        ("i.pdf", "application/pdf", False),
        ("part-10.html", "text/html", True),
        ("part-11", "image/png", False),
    ] == [(a.display_name, a.content_type, a.inline) for a in msg.attachments]


def test_format_flowed_is_reflowed_with_quotes_and_signature_kept():
    text = (
        "This is a long \r\nparagraph that \r\nflows.\r\n"
        "> quoted and \r\n> flowing\r\n"
        ">> deeper\r\n"
        " From the start, stuffed\r\n"
        "-- \r\nAnn\r\n"
    )
    raw = HEAD + b"Content-Type: text/plain; charset=utf-8; format=flowed\r\n\r\n" + text.encode()
    expected = (
        "This is a long paragraph that flows.\n"
        "> quoted and flowing\n"
        ">> deeper\n"
        "From the start, stuffed\n"
        "-- \nAnn\n"
    )
    assert expected == parse(raw).body_text


def test_delsp_yes_removes_the_space_that_marked_the_flow():
    assert "Grüße aus Berlin\n" == reflow("Grü \nße aus  \nBerlin\n", delsp=True)
    assert "Grü ße aus Berlin\n" == reflow("Grü \nße aus \nBerlin\n", delsp=False)


# Calendars


def test_a_calendar_only_invitation_reads_as_title_time_place_and_organiser():
    msg = parse((FIELD / "14-calendar-only-body-text-calendar.eml").read_bytes())
    assert msg.body_text.startswith(
        "Invitation: Reconciliation call\n"
        "When: Thu 14 May 2026, 13:00 – 14:00 UTC\n"
        "Where: Teams\n"
        "Organiser: Frank Planner <frank@example.com>\n\n"
        "Agenda: reconcile the statement differences after\nthe maintenance."
    )
    assert [("invite.ics", "text/calendar")] == names(msg)
    assert ("utf-8", "utf-8") == (msg.charset_declared, msg.charset_used)


def test_the_invitation_renders_in_the_viewers_zone():
    ics = parse((FIELD / "14-calendar-only-body-text-calendar.eml").read_bytes()).attachments[0]
    assert "When: Thu 14 May 2026, 15:00 – 16:00 CEST" in render(
        ics.data, ZoneInfo("Europe/Berlin")
    )
    assert "When: Thu 14 May 2026, 09:00 – 10:00 EDT" in render(
        ics.data, ZoneInfo("America/New_York")
    )


def ics(method: str, event: str) -> bytes:
    return (
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:{method}\r\nBEGIN:VEVENT\r\nUID:1\r\n"
        f"{event}END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


def test_cancellations_replies_all_day_and_repeating_events_say_so():
    cancel = ics("CANCEL", "SUMMARY:Sync\r\nDTSTART:20260514T130000Z\r\nDTEND:20260514T140000Z\r\n")
    assert render(cancel, UTC).startswith("Cancelled: Sync\nWhen: Thu 14 May 2026, 13:00 – 14:00")
    reply = ics("REPLY", "SUMMARY:Sync\r\nATTENDEE;PARTSTAT=DECLINED:mailto:x@example.com\r\n")
    assert "Declined: Sync" == render(reply, UTC)
    days = ics(
        "PUBLISH",
        "SUMMARY:Offsite\r\nDTSTART;VALUE=DATE:20260514\r\nDTEND;VALUE=DATE:20260516\r\n"
        "RRULE:FREQ=WEEKLY;INTERVAL=2;COUNT=3\r\n",
    )
    assert (
        "Event: Offsite\nWhen: Thu 14 May 2026 – Fri 15 May 2026 (all day)\n"
        "Repeats: every 2 weeks, 3 times"
    ) == render(days, UTC)
    assert "" == render(b"BEGIN:VCALENDAR\r\nnot really", UTC)


def test_an_invitation_beside_a_text_body_keeps_the_text_and_the_ics():
    raw = HEAD + mime(
        "multipart/alternative",
        part("text/plain", "Join us."),
        part("text/html", "<p>Join us.</p>"),
        part("text/calendar; method=REQUEST", ics("REQUEST", "SUMMARY:Sync\r\n").decode()),
    )
    msg = parse(raw)
    assert ("Join us.", [("invite.ics", "text/calendar")]) == (msg.body_text.strip(), names(msg))


# TNEF (winmail.dat)


def with_winmail(tnef: bytes, text: str = "") -> bytes:
    return HEAD + mime(
        "multipart/mixed",
        part("text/plain", text),
        part(
            'application/ms-tnef; name="winmail.dat"',
            base64.encodebytes(tnef).decode(),
            "Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; "
            'filename="winmail.dat"\r\n',
        ),
    )


def test_tnef_files_become_attachments_and_winmail_dat_is_kept():
    data = (TNEF / "two-files.tnef").read_bytes()
    msg = parse(with_winmail(data, "See the files."))
    assert "See the files." == msg.body_text.strip()
    assert ["winmail.dat", "AUTHORS", "README"] == [a.safe_name for a in msg.attachments]
    assert data == msg.attachments[0].data
    assert [244, 893] == [len(a.data) for a in msg.attachments[1:]]


def test_tnef_text_is_the_body_of_a_mail_that_has_no_other():
    html = parse(with_winmail((TNEF / "body.tnef").read_bytes()))
    assert html.body_text.startswith("THE BILL OF RIGHTS\n    Amendments 1-10 of the Constitution")
    rtf = parse(with_winmail((TNEF / "rtf.tnef").read_bytes()))
    assert rtf.body_text.endswith(
        "Greg Allen\nSenior Engineer/QADirector Team\nCompuware Corporation"
        "\ngallen@numega.com\n978-287-4494 (Office)\n978-318-6939 (Fax)"
    )


def test_broken_tnef_is_kept_as_it_came():
    msg = parse(with_winmail(b"\x78\x9f\x3e\x22" + b"\xff" * 40, "text"))
    assert (["winmail.dat"], "text") == (
        [a.safe_name for a in msg.attachments],
        msg.body_text.strip(),
    )


# Forwarded mail


def test_a_forwarded_mail_opens_its_own_ticket_with_its_eml_and_a_forwarded_entry(tmp_path, cfg):
    drop(
        tmp_path, "technical", (FIELD / "01-pre-vendor-mail-with-same-message-id.eml").read_bytes()
    )
    daemon.run(cfg, once=True)
    raw = (FIELD / "01-forwarded-eml-attachment-message-rfc822.eml").read_bytes()
    drop(tmp_path, "technical", raw)
    daemon.run(cfg, once=True)
    db = open_db(cfg.database)
    rows = db.execute("SELECT ticket_id, forwarded FROM message ORDER BY id").fetchall()
    assert 2 == len({ticket for ticket, _ in rows})
    assert [
        {
            "from_": "Vendor Billing <billing@vendor.example.com>",
            "date": "Mon, 11 May 2026 16:02:11 +0200",
            "subject": "Invoice 2026-0419 overdue",
            "text": "Dear customer, invoice 2026-0419 for 1,250.00 EUR is overdue.\n",
        }
    ] == json.loads(rows[1][1])
    ((attachment_id, name, ctype),) = db.execute(
        "SELECT id, display_name, content_type FROM attachment"
    ).fetchall()
    assert ("Invoice 2026-0419 overdue.eml", "message/rfc822") == (name, ctype)
    saved_as, data = tickets.attachment_data(db, attachment_id)
    assert "Invoice 2026-0419 overdue.eml" == saved_as
    assert (
        data in raw and data.startswith(b"From: Vendor Billing") and data.endswith(b"overdue.\r\n")
    )


def forward(inner: bytes, extra: str = "", name: str = "", boundary: str = "f") -> bytes:
    disposition = f'Content-Disposition: attachment; filename="{name}"\r\n' if name else ""
    return HEAD + mime(
        "multipart/mixed",
        part("text/plain", "fyi"),
        b"Content-Type: message/rfc822\r\n" + (extra + disposition).encode() + b"\r\n" + inner,
        boundary=boundary,
    )


INNER = (
    b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.com>\r\nSubject: Caf\xc3\xa9 menu\r\n"
    b"Date: Mon, 11 May 2026 16:02:11 +0200\r\nMessage-ID: <inner@example.com>\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>Soup of the day</p>\r\n"
)


def test_a_forwarded_mail_without_a_name_is_saved_as_its_subject_and_threads_nothing():
    msg = parse(forward(INNER))
    assert [("Café menu.eml", "message/rfc822")] == names(msg)
    assert ("Jürgen <j@example.com>", "Café menu", "Soup of the day") == (
        msg.forwarded[0].from_,
        msg.forwarded[0].subject,
        msg.forwarded[0].text,
    )
    assert ([], "fyi") == (msg.bounced_ids, msg.body_text.strip())


def test_a_forwarded_mail_sent_in_base64_is_read_too():
    msg = parse(forward(base64.encodebytes(INNER), "Content-Transfer-Encoding: base64\r\n"))
    assert (INNER, "Soup of the day") == (msg.attachments[0].data, msg.forwarded[0].text)


def test_forwards_inside_forwards_are_each_shown_and_bounded():
    nested = forward(forward(INNER, name="inner.eml"), name="outer.eml", boundary="g")
    msg = parse(nested)
    assert ["s", "Café menu"] == [f.subject for f in msg.forwarded]
    # The inner mail is saved within the outer one: one .eml.
    assert ["outer.eml"] == [a.display_name for a in msg.attachments]
    deep = INNER
    for _ in range(MAX_PARTS):
        deep = b"Subject: fwd\r\nContent-Type: message/rfc822\r\n\r\n" + deep
    msg = parse(HEAD + b"Content-Type: message/rfc822\r\n\r\n" + deep)
    assert (MAX_FORWARDED, 1) == (len(msg.forwarded), len(msg.attachments))


def test_only_a_bounce_s_returned_headers_name_the_mail_that_bounced():
    headers = part("text/rfc822-headers", "Message-ID: <orig@valuit.com>\r\n")
    report = HEAD.replace(b"Ann <ann@example.com>", b"MAILER-DAEMON@example.org") + mime(
        "multipart/report; report-type=delivery-status", part("text/plain", "failed"), headers
    )
    assert ["<orig@valuit.com>"] == parse(report).bounced_ids
    assert [] == parse(HEAD + mime("multipart/mixed", part("text/plain", "x"), headers)).bounced_ids


# The ticket screen


def text_of(static) -> str:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(static.content)
    return console.file.getvalue()


@pytest.mark.anyio
async def test_the_thread_shows_forwarded_mail_and_invitations_in_the_desks_zone(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("DESK_NOW", NOW)
    config = build_config(tmp_path, desk={"timezone": "Europe/Berlin"})
    deliver(
        config.database, (FIELD / "01-forwarded-eml-attachment-message-rfc822.eml").read_bytes()
    )
    deliver(config.database, (FIELD / "14-calendar-only-body-text-calendar.eml").read_bytes())
    app = DeskApp(config)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.push_screen(TicketScreen(1))
        await until(pilot, lambda: bool(app.screen.query(".message")))
        shown = text_of(app.screen.query(".message").first())
        assert (
            "── Forwarded message ──\nFrom: Vendor Billing <billing@vendor.example.com>\n"
            "Date: Mon, 11 May 2026 16:02:11 +0200\nSubject: Invoice 2026-0419 overdue\n"
            "Dear customer, invoice 2026-0419 for 1,250.00 EUR is overdue."
        ) in shown
        await app.push_screen(TicketScreen(2))
        await until(pilot, lambda: bool(app.screen.query(".message")))
        shown = text_of(app.screen.query(".message").first())
        assert "When: Thu 14 May 2026, 15:00 – 16:00 CEST\nWhere: Teams" in shown
        assert "UTC\nWhere" not in shown


@pytest.mark.anyio
async def test_the_thread_shows_other_text_parts_and_a_delivery_report_after_the_body(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("DESK_NOW", NOW)
    config = build_config(tmp_path)
    question = APPLE_MAIL.replace(b"Subject: s", b"Message-ID: <q@example.com>\r\nSubject: s")
    deliver(config.database, question)
    bounce = (
        b"From: MAILER-DAEMON@mx.example.org\r\nTo: technical@valuit.com\r\n"
        b"Subject: Undelivered Mail\r\nMIME-Version: 1.0\r\n"
        + mime(
            "multipart/report; report-type=delivery-status",
            part("text/plain", "Your message could not be delivered."),
            part(
                "message/delivery-status",
                "Reporting-MTA: dns; mx.example.org\r\n\r\n"
                "Final-Recipient: rfc822; ann@example.com\r\nAction: failed\r\n"
                "Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user",
            ),
            part("text/rfc822-headers", "Message-ID: <q@example.com>\r\nSubject: s"),
        )
    )
    deliver(config.database, bounce)
    app = DeskApp(config)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.push_screen(TicketScreen(1))
        await until(pilot, lambda: len(app.screen.query(".message")) == 2)
        question_view, bounce_view = (text_of(v) for v in app.screen.query(".message"))
        expected = "Here is the screenshot:\n\n── part-3.txt ──\nGrüße, Ann\n📎 shot.png"
        assert expected in question_view
        assert (
            "Your message could not be delivered.\n\n── Delivery report ──\n"
            "Reporting-MTA: dns; mx.example.org\n\nFinal-Recipient: rfc822; ann@example.com\n"
            "Action: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 no such user"
        ) in bounce_view
        assert "[bounce]" in bounce_view
