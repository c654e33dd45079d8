"""Hostile subjects in the preview pane, driven by Pilot: markup and terminal escapes in a
customer's subject show as the text they are, never as styling, links or control sequences."""

from __future__ import annotations

import pytest

from tests.tui_helpers import filled_desk, line_text, until
from tui.app import DeskApp
from tui.widgets.ticket_list import TicketList

pytestmark = pytest.mark.anyio

# `fill` gives ticket N the subject HOSTILE[N % 4] when N is a multiple of 7.
SHOWN = {
    28: "[bold red]x[/]",
    21: "[link=file:///etc/passwd]click[/link]",
    14: "␛]0;pwned␇",
    7: "␛[2J cleared",
}


@pytest.fixture
def desk(tmp_path, monkeypatch):
    return filled_desk(tmp_path, monkeypatch)


async def test_the_preview_shows_hostile_subjects_as_plain_text(desk):
    app = DeskApp(desk)
    shown = {}
    async with app.run_test(size=(120, 40)) as pilot:
        listing = app.screen.query_one(TicketList)
        await until(pilot, lambda: listing.loaded)
        preview = app.screen.query_one("#preview")
        body = app.screen.query_one("#preview-body")
        for ticket in sorted(SHOWN, reverse=True):  # the list is newest first, from #30
            for _ in range(listing.current["id"] - ticket):
                await pilot.press("j")
            await until(pilot, lambda t=ticket: preview.shown == t)
            await until(pilot, lambda t=ticket: line_text(body, 0).startswith(f"#{t} "))
            shown[ticket] = line_text(body, 0).rstrip()
    assert {t: f"#{t} {text}" for t, text in SHOWN.items()} == shown
