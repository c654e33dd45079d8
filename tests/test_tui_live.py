"""The live list: new and changed tickets show within a second wherever the agent is, on a list
longer than the screen; in Pilot and in a real terminal (tmux)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from db.core.connect import open_db
from db.tickets import live
from tests.test_tui_tmux import TMUX, _capture, _needs_tmux
from tests.tui_helpers import NOW, build_config, deliver, fill, filled_desk, line_text, mail, until
from tui.app import DeskApp
from tui.widgets.ticket_list import TicketList

pytestmark = pytest.mark.anyio
LATER = "2026-11-26T12:30:00Z"


@pytest.fixture
def desk(tmp_path, monkeypatch):
    return filled_desk(tmp_path, monkeypatch, 60)  # longer than a 24-row screen


async def started(pilot) -> TicketList:
    listing = pilot.app.screen.query_one(TicketList)
    await until(pilot, lambda: listing.loaded and listing.current is not None)
    return listing


async def test_at_the_top_a_new_ticket_appears_at_the_top_and_the_cursor_keeps_its_ticket(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(120, 24)) as pilot:
        listing = await started(pilot)
        assert 60 == listing.current["id"]
        deliver(desk.database, mail(99, "Brand new problem"), at=LATER)
        await until(pilot, lambda: listing.total == 61, timeout=1.5)
        await until(pilot, lambda: "Brand new problem" in line_text(listing, 1))
        assert 0 == listing.scroll_y
        assert 60 == listing.current["id"]
        assert "new ↑" not in line_text(listing, 0)


async def test_further_down_the_view_stays_and_a_mark_counts_the_new_ones(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(120, 24)) as pilot:
        listing = await started(pilot)
        for _ in range(30):
            await pilot.press("j")
        watched, row_on_screen = listing.current["id"], listing.cursor - listing.scroll_y
        assert 30 == watched
        deliver(desk.database, mail(98, "First new problem"), at=LATER)
        deliver(desk.database, mail(99, "Second new problem"), at=LATER)
        await until(pilot, lambda: listing.total == 62 and listing.new_above == 2, timeout=1.5)
        await until(pilot, lambda: listing.current is not None)
        assert watched == listing.current["id"]
        assert row_on_screen == listing.cursor - listing.scroll_y
        assert "2 new ↑ g" in line_text(listing, 0)
        await pilot.press("g")
        await until(pilot, lambda: "Second new problem" in line_text(listing, 1))
        assert "First new problem" in line_text(listing, 2)
        assert 0 == listing.new_above
        assert "new ↑" not in line_text(listing, 0)


async def test_a_changed_ticket_deep_down_is_redrawn_without_a_key(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(120, 24)) as pilot:
        listing = await started(pilot)
        await pilot.press(*["j"] * 40)
        assert 20 == listing.current["id"]
        from db.tickets import tickets

        db = open_db(desk.database)
        tickets.update(db, 20, listing.current["version"], "olga", assignee="olga")
        db.close()
        await until(pilot, lambda: (listing.current or {}).get("assignee") == "olga", timeout=1.5)
        assert 20 == listing.current["id"]
        assert 0 == listing.new_above  # a change in place is not new above


def test_the_change_feed_names_the_changed_tickets_and_nothing_when_none_changed(desk):
    watcher = live.Watcher(desk.database)
    try:
        assert watcher.changed() is None
        deliver(desk.database, mail(99, "Brand new problem"), at=LATER)
        assert live.Change(frozenset({61})) == watcher.changed()
        db = open_db(desk.database)
        with db.conn:
            db.execute(  # a source's health only: no ticket
                "INSERT INTO source_state (name, kind, function, updated_at) "
                "VALUES ('x', 'imap', 'sales', ?)",
                [NOW],
            )
        db.close()
        assert live.Change(frozenset()) == watcher.changed()
    finally:
        watcher.close()


def test_a_new_ticket_shows_in_a_real_terminal_while_the_agent_reads_further_down(tmp_path):
    _needs_tmux()
    config = build_config(tmp_path)
    fill(config.database, 60)
    path = tmp_path / "config.toml"
    path.write_text(
        f'[database]\npath = "{config.database}"\n[desk]\ntimezone = "UTC"\nagent = "maria"\n'
    )
    session = f"desk-live-{os.getpid()}"
    desk = Path(sys.executable).parent / "desk"
    env = f"DESK_NOW={NOW} TERM=xterm-256color"
    subprocess.run(
        [TMUX, "new-session", "-d", "-s", session, "-x", "120", "-y", "30",
         f"env {env} {desk} --config {path}"],
        check=True,
    )  # fmt: skip

    def wait_for(text: str) -> str:
        screen = ""
        for _ in range(300):  # a cold start on two busy cores can take a while
            screen = _capture(session)
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not on the screen:\n{screen}")

    try:
        wait_for("#60")
        deliver(config.database, mail(98, "Came on top"), at=LATER)
        wait_for("Came on top")
        subprocess.run([TMUX, "send-keys", "-t", session, *["j"] * 35], check=True)
        wait_for("#27 ")
        deliver(config.database, mail(99, "Came later"), at=LATER)
        screen = wait_for("1 new ↑ g")
        assert "Came later" not in screen
        subprocess.run([TMUX, "send-keys", "-t", session, "g"], check=True)
        wait_for("Came later")
        subprocess.run([TMUX, "send-keys", "-t", session, "q"], check=True)
    finally:
        subprocess.run([TMUX, "kill-session", "-t", session], capture_output=True)
