"""Unsubscribing from maintenance notices as a subscriber's mail client does it: the mailto of
List-Unsubscribe (RFC 2369) through the drop folder and the real daemon, and the RFC 8058
one-click POST to a running `desk serve`. Each removes the subscriber, is confirmed once, and
is never a ticket."""

from __future__ import annotations

import asyncio
import email
import json
import sqlite3
import subprocess
import sys
from email.message import Message
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import aiohttp
import pytest

from tests.conftest import write_config_file
from tests.test_serve import desk as desk_process
from tests.test_serve import serving
from tests.windows_helpers import desk, desk_json, drop_mail, ingest

WEB_URL = "https://desk.example.com"
NOTICES = f"""
[maintenance]
zone = "UTC"

[notices]
subscribers = ["ops@example.com"]
web_url = "{WEB_URL}/"
"""
EMERGENCY = (
    "window", "emergency", "--title", "Database failover", "--expect", "45",
    "--nature", "the primary database stopped answering",
)  # fmt: skip
CONFIRMATION = "You are unsubscribed from maintenance notices"


def notice_to(db: Path, addr: str) -> Message:
    """The first notice mail queued to `addr`, as it goes out."""
    with sqlite3.connect(db) as conn:
        (raw,) = conn.execute(
            "SELECT raw FROM outbox WHERE rcpt = ? AND notice_id IS NOT NULL ORDER BY id", [addr]
        ).fetchone()
    return email.message_from_bytes(raw)


def links(notice: Message) -> list[str]:
    """The URLs of the notice's List-Unsubscribe header, in order (RFC 2369 section 2)."""
    value = " ".join(str(notice["List-Unsubscribe"]).split())
    return [part.strip().strip("<>") for part in value.split(",")]


def mails_to(db: Path, addr: str) -> list[tuple[str, str]]:
    """(subject, status) of every mail queued to `addr`, oldest first."""
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT subject, status FROM outbox WHERE rcpt = ? ORDER BY id", [addr]
        ).fetchall()


def count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchone()[0]


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DESK_NOW", "2026-06-01T10:00:00Z")
    monkeypatch.setenv("DESK_USER", "olga")
    return write_config_file(tmp_path, extra=NOTICES)


def test_each_notice_carries_its_subscribers_own_unsubscribe_links(config: Path, capsys) -> None:
    assert 0 == desk(capsys, config, "subscribers", "add", "dana@example.com")[0]
    assert 0 == desk(capsys, config, *EMERGENCY)[0]
    db = config.parent / "desk.db"
    dana, ops = notice_to(db, "dana@example.com"), notice_to(db, "ops@example.com")
    mailto, https = links(dana)
    token = https.rsplit("/", 1)[1]
    assert f"mailto:general@valuit.com?subject=unsubscribe%20{token}" == mailto
    assert f"{WEB_URL}/status/unsubscribe/{token}" == https
    assert "List-Unsubscribe=One-Click" == dana["List-Unsubscribe-Post"]
    assert 24 == len(token) and "dana" not in token
    assert token not in str(ops["List-Unsubscribe"])  # one token per subscriber


def test_an_unsubscribe_mail_removes_the_subscriber_confirms_once_and_is_no_ticket(
    tmp_path: Path, config: Path, capsys
) -> None:
    assert 0 == desk(capsys, config, "subscribers", "add", "Dana Lee <dana@example.com>")[0]
    assert 0 == desk(capsys, config, *EMERGENCY)[0]
    db = tmp_path / "desk.db"
    mailto = urlsplit(links(notice_to(db, "dana@example.com"))[0])
    to, subject = unquote(mailto.path), parse_qs(mailto.query)["subject"][0]

    # What a mail client's unsubscribe button sends, twice (a second press, a resend).
    for _ in range(2):
        drop_mail(tmp_path, subject, "", function="general", sender="Dana Lee <dana@example.com>")
        ingest(config)
        assert "general@valuit.com" == to
        assert 0 == count(db, "SELECT count(*) FROM ticket")
        assert [
            ("Emergency maintenance in progress: Database failover", "cancelled"),
            (CONFIRMATION, "queued"),
        ] == mails_to(db, "dana@example.com")
    assert 2 == count(db, "SELECT count(*) FROM message WHERE thread_rule = 'unsubscribe'")

    listed = desk_json(capsys, config, "subscribers", "list")
    assert [("ops@example.com", None, None), ("dana@example.com", "mail", "desk-ingest")] == [
        (p["addr"], p["left_via"], p["left_by"]) for p in listed
    ]
    out = desk(capsys, config, "subscribers", "list")[1]
    assert "dana@example.com                  left    2026-06-01 10:00 UTC by mail\n" in out

    # The next notice goes to who is still subscribed, not to dana.
    second = ("window", "emergency", "--title", "Cache failover", "--expect", "30")
    assert 0 == desk(capsys, config, *second)[0]
    assert 2 == len(mails_to(db, "ops@example.com"))
    assert 2 == len(mails_to(db, "dana@example.com"))

    # Reading every message again (`desk-ingest --reparse --all`) opens no ticket for them.
    command = [sys.executable, "-m", "ingest.daemon", "--config", str(config), "--reparse"]
    subprocess.run([*command, "--all"], capture_output=True, timeout=120, check=True)
    assert 0 == count(db, "SELECT count(*) FROM ticket")


