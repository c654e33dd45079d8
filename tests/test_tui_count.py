"""The list's count: a broad search says "1,000+" instead of walking every match, and still
reaches its last ticket; merged tickets stay out of the list until asked for with is:merged."""

from __future__ import annotations

import pytest
from textual.widgets import Static

from bench.tui import generate
from db.core.connect import open_db
from db.tickets import merge
from tests.tui_helpers import NOW, build_config, deliver, line_text, mail, until
from tui.app import DeskApp
from tui.widgets.ticket_list import TicketList

pytestmark = pytest.mark.anyio
MANY = 1_200  # tickets; every one of them says "export" (bench/tui.py's mail)


@pytest.fixture
def many(tmp_path, monkeypatch):
    config = build_config(tmp_path)
    generate(config.database, MANY)  # sets and clears DESK_NOW itself: before ours
    monkeypatch.setenv("DESK_NOW", NOW)
    return config


async def started(pilot) -> TicketList:
    listing = pilot.app.screen.query_one(TicketList)
    await until(pilot, lambda: listing.loaded and listing.current is not None)
    return listing


def search_line(pilot) -> str:
    return str(pilot.app.screen.query_one("#search-line", Static).render())


async def test_a_broad_search_says_1000_plus_and_g_still_reaches_the_last_ticket(many):
    app = DeskApp(many)
    async with app.run_test(size=(120, 30)) as pilot:
        listing = await started(pilot)
        await pilot.press("slash", *"export", "enter")
        await until(pilot, lambda: "1,000+ tickets" in search_line(pilot), timeout=10)
        assert listing.more
        for _ in range(200):  # paging on counts further: past row 1,000
            if listing.cursor > 1_000:
                break
            await pilot.press("pagedown")
        assert listing.cursor > 1_000
        await pilot.press("G")
        await until(pilot, lambda: "1,200 tickets" in search_line(pilot), timeout=10)
        await until(pilot, lambda: listing.current is not None)
        assert MANY - 1 == listing.cursor
        assert 1 == listing.current["id"]  # the oldest activity, last in the list
        await pilot.press("escape", "slash", *"from:user7@example.com", "enter")
        await until(pilot, lambda: "1 ticket " in search_line(pilot), timeout=10)
        assert not listing.more


@pytest.fixture
def merged(tmp_path, monkeypatch):
    """#1 and #2 about one printer; #2 merged into #1."""
    monkeypatch.setenv("DESK_NOW", NOW)
    config = build_config(tmp_path)
    deliver(config.database, mail(1, "Printer jams"), at="2026-11-26T08:00:00Z")
    deliver(config.database, mail(2, "Printer still jams"), at="2026-11-26T09:00:00Z")
    deliver(config.database, mail(3, "Invoice is wrong"), at="2026-11-26T10:00:00Z")
    db = open_db(config.database)
    merge.merge(db, 2, 1, "maria")
    db.close()
    return config


def listed(listing: TicketList) -> list[str]:
    return [line_text(listing, y) for y in range(1, listing.total + 1)]


async def test_merged_tickets_are_left_out_of_the_list_and_found_with_is_merged(merged):
    app = DeskApp(merged)
    async with app.run_test(size=(120, 30)) as pilot:
        listing = await started(pilot)
        await until(pilot, lambda: listing.total == 2)
        assert ["#3", "#1"] == [line.split()[0] for line in listed(listing)]
        await pilot.press("slash", *"is:merged", "enter")
        await until(pilot, lambda: listing.total == 1 and listing.current is not None)
        assert 2 == listing.current["id"]
        assert "closed" in line_text(listing, 1)
        await pilot.press("escape", "slash", *"#2", "enter")  # by its number it is found
        await until(pilot, lambda: listing.current is not None and listing.current["id"] == 2)
