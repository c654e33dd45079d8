"""The main screen's layout at the sizes agents use: the subject gets the room, the sources'
health in a few words with details on a key, 80x24 usable, Help in the footer at 80 and 100 columns,
and mail shown with its sender's line breaks."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from textual.widgets._footer import FooterKey

from db.core import clock
from db.core.connect import open_db
from db.mailin import sources
from tests.test_tui_reply import shown
from tests.tui_helpers import NOW, build_config, deliver, fill, line_text, mail, until
from tui.app import DeskApp
from tui.dialogs.health import HealthDialog
from tui.widgets import ticket_list
from tui.widgets.ticket_list import TicketList

pytestmark = pytest.mark.anyio
SUBJECT = "A long mail with its own line breaks, to check the preview and the list"
BODY = (
    "This is a plain text mail from a customer who writes with her own line\n"
    "breaks, at seventy-two characters or so, the way mail clients always did\n"
    "it; the preview must not cut these lines into ragged pairs.\n"
    "\n"
    "A second paragraph that is one single very long line as a client that leaves the "
    "breaking to the reader would send it, and it must wrap at the pane."
)


@pytest.fixture
def desk(tmp_path, monkeypatch):
    monkeypatch.setenv("DESK_NOW", NOW)
    config = build_config(tmp_path)
    fill(config.database, 40)
    deliver(config.database, mail(200, SUBJECT, body=BODY), at=NOW)
    db = open_db(config.database)
    with clock.fixed_at(NOW):
        for name in ("technical-imap", "general-imap", "compliance-imap", "marketing-imap"):
            sources.register(db, name, "imap", name.split("-")[0])
            sources.succeeded(db, name, "idle")
        sources.register(db, "sales-imap", "imap", "sales")
        sources.set_state(db, "sales-imap", "backing-off", error="login refused by server")
    db.close()
    return config


async def started(pilot) -> TicketList:
    listing = pilot.app.screen.query_one(TicketList)
    await until(pilot, lambda: listing.loaded and listing.current is not None)
    return listing


def test_the_subject_gets_the_room_and_the_columns_fill_the_width():
    for total in (76, 80, 100, 120, 140, 160, 200):
        columns = ticket_list.widths(total)
        assert total == sum(w + 1 for w in columns if w)
        assert columns[4] <= 24  # the requester
    assert ticket_list.widths(140)[5] >= 50
    assert ticket_list.widths(80)[5] >= 30


async def test_at_140_columns_the_subject_is_read_whole(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(140, 40)) as pilot:
        listing = await started(pilot)
        assert SUBJECT[:50] in line_text(listing, 1)


async def test_80x24_shows_the_list_and_the_preview_on_a_key(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        listing = await started(pilot)
        side = app.screen.query_one("#side")
        assert not side.display
        assert listing.size.height >= 10
        assert "Question 40" in line_text(listing, 2)
        await pilot.press("v")
        assert side.display
        await until(pilot, lambda: app.screen.query_one("#preview").shown == 41)
        assert side.region.y > listing.region.y  # below the list


@pytest.mark.parametrize("size", [(80, 24), (100, 30)], ids=["80x24", "100x30"])
async def test_help_is_whole_and_uncovered_in_the_footer_of_the_list_and_a_ticket(desk, size):
    from tui.screens.ticket import TicketScreen

    app = DeskApp(desk)
    async with app.run_test(size=size) as pilot:
        await started(pilot)

        def keys() -> dict[str, FooterKey]:
            return {k.action: k for k in app.screen.query(FooterKey) if k.region.width}

        async def help_is_shown() -> None:
            await until(pilot, lambda: "help" in keys())
            palette = keys()["command_palette"].region
            assert keys()["help"].region.right <= palette.x  # whole, and not under ^p
            await pilot.press("question_mark")  # and it is the key that opens help
            await until(pilot, lambda: type(app.screen).__name__ == "HelpScreen")
            await pilot.press("escape")

        await help_is_shown()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen.data)
        await help_is_shown()
        assert "note" not in keys() if size[0] == 80 else "note" in keys()
        await pilot.press("n")  # left out of the footer, the key still works
        await until(pilot, lambda: type(app.screen).__name__ == "TextDialog")


async def test_the_status_line_counts_sources_and_names_the_failing_one(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        line = app.screen.query_one("#status-line")
        await until(pilot, lambda: "sources" in shown(line))
        assert "4 sources ✓, sales-imap backing-off  (H: details)" in shown(line)
        await pilot.press("H")
        assert isinstance(app.screen, HealthDialog)
        await pilot.pause(0.1)
        details = " ".join(shown(s) for s in app.screen.query("Static"))
        assert "sales-imap backing-off" in details and "login refused by server" in details
        assert "technical-imap idle" in details


async def test_the_preview_keeps_the_senders_line_breaks_and_wraps_a_paragraph(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(160, 48)) as pilot:
        await started(pilot)
        preview = app.screen.query_one("#preview")
        await until(pilot, lambda: preview.shown == 41)
        await pilot.pause(0.1)  # laid out
        body = app.screen.query_one("#preview-body")
        lines = [line.strip() for line in shown(body).split("\n")]
        # The sender's three lines are three lines on screen: none is cut into a ragged pair.
        first = next(i for i, line in enumerate(lines) if line.startswith("This is a plain"))
        sender = ("This is a plain text", "breaks, at seventy-two", "it; the preview must")
        for line, start in zip(lines[first : first + 3], sender, strict=True):
            assert line.startswith(start)
        # The one-line paragraph wraps at the pane, all of it shown.
        second = lines.index(next(line for line in lines if line.startswith("A second")))
        paragraph = BODY.split("\n")[-1]
        assert paragraph == " ".join(line for line in lines[second:] if line)
        assert len([line for line in lines[second:] if line]) > 1


async def test_a_format_flowed_mail_is_reflowed_and_a_fixed_one_is_not(tmp_path, monkeypatch):
    monkeypatch.setenv("DESK_NOW", NOW)
    config = build_config(tmp_path)
    soft = "Soft broken line one \nwith its continuation.\nHard line two.\n"
    for n, params in ((1, {"format": "flowed"}), (2, {})):
        message = EmailMessage()
        message["From"], message["To"] = f"c{n}@example.com", "technical@valuit.com"
        message["Subject"], message["Message-ID"] = f"Flowed {n}", f"<f{n}@example.com>"
        message.set_content(soft, params=params)
        deliver(config.database, bytes(message), at=NOW)
    app = DeskApp(config)
    async with app.run_test(size=(160, 48)) as pilot:
        await started(pilot)
        preview = app.screen.query_one("#preview")

        async def body_lines(ticket: int) -> list[str]:
            await until(pilot, lambda: preview.shown == ticket)
            await pilot.pause(0.1)
            return [
                line.strip() for line in shown(app.screen.query_one("#preview-body")).split("\n")
            ]

        fixed = await body_lines(2)  # newest first
        assert ["Soft broken line one", "with its continuation.", "Hard line two."] == fixed[5:8]
        await pilot.press("j")
        flowed = await body_lines(1)
        assert ["Soft broken line one with its continuation.", "Hard line two."] == flowed[5:7]


WIDE = (  # lines of 77 characters: within RFC 5322's 78, wider than an 80-column thread's text
    "Our invoice run for November stopped halfway and the export shows two totals.\n"
    "The second total is the one from October, so something kept the old figures.\n"
    "\n"
    "A paragraph sent as one single long line by a client that leaves breaking to the reader, "
    "which the thread wraps at its width."
)


async def test_at_80_columns_the_thread_keeps_the_senders_lines_and_wraps_a_paragraph(desk):
    from tui.screens.ticket import TicketScreen

    deliver(desk.database, mail(300, "Invoice run", body=WIDE), at=NOW)
    app = DeskApp(desk)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        app.push_screen(TicketScreen(42))
        await until(pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen.data)
        await pilot.pause(0.1)  # laid out
        view = app.screen.query_one("#thread").children[0]
        lines = [line.strip() for line in shown(view).split("\n")]
        # Each of the sender's lines is one line, whole (the thread scrolls sideways for its
        # last cells): none is cut into a ragged pair.
        for line in WIDE.split("\n")[:2]:
            assert line in lines
        # The one-line paragraph wraps, all of it shown.
        second = lines.index(next(line for line in lines if line.startswith("A paragraph")))
        paragraph = WIDE.split("\n")[-1]
        assert paragraph == " ".join(line for line in lines[second:] if line)
        assert len([line for line in lines[second:] if line]) > 1