def test_the_config_subscriber_leaves_too_and_a_token_that_is_nobodys_is_a_ticket(
    tmp_path: Path, config: Path, capsys
) -> None:
    assert 0 == desk(capsys, config, *EMERGENCY)[0]
    db = tmp_path / "desk.db"
    token = links(notice_to(db, "ops@example.com"))[1].rsplit("/", 1)[1]
    drop_mail(tmp_path, f"unsubscribe {'x' * 24}", "please", function="general")
    drop_mail(tmp_path, f"Re: unsubscribe {token}", "", function="general", sender="ops@x.org")
    ingest(config)
    # The forged token opened a ticket for a person to read; the real one unsubscribed ops.
    assert 1 == count(db, "SELECT count(*) FROM ticket")
    out = desk(capsys, config, "subscribers", "list")[1]
    assert (
        "ops@example.com                   left    2026-06-01 10:00 UTC by mail  "
        "(still in [notices] subscribers; remove it there)\n"
    ) == out.splitlines(keepends=True)[-1]
    assert [] == [p for p in desk_json(capsys, config, "subscribers", "list") if not p["left_at"]]


async def _post(url: str, data: dict[str, str] | None) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:  # no cookie: a mail provider's request
        response = await session.post(url, data=data, allow_redirects=False)
        return response.status, await response.text()


async def _get(url: str) -> int:
    async with aiohttp.ClientSession() as session:
        return (await session.get(url, allow_redirects=False)).status


def test_one_click_post_to_desk_serve_unsubscribes_and_get_or_a_bad_token_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DESK_NOW", "2026-06-01T10:00:00Z")
    extra = f'[addresses]\n"general@valuit.com" = "general"\n{NOTICES}'
    with serving(tmp_path, config_extra=extra) as served:
        assert 0 == desk_process(served.config, "subscribers", "add", "dana@example.com").returncode
        assert 0 == desk_process(served.config, *EMERGENCY).returncode
        https = links(notice_to(served.db, "dana@example.com"))[1]
        local = served.url + urlsplit(https).path  # what the TLS proxy forwards to desk serve
        one_click = {"List-Unsubscribe": "One-Click"}

        def subscribed() -> list[str]:
            listed = desk_process(served.config, "subscribers", "list", "--json").stdout
            return [p["addr"] for p in json.loads(listed) if not p["left_at"]]

        assert 200 == asyncio.run(_get(local))  # a link scanner, or a person's browser
        assert 404 == asyncio.run(_post(local[:-3] + "abc", one_click))[0]
        assert 400 == asyncio.run(_post(local, None))[0]  # no RFC 8058 body
        assert ["ops@example.com", "dana@example.com"] == subscribed()
        assert 1 == len(mails_to(served.db, "dana@example.com"))

        status, page = asyncio.run(_post(local, one_click))
        assert (200, True) == (status, "no more maintenance notices" in page)
        assert ["ops@example.com"] == subscribed()
        assert 200 == asyncio.run(_post(local, one_click))[0]  # a repeat: no second mail
        assert [
            ("Emergency maintenance in progress: Database failover", "cancelled"),
            (CONFIRMATION, "queued"),
        ] == mails_to(served.db, "dana@example.com")
        assert 1 == count(served.db, "SELECT count(*) FROM ticket")  # the fixture's own
        # The status site beside it is read-only, and the desk still needs a login.
        assert 405 == asyncio.run(_post(served.url + "/status/other", one_click))[0]
        assert 401 == asyncio.run(_post(served.url + "/login-free", one_click))[0]
