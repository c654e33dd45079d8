"""Shared fixtures: real SQLite files, configurations, mail builders, and the private Dovecot."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import pytest

from db.core import config as config_module
from db.core.connect import open_db
from db.core.migrations import FUNCTIONS
from tests.dovecot import dovecot_oauth2_server, dovecot_server  # noqa: F401 - fixtures, IMAP tests
from tests.smtp import smtp_server  # noqa: F401 - a fixture, for the mail-out tests

_counter = itertools.count(1)


def build_config(
    tmp_path: Path, extra: dict[str, Any] | None = None, *, functions: tuple[str, ...] = FUNCTIONS
) -> config_module.Config:
    """A configuration with one Maildir drop folder per function under `tmp_path/spool`."""
    data: dict[str, Any] = {
        "database": {"path": str(tmp_path / "desk.db")},
        "addresses": {f"{fn}@valuit.com": fn for fn in FUNCTIONS},
        "source": [
            {"function": fn, "kind": "maildir", "path": str(tmp_path / "spool" / fn)}
            for fn in functions
        ],
    }
    data.update(extra or {})
    return config_module.parse(data, tmp_path / "config.toml")


def write_config_file(
    tmp_path: Path, functions: tuple[str, ...] = FUNCTIONS, *, extra: str = ""
) -> Path:
    """The same configuration as a TOML file, for running the programs as processes; `extra` is
    more TOML appended (further tables)."""
    lines = [f'[database]\npath = "{tmp_path / "desk.db"}"\n', "[addresses]"]
    lines += [f'"{fn}@valuit.com" = "{fn}"' for fn in FUNCTIONS]
    for fn in functions:
        lines.append(
            f'\n[[source]]\nfunction = "{fn}"\nkind = "maildir"\npath = "{tmp_path / "spool" / fn}"'
        )
    lines.append(extra)
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def mail(
    subject: str = "Help please",
    body: str = "Something is wrong.",
    *,
    sender: str = "Ann Example <ann@example.com>",
    to: str = "technical@valuit.com",
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
    date: datetime = datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
) -> bytes:
    """A well-formed message; every call is unique unless `message_id` and text repeat."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id or make_msgid(f"t{next(_counter)}", "example.com")
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return bytes(msg)


def drop(tmp_path: Path, function: str, raw: bytes, name: str | None = None) -> Path:
    """Deliver `raw` into a function's Maildir the way an MTA does: tmp/, then rename to new/."""
    root = tmp_path / "spool" / function
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    name = name or f"{1_700_000_000 + next(_counter)}.t{next(_counter)}.test"
    (root / "tmp" / name).write_bytes(raw)
    (root / "tmp" / name).rename(root / "new" / name)
    return root / "new" / name


@pytest.fixture
def cfg(tmp_path: Path) -> config_module.Config:
    return build_config(tmp_path)


@pytest.fixture
def db(cfg: config_module.Config):
    database = open_db(cfg.database)
    yield database
    database.close()


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio through anyio's pytest plugin."""
    return "asyncio"
