"""The customer's other tickets beside a ticket, and merging, unmerging and splitting from the
ticket screen's keys, on a real database filled through the store."""

from __future__ import annotations

import pytest
from textual.widgets import OptionList

from db.core.connect import open_db
from db.tickets import tickets
from tests.tui_helpers import NOW, build_config, deliver, line_text, mail, until
from tui.app import DeskApp
from tui.dialogs.choice import ChoiceDialog
from tui.dialogs.confirm import ConfirmDialog
from tui.dialogs.merge import MergeDialog
from tui.screens.ticket import TicketScreen
from tui.widgets.customer import CustomerTickets
from tui.widgets.ticket_list import TicketList

pytestmark = pytest.mark.anyio
ANN = "Ann Example <ann@example.com>"


@pytest.fixture
def desk(tmp_path, monkeypatch):
    """Ann's tickets #1 (printer, with a reply), #2 (printer again), #3 (resolved invoice);
    Bob's #4."""
    monkeypatch.setenv("DESK_NOW", NOW)
    config = build_config(tmp_path)
    path = config.database
    deliver(path, mail(1, "Printer jams", sender=ANN), at="2026-11-26T08:00:00Z")
    deliver(path, mail(2, "Printer still jams", sender=ANN), at="2026-11-26T09:00:00Z")
    deliver(path, mail(3, "Invoice 7 is wrong", sender=ANN), at="2026-11-26T10:00:00Z")
    deliver(path, mail(4, "Printer jams too", sender="bob@example.com"), at="2026-11-26T10:30:00Z")
    deliver(path, mail(5, "Re: Printer jams", sender=ANN, reply_to=1), at="2026-11-26T11:00:00Z")
    db = open_db(path)
    tickets.update(db, 3, tickets.get(db, 3)["version"], "maria", status="resolved")
    db.close()
    return config


def read(config, fn, *args):
    db = open_db(config.database)
    try:
        return fn(db, *args)
    finally:
        db.close()


def ticket(config, number: int) -> dict:
    return read(config, tickets.get, number)


def thread_ids(config, number: int) -> list[int]:
    return [m["id"] for m in read(config, tickets.thread, number)]


async def opened(pilot, number: int) -> TicketScreen:
    pilot.app.push_screen(TicketScreen(number))
    await until(pilot, lambda: isinstance(pilot.app.screen, TicketScreen) and pilot.app.screen.data)
    return pilot.app.screen


async def dialog_up(pilot, kind: type) -> None:
    """Wait for a dialog whose option list has the keyboard."""
    await until(
        pilot,
        lambda: (
            isinstance(pilot.app.screen, kind) and pilot.app.screen.query_one(OptionList).has_focus
        ),
    )


def head(screen: TicketScreen) -> str:
    """The ticket's head as one line of plain text, however it wraps."""
    widget = screen.query_one("#ticket-head")
    return " ".join(" ".join(line_text(widget, y) for y in range(widget.size.height)).split())


def options(widget: OptionList) -> list[str]:
    return [str(widget.get_option_at_index(i).prompt) for i in range(widget.option_count)]


async def test_the_customers_other_tickets_are_beside_the_ticket_open_ones_first(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await opened(pilot, 2)
        panel = screen.query_one(CustomerTickets)
        await until(pilot, lambda: panel.display)
        assert "2 other tickets, 1 open" == panel.border_title
        assert ["#1 new Printer jams", "#3 resolved Invoice 7 is wrong"] == options(panel)
        await until(pilot, lambda: "2 other tickets, 1 open (c)" in head(screen))

        await pilot.press("c", "j", "enter")
        await until(pilot, lambda: app.screen is not screen and app.screen.data)
        assert 3 == app.screen.ticket_id
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        assert panel.has_focus  # where the agent left it; escape goes back to the thread
        await pilot.press("escape")
        assert screen.query_one("#thread").has_focus and app.screen is screen

        # Bob has no other ticket: no list, and `c` says so.
        bobs = await opened(pilot, 4)
        assert not bobs.query_one(CustomerTickets).display
        await pilot.press("c")
        await until(pilot, lambda: any("no other tickets" in n.message for n in app._notifications))


async def test_a_narrow_terminal_lists_the_customers_tickets_in_a_dialog(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(90, 30)) as pilot:
        screen = await opened(pilot, 1)
        assert not screen.query_one(CustomerTickets).display
        await until(pilot, lambda: "2 other tickets, 1 open" in head(screen))
        await pilot.press("c")
        await dialog_up(pilot, ChoiceDialog)
        await pilot.press("enter")  # the open one comes first
        await until(pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen.data)
        assert 2 == app.screen.ticket_id


async def test_merge_from_the_ticket_screen_then_undo_it(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await opened(pilot, 2)
        await pilot.press("M")
        await until(pilot, lambda: isinstance(app.screen, MergeDialog) and app.screen.found)
        dialog = app.screen
        # Ann's other tickets first; a query looks further.
        assert [1, 3] == [t["id"] for t in dialog.found]
        await pilot.press(*"printer")
        await until(pilot, lambda: [1, 4] == [t["id"] for t in dialog.found])
        await pilot.press("down", "up", "enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: ticket(desk, 2)["merged_into"] == 1)

        # The screen now shows #1 with #2's mail in its thread and says what was merged in.
        await until(pilot, lambda: screen.ticket_id == 1 and len(screen.data["thread"]) == 3)
        await until(pilot, lambda: "merged in: #2 (U undoes)" in head(screen))
        # Opening #2 again shows #1.
        again = await opened(pilot, 2)
        await until(pilot, lambda: again.ticket_id == 1)
        await pilot.press("escape")

        await pilot.press("U")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: ticket(desk, 2)["merged_into"] is None)
        await until(pilot, lambda: len(screen.data["thread"]) == 2)
        assert [2] == [m["id"] for m in read(desk, tickets.thread, 2)]
        await until(pilot, lambda: "merged in" not in head(screen))


async def test_split_a_message_into_a_new_ticket_where_its_replies_follow(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await opened(pilot, 1)
        first, reply = thread_ids(desk, 1)
        await pilot.press("X")
        await dialog_up(pilot, ChoiceDialog)
        await pilot.press("end", "enter")  # the reply, the last message: no more to choose
        await until(
            pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen is not screen
        )
        new = app.screen
        await until(pilot, lambda: new.data is not None)
        assert 5 == new.ticket_id
        assert [reply] == [m["id"] for m in new.data["thread"]]
        assert [first] == thread_ids(desk, 1)

        # Ann answers the split mail with the old ticket's token: the new ticket shows it live.
        deliver(
            desk.database,
            mail(6, "Re: [#1] Printer jams", sender=ANN, reply_to=5),
            at="2026-11-26T11:30:00Z",
        )
        await until(pilot, lambda: len(new.data["thread"]) == 2)
        assert [first] == thread_ids(desk, 1)


async def test_search_from_an_address_lists_the_customers_tickets(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        listing = app.screen.query_one(TicketList)
        await until(pilot, lambda: listing.loaded and listing.total == 4)
        await pilot.press("slash", *"from:ann@example.com", "enter")
        await until(pilot, lambda: listing.total == 3 and listing.current is not None)
        await pilot.press("slash", "ctrl+a", "ctrl+k", *"from:bob", "enter")
        await until(pilot, lambda: listing.total == 1 and listing.current["id"] == 4)
