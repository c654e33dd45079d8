"""`desk` in a real terminal (tmux): hostile subjects reach the screen as plain text.

Skipped without tmux, unless DESK_REQUIRE_TMUX=1 makes that a failure."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.tui_helpers import NOW, add_windows, deliver, mail

TMUX = shutil.which("tmux")


def _needs_tmux() -> None:
    if TMUX is None:
        if os.environ.get("DESK_REQUIRE_TMUX") == "1":
            pytest.fail("tmux is required (DESK_REQUIRE_TMUX=1) but not installed")
        pytest.skip("tmux is not installed")


SGR = re.compile(r"\x1b\[[0-9;:]*m")


def _capture(session: str) -> str:
    """The screen's text, with colours (-e) removed; any other escape would stay and fail."""
    raw = subprocess.run(
        [TMUX, "capture-pane", "-p", "-e", "-t", session], capture_output=True, text=True
    ).stdout
    return SGR.sub("", raw)


def test_hostile_subjects_arrive_as_plain_text(tmp_path: Path):
    _needs_tmux()
    db = tmp_path / "desk.db"
    subjects = ["[bold red]x[/]", "[link=file:///etc/passwd]", "\x1b]0;pwned\x07", "\x1b[2J"]
    for n, subject in enumerate(subjects, 1):
        deliver(db, mail(n, subject), at=NOW)
    add_windows(db)
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\npath = "{db}"\n[desk]\ntimezone = "UTC"\nagent = "maria"\n')
    session = f"desk-test-{os.getpid()}"
    desk = Path(sys.executable).parent / "desk"
    env = f"DESK_NOW={NOW} TERM=xterm-256color"
    subprocess.run(
        [TMUX, "new-session", "-d", "-s", session, "-x", "120", "-y", "40",
         f"env {env} {desk} --config {config}"],
        check=True,
    )  # fmt: skip
    try:
        screen = ""
        for _ in range(300):  # a cold start on two busy cores can take a while
            time.sleep(0.1)
            screen = _capture(session)
            if "␛[2J" in screen and "pwned" in screen and "MAINTENANCE IN PROGRESS" in screen:
                break
        assert "[bold red]x[/]" in screen
        assert "[link=file:" in screen  # the list cuts long subjects with …
        assert "␛]0;pwned␇" in screen
        assert "␛[2J" in screen
        # The window title was not set by the mail, and the screen is still the desk's.
        title = subprocess.run(
            [TMUX, "display-message", "-p", "-t", session, "#{pane_title}"],
            capture_output=True,
            text=True,
        ).stdout
        assert "pwned" not in title
        assert "MAINTENANCE IN PROGRESS" in screen
        assert "\x1b" not in screen and "\x07" not in screen
        subprocess.run([TMUX, "send-keys", "-t", session, "q"], check=True)
    finally:
        subprocess.run([TMUX, "kill-session", "-t", session], capture_output=True)
