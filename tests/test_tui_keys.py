"""Keys and focus: j/k/g/G in every list and picker, focus back on the list after the panel or a
ticket, the palette's commands before typing, and README and `?` made from the same bindings."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.table import Table
from textual.command import CommandList
from textual.widgets import OptionList, Static

from db.core.connect import open_db
from db.maintenance import discrepancy
from tests.test_tui_reply import shown as shown_lines
from tests.tui_helpers import NOW, add_windows, build_config, fill, until
from tui import keys
from tui.app import DeskApp
from tui.dialogs.choice import ChoiceDialog
from tui.screens.help import HelpScreen
from tui.screens.main import MainScreen
from tui.screens.reply import ReplyScreen
from tui.screens.ticket import TicketScreen
from tui.widgets.discrepancy_panel import DiscrepancyPanel
from tui.widgets.picker import Picker
from tui.widgets.reader import Reader
from tui.widgets.ticket_list import TicketList

pytestmark = pytest.mark.anyio
README = Path(__file__).parent.parent / "README.md"


@pytest.fixture
def desk(tmp_path, monkeypatch):
    monkeypatch.setenv("DESK_NOW", NOW)
    config = build_config(tmp_path)
    fill(config.database, 8)
    add_windows(config.database)
    db = open_db(config.database)
    for number in (3, 5):
        discrepancy.mark(db, number, "olga")
    db.close()
    return config


async def open_list(pilot) -> TicketList:
    listing = pilot.app.screen.query_one(TicketList)
    await until(pilot, lambda: listing.loaded and listing.current is not None)
    return listing


def test_readme_key_tables_are_the_ones_made_from_the_bindings():
    assert keys.markdown() == keys.readme_block(README.read_text(encoding="utf-8")), (
        "README.md's key tables are out of date: run `python -m tui.keys`"
    )


def test_every_binding_of_every_screen_is_described_once_in_its_group():
    described = {ident for _, entries in keys.rows({}) for _, _, ident in entries}
    for owner in (DeskApp, MainScreen, TicketList, TicketScreen, ReplyScreen, DiscrepancyPanel):
        assert {b.id for b in owner.BINDINGS} <= described, owner.__name__
    assert {b.id for b in Picker.BINDINGS} <= described
    assert {b.id for b in Reader.BINDINGS} <= described
    everything = " ".join(what for _, entries in keys.rows({}) for _, what, _ in entries)
    for needed in ("ctrl+p", "retry a failed mail", "read the ticket again", "queue the reply"):
        assert needed in everything or any(
            needed == key for _, entries in keys.rows({}) for key, _, _ in entries
        )


async def test_help_shows_the_same_rows_with_the_agents_remaps(tmp_path, monkeypatch):
    monkeypatch.setenv("DESK_NOW", NOW)
    config = build_config(tmp_path, keys={"assign": "A"})
    fill(config.database, 3)
    app = DeskApp(config)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_list(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        tables = [s.content for s in app.screen.query(Static) if isinstance(s.content, Table)]
        shown = [
            (str(t.title), list(zip(*(map(str, c.cells) for c in t.columns), strict=True)))
            for t in tables
        ]
        assert keys.rows(app.settings.keys) == shown
        on_screen = " ".join(" ".join(shown_lines(s) for s in app.screen.query(Static)).split())
        assert "A assign (`me` is you) assign" in on_screen
        assert "R retry a failed mail of the ticket" in on_screen


async def test_j_k_g_G_move_in_a_picker(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_list(pilot)
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        options = app.screen.query_one(OptionList)
        assert 0 == options.highlighted  # new
        await pilot.press("j", "j")
        assert 2 == options.highlighted
        await pilot.press("k")
        assert 1 == options.highlighted
        await pilot.press("G")
        assert options.option_count - 1 == options.highlighted
        await pilot.press("g")
        assert 0 == options.highlighted


async def test_the_panel_moves_with_j_k_and_focus_comes_back_to_the_list(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        listing = await open_list(pilot)
        panel = app.screen.query_one(DiscrepancyPanel)
        await until(pilot, lambda: panel.display and panel.last_line >= 2)
        await pilot.press("x")
        assert panel.has_focus
        await pilot.press("j")
        assert 1 == panel.cursor_line
        await pilot.press("G")
        assert panel.last_line == panel.cursor_line
        await pilot.press("g")
        assert 0 == panel.cursor_line
        await pilot.press("x")  # x again: back on the list, whose keys work at once
        assert listing.has_focus
        await pilot.press("j")
        assert 1 == listing.cursor
        await pilot.press("x", "escape")  # escape leaves the panel too
        assert listing.has_focus

        await pilot.press("x", "j")  # a report opened from the panel, below the live counts
        while panel.cursor_node.data is None:
            await pilot.press("j")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen.data)
        opened = app.screen.ticket_id
        assert opened in (3, 5)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        assert listing.has_focus
        await pilot.press("k")
        assert 0 == listing.cursor


async def test_the_palette_lists_the_desks_commands_before_anything_is_typed(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_list(pilot)
        await pilot.press("ctrl+p")
        commands = app.screen.query_one(CommandList)

        def prompts() -> list[str]:
            count = commands.option_count
            return [str(commands.get_option_at_index(i).prompt) for i in range(count)]

        # Textual's own commands (theme, quit…) come in too, in an order of their own.
        await until(pilot, lambda: any("Sources' health" in p for p in prompts()))
        names = ("Assign to me", "Search", "Sources' health")
        ours = [name for p in prompts() for name in names if p.startswith(name)]
        assert list(names) == ours


async def test_j_k_g_G_read_the_help(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(120, 30)) as pilot:
        await open_list(pilot)
        await pilot.press("question_mark")
        reader = app.screen.query_one(Reader)
        await pilot.pause(0.1)
        assert reader.has_focus and reader.max_scroll_y > 3
        await pilot.press("j", "j", "j")
        assert 3 == reader.scroll_y
        await pilot.press("k")
        assert 2 == reader.scroll_y
        await pilot.press("G")
        assert reader.max_scroll_y == reader.scroll_y
        await pilot.press("g")
        assert 0 == reader.scroll_y
