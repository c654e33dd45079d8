"""Internal notes in the ticket's thread, marked and never sent; whom the desk names as agent."""

from __future__ import annotations

import pytest
from textual.widgets import TextArea

from db.core.config import parse
from tests.test_tui_reply import desk, open_composer, query, shown, thread_text  # noqa: F401
from tests.tui_helpers import until
from tui.app import DeskApp
from tui.screens.ticket import TicketScreen
from tui.settings import UNNAMED, load

pytestmark = pytest.mark.anyio


async def test_a_note_shows_in_the_thread_marked_internal_and_is_never_sent(desk):  # noqa: F811
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        composer = await open_composer(pilot)
        await pilot.press("escape")  # nothing written: the composer closes
        screen = app.screen
        assert isinstance(screen, TicketScreen) and composer is not screen
        await pilot.press("n")
        await pilot.press(*"Customer is a VIP, call first")
        await pilot.press("enter")
        await until(pilot, lambda: "Customer is a VIP" in thread_text(screen), timeout=3)
        thread = screen.query_one("#thread")
        note = thread.children[-1]
        assert note.has_class("note") and not note.has_class("message")
        said = shown(note)
        assert "INTERNAL NOTE by maria" in said and "never sent" in said
        # The customer's mail comes first, the note after it.
        assert "My printer is on fire." in shown(thread.children[0])

        await pilot.press("r")  # a reply quotes the customer, never the note
        await until(pilot, lambda: app.screen.original is not None)
        assert "VIP" not in app.screen.query_one(TextArea).text
    assert [] == query(desk, "SELECT id FROM outbox")
    assert [] == query(desk, "SELECT id FROM message WHERE body_text LIKE '%VIP%'")


def test_the_agent_is_the_configured_name_never_the_login_account(tmp_path, monkeypatch):
    monkeypatch.delenv("DESK_USER", raising=False)
    monkeypatch.setenv("USER", "root")
    monkeypatch.setenv("LOGNAME", "root")
    path = tmp_path / "config.toml"
    bare = load(parse({"database": {"path": str(tmp_path / "d.db")}}, path))
    assert (UNNAMED, True) == (bare.agent, bare.unnamed)
    named = load(parse({"database": {"path": "d.db"}, "desk": {"agent": "maria"}}, path))
    assert ("maria", False) == (named.agent, named.unnamed)
    monkeypatch.setenv("DESK_USER", "olga")  # a `desk serve` login
    served = load(parse({"database": {"path": "d.db"}, "desk": {"agent": "maria"}}, path))
    assert "olga" == served.agent


async def test_a_desk_with_no_agent_name_says_where_to_set_it(tmp_path, monkeypatch):
    monkeypatch.delenv("DESK_USER", raising=False)
    config = parse({"database": {"path": str(tmp_path / "d.db")}}, tmp_path / "config.toml")
    app = DeskApp(config)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        said = " ".join(n.message for n in app._notifications)
    assert f'set agent = "your name" under [desk] in {tmp_path / "config.toml"}' in said
    assert 'signed "agent"' in said
