"""Helpers for the maintenance-window tests: a config file with a [maintenance] section, the
`desk` command run in-process and its subcommands listed, mail dropped into Maildir folders
and ingested once."""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from db.core.config import Config, load
from db.core.connect import open_db
from ingest import daemon
from tests.conftest import write_config_file
from tui.cli import main

MONTHLY = """
[[maintenance.recurring]]
name = "monthly"
title = "Monthly maintenance"
rrule = "FREQ=MONTHLY;BYDAY=1SU"
start = "02:00"
duration = 120
kind = "monthly"
features = ["Trading"]
"""
_numbers = itertools.count(1)


def write_config(tmp_path: Path, maintenance: str = "", *, zone: str = "Europe/London") -> Path:
    """config.toml with a drop folder per function and a [maintenance] section."""
    return write_config_file(tmp_path, extra=f'\n[maintenance]\nzone = "{zone}"\n{maintenance}')


def desk(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    """Run `desk --config CONFIG ARGS…` in-process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    try:
        code = main(["--config", str(config), *args])
    except SystemExit as exc:  # argparse's own errors and --help
        code = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    return code, out, err


def commands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every subcommand under `parser`, as (its path of names, its parser)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from commands(sub, (*prefix, name))


def desk_json(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> Any:
    code, out, err = desk(capsys, config, *args, "--json")
    assert code in (0, 10, 11, 12), err
    return json.loads(out)


def drop_mail(
    tmp_path: Path,
    subject: str,
    body: str,
    *,
    function: str = "technical",
    sender: str = "ann@example.com",
    reply_to: str | None = None,
) -> str:
    """Write one message into the function's drop folder; returns its Message-ID."""
    msg = EmailMessage()
    number = next(_numbers)
    msg["From"] = sender
    msg["To"] = f"{function}@valuit.com"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<m{number}@example.com>"
    if reply_to:
        msg["In-Reply-To"] = reply_to
    msg.set_content(body)
    folder = tmp_path / "spool" / function / "new"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{number}.eml").write_bytes(msg.as_bytes())
    return msg["Message-ID"]


def ingest(config_path: Path) -> Config:
    """Run the daemon once over the drop folders, as `desk-ingest --once` would."""
    config = load(config_path)
    daemon.run(config, once=True)
    return config


def ticket(config_path: Path, subject: str) -> dict[str, Any]:
    """The ticket with this subject, as stored."""
    db = open_db(load(config_path).database)
    try:
        return next(db.query("SELECT * FROM ticket WHERE subject = ?", [subject]))
    finally:
        db.close()
