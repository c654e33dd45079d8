"""SVG snapshots of the main screen, a ticket, search and help: fixed clock, data and size.

`make snapshot-update` accepts new ones after a deliberate change to the look."""

from __future__ import annotations

import pytest

from db.core import clock
from db.core.connect import open_db
from db.mailin import sources
from tests.tui_helpers import NOW, add_windows, build_config, fill, until
from tui.app import DeskApp
from tui.screens.help import HelpScreen
from tui.screens.ticket import TicketScreen
from tui.widgets.ticket_list import TicketList

SIZE = (120, 36)


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("DESK_NOW", NOW)
    monkeypatch.setenv("HOME", str(tmp_path))
    config = build_config(tmp_path)
    fill(config.database, 30)
    add_windows(config.database)
    db = open_db(config.database)
    with clock.fixed_at(NOW):
        sources.register(db, "technical-imap", "imap", "technical")
        sources.succeeded(db, "technical-imap", "idle")
        sources.register(db, "sales-imap", "imap", "sales")
        sources.set_state(db, "sales-imap", "backing-off", error="login refused by server")
    db.close()
    return DeskApp(config)


async def settled(pilot) -> None:
    screen = pilot.app.screen
    listing = screen.query_one(TicketList)
    await until(pilot, lambda: listing.loaded and listing.current is not None)
    if screen.preview_on:  # hidden on a short screen
        await until(pilot, lambda: screen.query_one("#preview").shown == listing.current["id"])
    await until(pilot, lambda: "W1" in str(screen.query_one("#banner").render()))
    await pilot.pause(0.1)


def test_main_screen(app, snap_compare):
    assert snap_compare(app, terminal_size=SIZE, run_before=settled)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_main_screen_at(app, snap_compare, size):
    assert snap_compare(app, terminal_size=size, run_before=settled)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_ticket_screen_at(app, snap_compare, size):
    async def opened(pilot) -> None:
        await settled(pilot)
        await pilot.press("j", "j", "enter")
        await until(pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen.data)
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=size, run_before=opened)


def test_ticket_screen(app, snap_compare):
    async def opened(pilot) -> None:
        await settled(pilot)
        await pilot.press("j", "j", "enter")
        await until(pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen.data)
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=SIZE, run_before=opened)


def test_search(app, snap_compare):
    async def searched(pilot) -> None:
        await settled(pilot)
        await pilot.press("slash", *"fn:general question", "enter")
        listing = app.screen.query_one(TicketList)
        await until(pilot, lambda: listing.total == 5 and listing.current is not None)
        await until(pilot, lambda: app.screen.query_one("#preview").shown == listing.current["id"])
        await pilot.press("slash")
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=SIZE, run_before=searched)


def test_help(app, snap_compare):
    async def helped(pilot) -> None:
        await settled(pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen) and app.screen.is_mounted)
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=helped)
