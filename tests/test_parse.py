"""Parsing: the known traps of real mail, each turned into text we can store and show."""

from __future__ import annotations

import pytest

from ingest.parse import parse, safe_name
from tests.conftest import mail


def test_repeated_subject_and_message_id_are_text_and_first_wins():
    raw = (
        b"From: a@example.com\r\nSubject: first\r\nSubject: second\r\n"
        b"Message-ID: <one@example.com>\r\nMessage-ID: <two@example.com>\r\n\r\nbody\r\n"
    )
    msg = parse(raw)
    assert ("first", "<one@example.com>") == (msg.subject, msg.message_id)


def test_unencoded_8bit_headers_keep_their_characters():
    raw = "From: Zoë Müller <zoe@example.com>\r\nSubject: Überweisung fehlt\r\n\r\nx\r\n"
    msg = parse(raw.encode("utf-8"))
    assert ("Überweisung fehlt", "Zoë Müller") == (msg.subject, msg.from_name)
    latin1 = parse("Subject: café crème\r\n\r\nx\r\n".encode("latin-1"))
    assert "café crème" == latin1.subject


def test_encoded_words_are_decoded():
    msg = parse(
        b"From: =?utf-8?q?Zo=C3=AB?= <z@example.com>\r\nSubject: =?utf-8?b?w5xiZXI=?=\r\n\r\n"
    )
    assert ("Zoë", "Über") == (msg.from_name, msg.subject)


def test_iso_2022_jp_and_utf7_bodies_are_decoded_and_charsets_recorded():
    jp = parse(
        b"Subject: x\r\nContent-Type: text/plain; charset=iso-2022-jp\r\n\r\n"
        + "残高が違います".encode("iso-2022-jp")
    )
    assert ("残高が違います", "iso-2022-jp") == (jp.body_text, jp.charset_used)
    u7 = parse(
        b"Subject: x\r\nContent-Type: text/plain; charset=utf-7\r\n\r\n" + "Grüße".encode("utf-7")
    )
    assert "Grüße" == u7.body_text


def test_unknown_charset_falls_back_and_records_what_was_used():
    msg = parse(b"Subject: x\r\nContent-Type: text/plain; charset=x-martian\r\n\r\nna\xefve\r\n")
    assert ("naïve\n", "x-martian", "windows-1252") == (
        msg.body_text,
        msg.charset_declared,
        msg.charset_used,
    )


def test_html_and_plain_are_kept_apart():
    raw = (
        b"Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n"
        b"\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain words\r\n--b\r\n"
        b"Content-Type: text/html\r\n\r\n<p>html words</p>\r\n--b--\r\n"
    )
    msg = parse(raw)
    assert "plain words" in msg.body_text and "html" not in msg.body_text
    assert "<p>html words</p>" in msg.body_html


def test_html_only_mail_gets_a_readable_text_rendering():
    raw = (
        b"Subject: x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><body><p>My <b>balance</b> is wrong.</p><table><tr><td>Old</td>"
        b"<td>100</td></tr></table><script>alert(1)</script></body></html>"
    )
    msg = parse(raw)
    assert "My balance is wrong." in msg.body_text
    assert "<" not in msg.body_text and "alert" not in msg.body_text


def test_deeply_nested_mime_is_stored_raw_with_an_error():
    raw = b"Subject: deep\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n" + b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1)
        for i in range(1000)
    )
    msg = parse(raw)
    assert msg.parse_error is not None and "nested" in msg.parse_error
    assert ("deep", raw) == (msg.subject, msg.raw)


def test_dates_missing_unparseable_or_absurd_are_not_trusted():
    assert parse(b"Subject: x\r\n\r\n").sent_at is None
    bad = parse(b"Subject: x\r\nDate: yesterday-ish\r\n\r\n")
    assert (None, "yesterday-ish") == (bad.sent_at, bad.date_header)
    far = parse(b"Subject: x\r\nDate: Fri, 31 Dec 9999 23:59:59 +0000\r\n\r\n")
    assert far.sent_at is None and "ImplausibleDate" in far.defects
    good = parse(b"Subject: x\r\nDate: Wed, 25 Nov 2026 10:00:00 +0100\r\n\r\n")
    assert "2026-11-25T09:00:00.000Z" == good.sent_at


def test_message_id_missing_or_garbage_is_none():
    assert parse(b"Subject: x\r\n\r\n").message_id is None
    assert parse(b"Subject: x\r\nMessage-ID: not an id at all\r\n\r\n").message_id is None


def test_bytes_without_headers_are_unparsed_but_kept():
    msg = parse(b"\x00\x01 just some bytes")
    assert msg.parse_error and "\x00\x01 just some bytes" == msg.body_text


def test_every_field_is_text():
    msg = parse(mail(subject="ok"))
    for name in (
        "subject",
        "from_addr",
        "from_name",
        "body_text",
        "body_html",
        "headers",
        "date_header",
        "charset_declared",
        "charset_used",
        "auto",
    ):
        assert isinstance(getattr(msg, name), str), name


def test_attachment_names_never_become_paths():
    assert "passwd" == safe_name("../../etc/passwd", 0)
    assert "evil.exe" == safe_name("C:\\Windows\\evil.exe", 0)
    assert "a_b.txt" == safe_name("a\x00b.txt", 0)
    assert "invoicefdp.exe" == safe_name("invoice\u202efdp.exe", 0)
    assert "attachment-3" == safe_name("..", 3)
    raw = (
        b"Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: text/plain\r\n\r\nsee file\r\n--b\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="/etc/../../x.pdf"\r\n\r\n%PDF\r\n--b--\r\n'
    )
    (att,) = parse(raw).attachments
    assert ("/etc/../../x.pdf", "x.pdf", b"%PDF") == (att.display_name, att.safe_name, att.data)


def test_delivery_time_comes_from_our_servers_received_header():
    raw = (
        b"Received: from mx.example.net by mail.valuit.com (Postfix) with ESMTPS id 4A\r\n"
        b"\tfor <technical@valuit.com>; Wed, 25 Nov 2026 10:00:01 +0100 (CET)\r\n"
        b"Received: from laptop by mx.example.net; Wed, 25 Nov 2026 09:59:00 +0100\r\n"
        b"Subject: x\r\n\r\nbody\r\n"
    )
    assert "2026-11-25T09:00:01.000Z" == parse(raw).delivered_at
    assert parse(b"Received: garbage\r\nSubject: x\r\n\r\n").delivered_at is None


def test_a_received_header_without_a_readable_date_leaves_the_mail_parsed():
    raw = (
        b"Received: by mail.valuit.com; garbage date\r\n"
        b"From: a@example.com\r\nSubject: x\r\n\r\nok\r\n"
    )
    msg = parse(raw)
    assert (None, None, "ok") == (msg.parse_error, msg.delivered_at, msg.body_text.strip())


# A guard, not a speed measurement: a backtracking pattern made each of these take minutes.
@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: " + b"=?x?q?a " * 60_000 + b"\r\n\r\nx\r\n",
        b"Subject: x\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: text/plain\r\n\r\n \r\n--b\r\nContent-Type: text/html\r\n\r\n"
        + b"<script>" * 250_000
        + b"\r\n--b--\r\n",
        b"Subject: x\r\nContent-Type: text/html\r\n\r\n" + b"<a " * 600_000 + b"\r\n",
    ],
    ids=["open encoded words", "unclosed scripts", "unclosed tags"],
)
def test_hostile_headers_and_html_are_read_in_linear_time(raw):
    assert None is parse(raw).parse_error
