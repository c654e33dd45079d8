"""Fixtures and builders for the desk's TUI tests: a real database filled through the store,
an app on it, and a way to wait for the workers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from db.core import clock
from db.core import config as config_module
from db.core.config import Config
from db.core.connect import open_db
from db.core.migrations import FUNCTIONS
from db.mailin.model import Delivery
from db.mailin.store import store_batch
from ingest.parse import parse

NOW = "2026-11-26T12:00:00Z"
HOSTILE = (
    "[bold red]x[/]",
    "[link=file:///etc/passwd]click[/link]",
    "\x1b]0;pwned\x07",
    "\x1b[2J cleared",
)


def build_config(tmp_path: Path, desk: dict[str, Any] | None = None, **extra: Any) -> Config:
    data: dict[str, Any] = {
        "database": {"path": str(tmp_path / "desk.db")},
        "desk": {"timezone": "UTC", "agent": "maria", **(desk or {})},
        **extra,
    }
    return config_module.parse(data, tmp_path / "config.toml")


def mail(
    n: int,
    subject: str,
    *,
    function: str = "technical",
    sender: str = "",
    body: str = "",
    reply_to: int | None = None,
    attachment: tuple[str, bytes] | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender or f"Customer {n} <c{n}@example.com>"
    msg["To"] = f"{function}@valuit.com"
    msg["Subject"] = subject
    msg["Date"] = "Thu, 26 Nov 2026 10:00:00 +0000"
    msg["Message-ID"] = f"<m{n}@example.com>"
    if reply_to is not None:
        msg["In-Reply-To"] = f"<m{reply_to}@example.com>"
    msg.set_content(body or f"Message {n} about {subject}.\nSecond line.")
    if attachment:
        msg.add_attachment(
            attachment[1], maintype="application", subtype="octet-stream", filename=attachment[0]
        )
    return bytes(msg)


def deliver(path: Path, raw: bytes, function: str = "technical", at: str = NOW) -> None:
    """Store one message the way the daemon does, from its own connection."""
    db = open_db(path)
    with clock.fixed_at(at):
        store_batch(
            db, [(parse(raw), Delivery(f"{function}-maildir", raw.hex()[:40], (function,)))]
        )
    db.close()


def filled_desk(
    tmp_path: Path, monkeypatch: Any, count: int = 30, desk: dict[str, Any] | None = None
) -> Config:
    """A desk at NOW (`DESK_NOW`) over `count` tickets (`fill`), `desk` its [desk] settings."""
    monkeypatch.setenv("DESK_NOW", NOW)
    config = build_config(tmp_path, desk)
    fill(config.database, count)
    return config


def fill(path: Path, count: int = 30) -> None:
    """`count` tickets an hour apart (the newest at NOW), functions in turn, hostile subjects
    among them, one with a reply and one with an attachment."""
    db = open_db(path)
    for i in range(1, count + 1):
        function = FUNCTIONS[i % len(FUNCTIONS)]
        subject = HOSTILE[i % len(HOSTILE)] if i % 7 == 0 else f"Question {i} about invoices"
        at = clock.iso(clock.parse(NOW) - timedelta(hours=count - i, minutes=7))
        raw = mail(
            i,
            subject,
            function=function,
            attachment=("../../etc/passwd", b"secret") if i == 3 else None,
        )
        with clock.fixed_at(at):
            store_batch(db, [(parse(raw), Delivery(f"{function}-maildir", f"k{i}", (function,)))])
    db.close()


async def until(pilot: Pilot, condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the app run until `condition()` holds; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {condition}")
        await pilot.pause(0.02)


def line_text(widget: Any, y: int) -> str:
    """The plain text of one rendered line of a line-rendering widget."""
    return "".join(segment.text for segment in widget.render_line(y))


def add_windows(path: Path) -> None:
    """An emergency window in force at NOW and a monthly one starting a day later."""
    from db.maintenance import windows

    db = open_db(path)
    with clock.fixed_at(clock.iso(clock.parse(NOW) - timedelta(minutes=30))):
        windows.emergency(
            db,
            title="Database failover",
            expected_minutes=120,
            nature="primary database host failed",
            actor="ops",
            zone="UTC",
            features=("payments", "exports"),
        )
    with clock.fixed_at(NOW):
        start = clock.parse(NOW) + timedelta(hours=24)
        windows.add(
            db,
            title="Monthly patching",
            kind="monthly",
            update_type="security",
            start=start,
            end=start + timedelta(hours=2),
            zone="UTC",
            actor="ops",
            force_reason="test data",
        )
    db.close()
