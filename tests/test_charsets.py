"""Charsets: every label, encoded word, file name and raw header reads as a mail client reads it."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import quote_from_bytes
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from db.core.connect import open_db
from db.mailin.model import Delivery
from db.mailin.store import store_batch
from db.tickets.tickets import thread
from ingest.charsets import resolve
from ingest.parse import parse
from tui.screens.ticket import message_view

FIELD = Path(__file__).parent / "fixtures" / "field-mail"


def text_mail(body: bytes, charset: str | None = None, subject: bytes = b"x") -> bytes:
    ctype = b"text/plain" + (b"; charset=" + charset.encode() if charset else b"")
    return (
        b"From: a@example.com\r\nDate: Tue, 12 May 2026 09:00:00 +0000\r\nSubject: "
        + subject
        + b"\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: " + ctype + b"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body
    )


def attachment_mail(disposition: bytes) -> bytes:
    return (
        b"From: a@example.com\r\nSubject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; "
        + disposition
        + b"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--b--\r\n"
    )


def test_iso_2022_jp_subject_and_body_with_nec_characters_as_windows_sends_them():
    msg = parse((FIELD / "05-iso2022jp-subject-nec-extension-char.eml").read_bytes())
    assert "FW: 再レイアウト依頼　第24№7　新田　様" == msg.subject
    assert "よろしくお願いします。 No.№7" == msg.body_text.strip()
    assert ("iso-2022-jp", "iso-2022-jp", []) == (
        msg.charset_declared,
        msg.charset_used,
        msg.defects,
    )


def test_latin1_label_over_windows_1252_bytes_reads_as_windows_1252():
    msg = parse((FIELD / "08-latin1-label-with-cp1252-bytes.eml").read_bytes())
    assert "Fee € 5 – “why”?" == msg.subject
    assert (
        'we were charged a fee of € 5… and I don’t see why – "“maintenance”"?'
        == msg.body_text.splitlines()[2]
    )
    assert ("iso-8859-1", "windows-1252") == (msg.charset_declared, msg.charset_used)


def test_labels_resolve_to_the_tables_mail_clients_read_them_with():
    expected = {
        "iso-8859-1": "windows-1252",
        "ISO_8859-1": "windows-1252",
        "latin1": "windows-1252",
        "us-ascii": "windows-1252",
        '"utf-8"': "utf-8",
        "utf8": "utf-8",
        "gb2312": "gb18030",
        "GBK": "gb18030",
        "shift_jis": "cp932",
        "sjis": "cp932",
        "x-sjis": "cp932",
        "euc-kr": "cp949",
        "ks_c_5601-1987": "cp949",
        "big5": "big5hkscs",
        "iso-8859-8-i": "iso-8859-8",
        "tis-620": "cp874",
        "windows-874": "cp874",
        "iso-8859-11": "cp874",
        "iso-2022-jp": "iso-2022-jp",
        "cp50221": "iso-2022-jp",
        "euc-jp": "euc-jp",
        "utf-7": "utf-7",
        "koi8-r": "koi8-r",
        "windows-1251": "windows-1251",
        "utf-8*en": "utf-8",
        "cp850": "cp850",
        "x-martian": None,
        "base64": None,
        "": None,
    }
    assert expected == {label: resolve(label) for label in expected}


# (label, text, how the sender's software wrote it): each text has a character that only the
# superset holds, so Python's strict codec for the label would fail.
KINDS = [
    ("gb2312", "朱镕基的来信", "gbk"),
    ("tis-620", "สวัสดีครับ ราคา €5", "cp874"),
    ("windows-874", "สวัสดีครับ", "cp874"),
    ("iso-8859-8-i", "שלום עולם", "iso8859-8"),
    ("ks_c_5601-1987", "똠방각하 안녕하세요", "cp949"),
    ("big5", "佢哋嘅電腦壞咗", "big5hkscs"),
    ("shift_jis", "①番 №5 ㈱髙橋", "cp932"),
    ("windows-1251", "Счёт на оплату", "cp1251"),
]


@pytest.mark.parametrize(("label", "text", "codec"), KINDS)
def test_bodies_in_loosely_labelled_charsets_read_whole(label, text, codec):
    msg = parse(text_mail(text.encode(codec), label))
    assert (text, []) == (msg.body_text.strip(), msg.defects)


@pytest.mark.parametrize(("label", "text", "codec"), KINDS)
def test_encoded_words_in_those_charsets_in_subject_and_from_name(label, text, codec):
    data = text.encode(codec)
    subject = f"=?{label}?B?{base64.b64encode(data).decode()}?="
    name = f"=?{label}?Q?{quote_from_bytes(data, safe='').replace('%', '=')}?="
    raw = f"From: {name} <p@example.com>\r\nSubject: Re: {subject}\r\n\r\nx\r\n".encode()
    msg = parse(raw)
    assert (f"Re: {text}", text, "p@example.com") == (msg.subject, msg.from_name, msg.from_addr)


def test_encoded_words_split_inside_a_character_or_in_an_unknown_charset_read_whole():
    euro = "€".encode()
    split = b"Subject: =?utf-8?Q?price_=" + b"=".join(b"%02X" % b for b in euro[:1])
    split += b"?= =?utf-8?Q?=" + b"=".join(b"%02X" % b for b in euro[1:]) + b"5?=\r\n\r\n"
    assert "price €5" == parse(split).subject
    assert "café" == parse(b"Subject: =?x-unknown?Q?caf=C3=A9?=\r\n\r\n").subject
    assert "café" == parse(b"Subject: =?x-unknown?Q?caf=E9?=\r\n\r\n").subject
    assert "Grüße" == parse(b"Subject: =?utf-7?Q?Gr+APw-+AN8-e?=\r\n\r\n").subject


def test_iso_2022_jp_with_ibm_extensions_half_width_katakana_and_jis_x_0212():
    body = (
        b"\x1b$B-!-b-j|b\x1b(B "  # ①№㈱ and 髙, an NEC-selected IBM extension (row 92)
        b"\x1b(I123\x1b(B "  # half-width katakana
        b"\x1b$(D6*\x1b(B"  # JIS X 0212
    )
    msg = parse(text_mail(body, "iso-2022-jp"))
    assert ("①№㈱髙 ｱｲｳ 嘅", "iso-2022-jp") == (msg.body_text.strip(), msg.charset_used)


def test_euc_jp_with_nec_characters():
    raw = "お問い合わせ".encode("euc_jp") + b" \xad\xa1 \xad\xe2"  # NEC row 13: ① and №
    msg = parse(text_mail(raw, "euc-jp"))
    assert ("お問い合わせ ① №", "euc-jp", []) == (
        msg.body_text.strip(),
        msg.charset_used,
        msg.defects,
    )


def test_a_few_bad_bytes_keep_the_charset_and_become_replacement_characters():
    utf8 = parse(text_mail("Grüße, ".encode() + b"\xff" + b" bis bald", "utf-8"))
    assert ("Grüße, \ufffd bis bald", "utf-8") == (utf8.body_text.strip(), utf8.charset_used)
    assert "CharsetErrors" in utf8.defects
    gb = parse(text_mail("您好".encode("gbk") + b"\xff" + "谢谢".encode("gbk"), "gb2312"))
    assert ("您好\ufffd谢谢", "gb18030") == (gb.body_text.strip(), gb.charset_used)
    assert "CharsetErrors" in gb.defects


@pytest.mark.parametrize(
    ("text", "codec", "label"),
    [
        ("Здравствуйте, у меня не работает вход в личный кабинет.", "cp1251", None),
        ("Здравствуйте, у меня не работает вход в личный кабинет.", "koi8_r", None),
        ("Добрый день, счёт не пришёл.", "cp1251", "us-ascii"),
        ("Die Überweisung für März fehlt noch. Grüße, Zoë", "cp1252", None),
        ("Je n’ai pas reçu la facture de décembre.", "cp1252", "us-ascii"),
        ("Grüße aus Köln", "utf-8", "us-ascii"),
    ],
)
def test_undeclared_8bit_text_is_utf8_or_detected(text, codec, label):
    msg = parse(text_mail(text.encode(codec), label))
    assert text == msg.body_text.strip()


def test_html_naming_its_charset_only_in_a_meta_tag():
    html = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=koi8-r">'
    html += "</head><body><p>Счёт не пришёл</p></body></html>"
    raw = b"From: a@example.com\r\nSubject: x\r\nContent-Type: text/html\r\n\r\n"
    msg = parse(raw + html.encode("koi8_r"))
    assert ("Счёт не пришёл", "koi8-r") == (msg.body_text.strip(), msg.charset_used)


def test_unknown_label_is_detected_not_shown_raw():
    text = "Здравствуйте, у меня не работает вход в личный кабинет."
    msg = parse(text_mail(text.encode("koi8_r"), "x-cyrillic-local"))
    assert (text, "x-cyrillic-local", "koi8-r") == (
        msg.body_text.strip(),
        msg.charset_declared,
        msg.charset_used,
    )
    assert "UnknownCharset" in msg.defects


def test_raw_8bit_headers_read_in_the_message_charset_or_detected():
    head = "From: Zoë Müller <z@example.com>\r\nSubject: Fee € 5 – “why”?\r\n\r\nx\r\n"
    latin = parse(head.encode("cp1252"))
    assert ("Fee € 5 – “why”?", "Zoë Müller") == (latin.subject, latin.from_name)
    koi = parse(
        "Subject: Счёт не пришёл\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\n".encode(
            "koi8_r"
        )
    )
    assert "Счёт не пришёл" == koi.subject
    jis = b"Subject: \x1b$B%F%9%H\x1b(B 1\r\nFrom: \x1b$B;3ED\x1b(B <y@example.jp>\r\n\r\n"
    assert ("テスト 1", "山田") == (parse(jis).subject, parse(jis).from_name)
    mixed = "From: Zoë <z@example.com>\r\n".encode() + "Subject: Grüße\r\n\r\n".encode("latin-1")
    assert ("Zoë", "Grüße") == (parse(mixed).from_name, parse(mixed).subject)


@pytest.mark.parametrize(
    ("disposition", "name"),
    [
        (b"filename*=gb2312''%D6%EC%E9F%BB%F9.pdf", "朱镕基.pdf"),
        (b"filename*=iso-8859-1'en'Fee%80.txt", "Fee€.txt"),
        (b"filename*0*=utf-8''%E2%82%AC; filename*1*=%20report.pdf", "€ report.pdf"),
        (b'filename="' + "Grüße.txt".encode() + b'"', "Grüße.txt"),
        (b'filename="' + "Счёт.pdf".encode("cp1251") + b'"', "Счёт.pdf"),
        (b'filename="=?shift_jis?B?' + base64.b64encode("①.xls".encode("cp932")) + b'?="', "①.xls"),
    ],
)
def test_attachment_names_in_any_charset(disposition, name):
    (attachment,) = parse(attachment_mail(disposition)).attachments
    assert name == attachment.display_name


LABELS = st.one_of(
    st.sampled_from([k[0] for k in KINDS] + ["utf-7", "iso-2022-jp", "euc-jp", "utf-16"]),
    st.text(st.characters(exclude_characters="\r\n"), max_size=20),
)


@settings(max_examples=300, deadline=None)
@given(label=LABELS, data=st.binary(max_size=300))
def test_any_label_and_bytes_parse_to_text(label, data):
    b64 = base64.b64encode(data)
    name = label.encode("utf-8", "surrogatepass")
    raw = (
        b"From: =?" + name + b"?B?" + b64 + b"?= <a@example.com>\r\n"
        b"Subject: =?" + name + b"?Q?" + quote_from_bytes(data).encode() + b"?=\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: text/plain; charset=" + name + b"\r\n\r\n" + data + b"\r\n"
        b"--b\r\nContent-Disposition: attachment; filename*="
        + name
        + b"''"
        + quote_from_bytes(data).encode()
        + b"\r\n\r\n"
        + data
        + b"\r\n--b--\r\n"
    )
    msg = parse(raw)
    assert msg.parse_error is None
    fields = ["subject", "from_name", "from_addr", "body_text", "body_html", "headers"]
    fields += ["charset_declared", "charset_used"]
    for field in fields:
        value = getattr(msg, field)
        assert isinstance(value, str), field
        value.encode("utf-8")  # storable: no lone surrogates
    for attachment in msg.attachments:
        attachment.display_name.encode("utf-8")


def test_the_headers_view_shows_the_declared_and_the_used_charset(tmp_path):
    db = open_db(tmp_path / "desk.db")
    msg = parse((FIELD / "08-latin1-label-with-cp1252-bytes.eml").read_bytes())
    (stored,) = store_batch(db, [(msg, Delivery("drop", "08", ("technical",)))])
    (row,) = thread(db, stored.ticket_id)
    console = Console(width=200, record=True)
    console.print(message_view(row, [], ZoneInfo("UTC"), headers=True))
    shown = console.export_text()
    assert "charset declared: iso-8859-1 · read as: windows-1252" in shown
    assert "Subject: Fee € 5 – “why”?" in shown


def test_a_charset_parameter_that_cannot_be_read_leaves_the_mail_parsed():
    raw = b"Subject: x\r\nContent-Type: text/plain; charset*=\x00''utf-8\r\n\r\nna\xc3\xafve\r\n"
    msg = parse(raw)
    assert (None, "naïve") == (msg.parse_error, msg.body_text.strip())
