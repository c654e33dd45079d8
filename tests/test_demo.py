"""Demo and generated mail: the shapes the desk must handle are there, parse cleanly, and land in
Maildirs exactly once."""

from __future__ import annotations

import email
import email.policy
import tracemalloc
from collections import Counter
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from db.core import clock
from db.core.migrations import FUNCTIONS
from ingest.demo import (
    DEMO_BASE,
    demo_messages,
    demo_window,
    generate,
    write_maildir,
    write_spool,
)


def _parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def _defects(msg: EmailMessage) -> list[str]:
    return [f"{msg['Message-ID']}: {defect!r}" for part in msg.walk() for defect in part.defects]


@pytest.fixture(scope="module")
def demo() -> list[tuple[str, EmailMessage, bytes]]:
    return [(function, _parse(raw), raw) for function, raw in demo_messages(DEMO_BASE)]


def test_demo_set_size_and_functions(demo):
    assert 50 <= len(demo) <= 70
    counts = Counter(function for function, _, _ in demo)
    assert set(FUNCTIONS) == set(counts)
    assert all(count >= 5 for count in counts.values()), counts


def test_demo_parses_cleanly_with_unique_ids_in_date_order(demo):
    assert [] == [d for _, msg, _ in demo for d in _defects(msg)]
    ids = [msg["Message-ID"] for _, msg, _ in demo]
    assert len(ids) == len(set(ids))
    dates = [msg["Date"].datetime for _, msg, _ in demo]
    assert sorted(dates) == dates
    assert DEMO_BASE - timedelta(days=3) < dates[0] < dates[-1] < DEMO_BASE + timedelta(days=3)
    for _, msg, _ in demo:
        assert msg["From"] and msg["To"] and msg["Subject"], msg["Message-ID"]
        domain = msg["From"].addresses[0].domain
        assert domain.split(".")[-2:][0] == "example", domain  # RFC 2606 only


def test_demo_is_deterministic_and_follows_the_clock(monkeypatch):
    assert demo_messages(DEMO_BASE) == demo_messages(DEMO_BASE)
    monkeypatch.setenv("DESK_NOW", "2027-03-10T12:00:00Z")
    expected_base = clock.parse("2027-03-07T12:00:00Z")
    assert demo_messages(expected_base) == demo_messages()
    assert (expected_base - timedelta(hours=56), expected_base - timedelta(hours=52)) == (
        demo_window()
    )


def test_demo_replies_point_at_earlier_messages(demo):
    seen: set[str] = set()
    replies = 0
    for _, msg, _ in demo:
        if msg["In-Reply-To"] and not msg["Auto-Submitted"]:
            replies += 1
            assert msg["In-Reply-To"] in seen
            assert str(msg["Subject"]).startswith("Re: ")
            assert msg["In-Reply-To"] in str(msg["References"]).split()
        seen.add(msg["Message-ID"])
    assert replies >= 8
    plain = [msg.get_content() for _, msg, _ in demo if msg.get_content_type() == "text/plain"]
    quoting = [text for text in plain if "wrote:\n> " in text]
    assert quoting, "a reply quoting the previous message with '> ' lines"


def test_demo_has_the_advertised_shapes(demo):
    by_type = Counter(msg.get_content_type() for _, msg, _ in demo)
    assert 1 == by_type["text/html"]
    assert 1 == by_type["multipart/mixed"]
    assert 1 == by_type["multipart/report"]
    attachment = next(msg for _, msg, _ in demo if msg.get_content_type() == "multipart/mixed")
    (pdf,) = attachment.iter_attachments()
    assert ("application/pdf", "statement-2026-10.pdf") == (
        pdf.get_content_type(),
        pdf.get_filename(),
    )
    assert pdf.get_content().startswith(b"%PDF-") and len(pdf.get_content()) > 2000
    html = next(msg for _, msg, _ in demo if msg.get_content_type() == "text/html")
    assert "<table" in html.get_content() and "<a href=" in html.get_content()
    ooo = [msg for _, msg, _ in demo if msg["X-Autoreply"] == "yes"]
    assert ["auto-replied"] == [msg["Auto-Submitted"] for msg in ooo]
    encodings = {(m.get_content_charset(), m["Content-Transfer-Encoding"]) for _, m, _ in demo}
    assert {("iso-8859-1", "quoted-printable"), ("utf-8", "base64")} <= encodings
    latin = next(m for _, m, _ in demo if m.get_content_charset() == "iso-8859-1")
    assert "préfère" in latin.get_content()
    names = {msg["From"].addresses[0].display_name for _, msg, _ in demo}
    assert {"Zoë Müller", "Łukasz Nowak", "李伟"} <= names
    both = [(f, m) for f, m, _ in demo if "compliance@valuit.com" in str(m["Cc"] or "")]
    assert both and all("technical" == f and "technical@" in str(m["To"]) for f, m in both)


