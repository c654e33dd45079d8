"""The desk driven by Pilot: list, sections, search, live updates, preview, keys, help."""

from __future__ import annotations

from datetime import timedelta

import pytest
from textual.widgets._toast import Toast

from db.core import clock
from db.core.connect import open_db, write
from db.core.migrations import FUNCTIONS
from db.tickets import tickets
from tests.tui_helpers import (
    HOSTILE,
    NOW,
    build_config,
    deliver,
    fill,
    filled_desk,
    line_text,
    mail,
    until,
)
from tui.app import DeskApp
from tui.screens.help import HelpScreen
from tui.screens.ticket import TicketScreen
from tui.widgets import ticket_list
from tui.widgets.banner import Banner
from tui.widgets.ticket_list import TicketList

pytestmark = pytest.mark.anyio


@pytest.fixture
def desk(tmp_path, monkeypatch):
    return filled_desk(tmp_path, monkeypatch)


def the_list(app: DeskApp) -> TicketList:
    return app.screen.query_one(TicketList)


async def started(pilot) -> TicketList:
    await until(pilot, lambda: the_list(pilot.app).loaded)
    return the_list(pilot.app)


async def test_list_is_newest_first_with_hostile_subjects_as_plain_text(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        listing = await started(pilot)
        assert 30 == listing.total
        assert 30 == listing.current["id"]
        lines = [line_text(listing, y) for y in range(1, 31)]
        assert lines[0].split()[0] == "#30"
        shown = "\n".join(lines)
        assert "[bold red]x[/]" in shown
        assert "␛]0;pwned␇" in shown
        assert "␛[2J cleared" in shown
        assert "\x1b" not in shown and "\x07" not in shown


async def test_cursor_keys(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        listing = await started(pilot)
        await pilot.press("j", "j", "down")
        assert 3 == listing.cursor
        await pilot.press("k", "up")
        assert 1 == listing.cursor
        await pilot.press("G")
        assert 29 == listing.cursor and 1 == listing.current["id"]
        await pilot.press("g")
        assert 0 == listing.cursor


async def test_pages_are_read_on_demand_and_memory_stays_bounded(desk, monkeypatch):
    monkeypatch.setattr(ticket_list, "PAGE", 8)
    monkeypatch.setattr(ticket_list, "KEEP_PAGES", 4)
    app = DeskApp(desk)
    async with app.run_test(size=(120, 24)) as pilot:
        listing = await started(pilot)
        await pilot.press("G")
        await until(pilot, lambda: listing.current is not None)
        assert 1 == listing.current["id"]
        await pilot.press("g")
        await until(pilot, lambda: listing.current is not None)
        for _ in range(4):
            await pilot.press("pagedown")
            await until(pilot, lambda: listing.current is not None)
        assert len(listing.pages) <= 4
        assert 1 == listing.current["id"]


async def test_sections_filter_by_function_and_remember_the_cursor(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        listing = await started(pilot)
        await pilot.press("j", "j")
        remembered = listing.current["id"]
        await pilot.press("right_square_bracket")  # Technical
        await until(pilot, lambda: listing.total == 6 and listing.current is not None)
        assert all(listing.row(i)["function"] == "technical" for i in range(6))
        await pilot.press("j")
        await pilot.press("left_square_bracket")
        await until(pilot, lambda: listing.total == 30 and listing.current is not None)
        assert remembered == listing.current["id"]
        tabs = app.screen.query_one("Tabs")
        assert "All 30" in str(tabs.query_one("#section-0").label)


async def test_search_and_clear(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        listing = await started(pilot)
        await pilot.press("slash")
        await pilot.press(*"fn:sales question")
        await pilot.press("enter")
        await until(pilot, lambda: listing.total == 5)
        await pilot.press("escape")
        await until(pilot, lambda: listing.total == 30)
        await pilot.press("slash")
        await pilot.press(*'"unbalanced OR NEAR( *')
        await pilot.press("enter")
        await until(pilot, lambda: listing.total == 0 and listing.loaded)
        assert "no tickets here" in line_text(listing, 1)


async def test_what_the_agent_typed_is_shown_back_as_text_not_markup(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        await pilot.press("slash")
        await pilot.press(*"is:[/x][@click=app.quit]")
        await pilot.press("enter")
        await until(pilot, lambda: bool(app._notifications))
        # What each toast draws for its notification.
        shown = " ".join(Toast(n).render().plain for n in app._notifications)
        assert "is:[/x][@click=app.quit] ignored" in shown


async def test_new_ticket_appears_without_a_key_and_the_cursor_stays(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        listing = await started(pilot)
        await pilot.press("j", "j")
        watched = listing.current["id"]
        deliver(desk.database, mail(99, "Brand new problem"), at="2026-11-26T12:30:00Z")
        await until(pilot, lambda: listing.total == 31, timeout=15)
        await until(pilot, lambda: listing.current is not None)
        assert watched == listing.current["id"]
        assert 3 == listing.cursor
        assert "Brand new problem" in line_text(listing, 1)


async def test_preview_follows_the_cursor_and_toggles(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        preview = app.screen.query_one("#preview")
        await until(pilot, lambda: preview.shown == 30)
        await pilot.press("j")
        await until(pilot, lambda: preview.shown == 29)
        await pilot.press("v")
        assert not app.screen.query_one("#side").display
        await pilot.press("v")
        assert app.screen.query_one("#side").display


async def test_narrow_terminal_puts_the_preview_below(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(80, 40)) as pilot:
        await started(pilot)
        body = app.screen.query_one("#body")
        assert body.has_class("narrow")
        side, listing = app.screen.query_one("#side"), the_list(app)
        assert side.region.y > listing.region.y


async def test_enter_opens_the_ticket_and_escape_returns(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen.data)
        assert 30 == app.screen.ticket_id
        await pilot.press("escape")
        assert not isinstance(app.screen, TicketScreen)


async def test_help_and_sort(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        listing = await started(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("o")  # oldest first
        await until(pilot, lambda: listing.current is not None and listing.cursor == 29)
        assert 30 == listing.current["id"]  # the cursor stayed on its ticket
        await pilot.press("g")
        await until(pilot, lambda: listing.current is not None)
        assert 1 == listing.current["id"]


async def test_keys_are_remapped_from_the_config(tmp_path, monkeypatch):
    monkeypatch.setenv("DESK_NOW", NOW)
    config = build_config(tmp_path, keys={"assign": "A", "down": "ctrl+n"})
    fill(config.database, 5)
    app = DeskApp(config)
    async with app.run_test(size=(120, 40)) as pilot:
        listing = await started(pilot)
        await pilot.press("ctrl+n")
        assert 1 == listing.cursor
        await pilot.press("a")
        assert app.screen.__class__.__name__ == "MainScreen"
        await pilot.press("A")
        assert app.screen.__class__.__name__ == "TextDialog"


def test_a_wrong_key_id_is_one_line_naming_file_and_key(tmp_path):
    from db.core.errors import ConfigError
    from tui.settings import load

    with pytest.raises(ConfigError) as caught:
        load(build_config(tmp_path, keys={"asign": "A"}))
    assert "config.toml: key 'keys.asign': unknown key" in caught.value.message


def test_saved_searches_become_sections(tmp_path):
    from tui.settings import load

    settings = load(
        build_config(tmp_path, desk={"section": [{"name": "Mine", "query": "assignee:me"}]})
    )
    assert ("Mine", "assignee:me") == (settings.sections[-1].name, settings.sections[-1].query)
    assert "maria" == settings.agent


def test_hostile_text_is_never_markup_or_control():
    from tui import safe

    for subject in HOSTILE:
        shown = safe.text(subject)
        assert shown.spans == []
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in shown.plain)
    assert "␛[2J" in safe.visible("\x1b[2J")
    assert "\\u202e" in safe.visible("abc\u202eexe.pdf")


def test_storage_of_many_tickets_reads_one_page(desk):
    db = open_db(desk.database)
    rows = tickets.page(db, "1", [], "newest", 10, 5)
    assert [20, 19, 18, 17, 16] == [r["id"] for r in rows]
    assert 10 == tickets.position(db, "1", [], "newest", 20)


async def test_the_banner_announces_as_far_ahead_as_the_notice_rule_says(tmp_path, monkeypatch):
    from db.maintenance import windows

    monkeypatch.setenv("DESK_NOW", NOW)
    config = build_config(tmp_path, maintenance={"announce_hours": 72})
    fill(config.database, 3)
    db = open_db(config.database)
    start = clock.parse(NOW) + timedelta(hours=60)  # beyond 48 h, within 72 h
    windows.add(db, title="Ledger upgrade", kind="adhoc", update_type="feature", start=start,
                end=start + timedelta(hours=1), zone="UTC", actor="ops")  # fmt: skip
    db.close()
    app = DeskApp(config)
    async with app.run_test(size=(120, 40)) as pilot:
        banner = app.screen.query_one(Banner)
        await until(pilot, lambda: "Ledger upgrade" in str(banner.render()))
        assert "Planned: W1" in str(banner.render())


async def test_the_banner_shows_word_for_word_what_the_platform_dashboard_tells_users(
    tmp_path, monkeypatch
):
    from db.maintenance import notices, windows

    monkeypatch.setenv("DESK_NOW", NOW)
    config = build_config(tmp_path)
    fill(config.database, 3)
    db = open_db(config.database)
    start = clock.parse(NOW) + timedelta(hours=30)
    told = windows.add(db, title="Ledger upgrade", kind="adhoc", update_type="feature",
                       start=start, end=start + timedelta(hours=1), zone="UTC", actor="ops",
                       features=("Trading",), force_reason="security fix")  # fmt: skip
    windows.add(db, title="Untold", kind="adhoc", update_type="feature", start=start,
                end=start + timedelta(hours=2), zone="UTC", actor="ops",
                force_reason="test", allow_overlap=True)  # fmt: skip
    issued = {n["channel"]: n for n in windows.issue_notice(db, told.id, "announcement", "ops")[0]}
    banner_row = issued["banner"]
    rendered = notices.render(windows.get(db, told.id), "announcement")[1]
    db.close()
    app = DeskApp(config)
    async with app.run_test(size=(200, 40)) as pilot:
        banner = app.screen.query_one(Banner)
        await until(pilot, lambda: "Untold" in str(banner.render()))
        shown = str(banner.render())
        assert f"users see: {banner_row['body']}" in shown
        assert "Trading unavailable" in banner_row["body"]
        assert "users have not been told yet" in shown
        assert rendered.body == banner_row["body"]


async def test_the_status_line_says_when_mail_out_waits_or_failed(tmp_path, monkeypatch):
    from db.mailout import outbox
    from db.tickets import replies
    from tui.widgets.status_line import StatusLine

    monkeypatch.setenv("DESK_NOW", NOW)
    config = build_config(tmp_path, addresses={f"{fn}@valuit.com": fn for fn in FUNCTIONS})
    fill(config.database, 3)
    db = open_db(config.database)
    first = replies.send(db, 1, "Answer", "alice", config.mail)
    replies.send(db, 2, "Answer", "alice", config.mail)
    with write(db):
        outbox.failed(db, first, "refused by the server: 550 no such user")
    db.close()
    app = DeskApp(config)
    async with app.run_test(size=(200, 40)) as pilot:
        line = app.screen.query_one(StatusLine)
        await until(pilot, lambda: "mail out" in str(line.render()))
        shown = str(line.render())
        assert "mail out: 1 queued (no [smtp]: not sent), 1 failed" in shown


async def test_a_saved_section_counts_what_its_query_selects(tmp_path, monkeypatch):
    saved = [{"name": "Tech normal", "query": "fn:technical priority:normal"}]
    app = DeskApp(filled_desk(tmp_path, monkeypatch, desk={"section": saved}))
    async with app.run_test(size=(160, 40)) as pilot:
        await started(pilot)
        tab = app.screen.query_one(f"#section-{len(app.settings.sections) - 1}")
        await until(pilot, lambda: "Tech normal 6" == str(tab.label))