def test_demo_bounce_carries_an_earlier_message_id(demo):
    ids = [msg["Message-ID"] for _, msg, _ in demo]
    (index,) = [
        i for i, (_, msg, _) in enumerate(demo) if msg.get_content_type() == "multipart/report"
    ]
    _, bounce, raw = demo[index]
    assert "delivery-status" == bounce.get_param("report-type")
    assert b"\nReturn-Path: <>\n" in raw.split(b"\n\n")[0]
    assert "mailer-daemon" == bounce["From"].addresses[0].username.lower()
    parts = [part.get_content_type() for part in bounce.iter_parts()]
    assert ["text/plain", "message/delivery-status", "text/rfc822-headers"] == parts
    headers = list(bounce.iter_parts())[2].get_payload(decode=True).decode()
    original = [mid for mid in ids[:index] if f"Message-ID: {mid}" in headers]
    assert 1 == len(original)


def test_discrepancy_reports_mostly_to_technical_and_general(demo):
    words = ("looks wrong", "missing", "twice", "different amount", "duplicated", "shifted")
    hits = [f for f, msg, _ in demo if any(w in str(msg["Subject"]).lower() for w in words)]
    assert len(hits) >= 5
    assert sum(f in ("technical", "general") for f in hits) == len(hits)


def test_write_spool_seeds_once(tmp_path: Path):
    expected = len(demo_messages(DEMO_BASE))
    assert expected == write_spool(tmp_path, DEMO_BASE)
    assert 0 == write_spool(tmp_path, DEMO_BASE)
    assert (tmp_path / ".seeded").exists()
    files = [p for f in FUNCTIONS for p in (tmp_path / f / "new").iterdir()]
    assert expected == len(files)
    assert all(":" not in p.name for p in files)
    for function in FUNCTIONS:
        assert [] == list((tmp_path / function / "tmp").iterdir())
        assert (tmp_path / function / "cur").is_dir()
    raws = sorted(p.read_bytes() for p in files)
    assert sorted(raw for _, raw in demo_messages(DEMO_BASE)) == raws


def test_write_maildir_single_folder_and_unknown_function(tmp_path: Path):
    assert 3 == write_maildir(tmp_path / "one", generate(3), per_function=False)
    assert 3 == len(list((tmp_path / "one" / "new").iterdir()))
    with pytest.raises(ValueError, match="unknown function"):
        write_maildir(tmp_path / "bad", [("../etc", b"Subject: x\n\nx\n")])


def test_generate_shapes_and_threads():
    seen: set[str] = set()
    bodies: set[bytes] = set()
    shapes: Counter[str] = Counter()
    for function, raw in generate(500):
        assert function in FUNCTIONS
        msg = _parse(raw)
        assert [] == _defects(msg)
        assert msg["Message-ID"] not in seen
        shape = msg.get_content_type()
        if msg["Auto-Submitted"] == "auto-replied":
            shape = "auto-reply"
        elif msg["In-Reply-To"]:
            shape = "reply"
            assert msg["In-Reply-To"] in seen
            assert "\n> " in msg.get_content()
        elif shape == "text/plain":
            assert 300 <= len(raw) <= 3072
        elif shape == "multipart/mixed":
            (attachment,) = msg.iter_attachments()
            assert 5_000 <= len(attachment.get_payload()) <= 61_440
        seen.add(msg["Message-ID"])
        bodies.add(raw.split(b"\n\n", 1)[1])
        shapes[shape] += 1
    assert 500 == len(seen) == len(bodies)
    kinds = {"text/plain", "multipart/alternative", "reply", "multipart/mixed", "auto-reply"}
    assert kinds == set(shapes)
    assert 0.6 <= shapes["text/plain"] / 500 <= 0.8, shapes


def test_generate_is_deterministic_and_streams():
    assert list(generate(50, seed=3)) == list(generate(50, seed=3))
    assert list(generate(50, seed=3)) != list(generate(50, seed=4))
    tracemalloc.start()
    try:
        total = sum(len(raw) for _, raw in generate(3000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total > 5_000_000  # what a list of them all would hold
    assert peak < 2_000_000, peak
