"""Every ticket action from the keyboard and the palette, the audit trail, attachments, and two
agents changing one ticket."""

from __future__ import annotations

import json
import stat

import pytest
from textual.command import CommandList

from db.core.connect import open_db
from db.tickets import tickets
from tests.tui_helpers import (
    NOW,
    add_windows,
    build_config,
    fill,
    until,
)
from tui.app import DeskApp
from tui.dialogs.audit import AuditDialog
from tui.screens.ticket import TicketScreen
from tui.widgets.discrepancy_panel import DiscrepancyPanel
from tui.widgets.ticket_list import TicketList

pytestmark = pytest.mark.anyio


@pytest.fixture
def desk(tmp_path, monkeypatch):
    monkeypatch.setenv("DESK_NOW", NOW)
    config = build_config(tmp_path)
    fill(config.database, 8)
    add_windows(config.database)
    return config


def ticket(config, number: int) -> dict:
    db = open_db(config.database)
    try:
        return tickets.get(db, number)
    finally:
        db.close()


def trail(config, number: int) -> list[tuple[str, str]]:
    db = open_db(config.database)
    try:
        return [(e["actor"], e["action"]) for e in tickets.events(db, number)]
    finally:
        db.close()


async def open_list(pilot) -> TicketList:
    listing = pilot.app.screen.query_one(TicketList)
    await until(pilot, lambda: listing.loaded and listing.current is not None)
    return listing


async def test_assign_status_priority_tags_note_from_the_list(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        listing = await open_list(pilot)
        await pilot.press("a", "ctrl+a", "ctrl+k", *"me", "enter")
        await until(pilot, lambda: ticket(desk, 8)["assignee"] == "maria")
        await until(pilot, lambda: listing.current["version"] == ticket(desk, 8)["version"])
        await pilot.press("s", "down", "enter")  # new → open
        await until(pilot, lambda: ticket(desk, 8)["status"] == "open")
        await until(pilot, lambda: listing.current["version"] == ticket(desk, 8)["version"])
        await pilot.press("p", "down", "down", "enter")  # normal → urgent
        await until(pilot, lambda: ticket(desk, 8)["priority"] == "urgent")
        await until(pilot, lambda: listing.current["version"] == ticket(desk, 8)["version"])
        await pilot.press("t", *"billing vip", "enter")
        await until(pilot, lambda: json.loads(ticket(desk, 8)["tags"]) == ["billing", "vip"])
        await until(pilot, lambda: listing.current["version"] == ticket(desk, 8)["version"])
        await pilot.press("n", *"called the customer", "enter")
        await until(pilot, lambda: ("maria", "note") in trail(desk, 8))
        assert [
            ("maria", "assignee"),
            ("maria", "status"),
            ("maria", "priority"),
            ("maria", "tags"),
            ("maria", "note"),
        ] == [e for e in trail(desk, 8) if e[0] == "maria"]


async def test_discrepancy_and_window_from_the_ticket_screen(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_list(pilot)
        await pilot.press("j", "enter")
        await until(pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen.data)
        await pilot.press("d")
        await until(pilot, lambda: ticket(desk, 7)["kind"] == "discrepancy")
        await until(pilot, lambda: app.screen.data["ticket"]["kind"] == "discrepancy")
        await pilot.press("w")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ChoiceDialog")
        await pilot.press("end", "enter")  # the oldest linkable window: the emergency, W1
        await until(pilot, lambda: ticket(desk, 7)["window_id"] == 1)
        await pilot.press("escape")
        panel = app.screen.query_one(DiscrepancyPanel)
        # The panel follows the link through the live refresh, within a second.
        await until(
            pilot,
            lambda: (
                panel.display
                and bool(panel.root.children)
                and "W1" in str(panel.root.children[0].label)
            ),
        )
        assert "Database failover" in str(panel.root.children[0].label)
        # Under W1: its received and discrepancy counts, then the report.
        await pilot.press("x", "down", "down", "down", "down", "enter")
        await until(pilot, lambda: isinstance(app.screen, TicketScreen))
        assert 7 == app.screen.ticket_id


async def test_palette_runs_an_action(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_list(pilot)
        await pilot.press("ctrl+p")
        await pilot.press(*"assign to me")
        commands = app.screen.query_one(CommandList)
        # The palette gathers its matches in the background; run the command once it is there.
        await until(
            pilot,
            lambda: (
                commands.highlighted is not None
                and "assign to me"
                in str(commands.get_option_at_index(commands.highlighted).prompt).lower()
            ),
        )
        await pilot.press("enter")
        await until(pilot, lambda: ticket(desk, 8)["assignee"] == "maria")


async def test_a_change_someone_made_first_is_not_lost(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        listing = await open_list(pilot)
        seen = dict(listing.current)
        other = open_db(desk.database)
        tickets.update(other, 8, seen["version"], "jonas", status="pending")
        other.close()
        # The agent acts on the state they saw before jonas's change.
        app.screen.change(seen, status="resolved")
        await until(
            pilot, lambda: any("changed by someone else" in n.message for n in app._notifications)
        )
        assert "pending" == ticket(desk, 8)["status"]
        await until(pilot, lambda: listing.current["status"] == "pending")
        assert [("jonas", "status")] == [e for e in trail(desk, 8) if e[0] in ("jonas", "maria")]


async def test_headers_audit_and_saving_an_attachment_under_its_safe_name(desk, tmp_path):
    app = DeskApp(desk)
    folder = tmp_path / "saved"
    folder.mkdir()
    async with app.run_test(size=(120, 40)) as pilot:
        listing = await open_list(pilot)
        listing.move_to(5)  # ticket #3 carries "../../etc/passwd"
        await until(pilot, lambda: listing.current["id"] == 3)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen.data)
        await pilot.press("h")
        assert app.screen.headers
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, AuditDialog))
        assert ("desk-ingest", "created") == (
            app.screen.events[0]["actor"],
            app.screen.events[0]["action"],
        )
        await pilot.press("escape")
        await pilot.press("S")
        await pilot.press("enter")  # the first attachment; focus moves to the folder
        await pilot.press("ctrl+a", "ctrl+k", *str(folder), "enter")
        await until(pilot, lambda: any(folder.iterdir()))
        saved = list(folder.iterdir())
        assert 1 == len(saved) and saved[0].read_bytes() == b"secret"
        assert 0o600 == stat.S_IMODE(saved[0].stat().st_mode)  # customer mail: owner-only
        stored = app.screen.data["attachments"][0]["safe_name"]
        assert saved[0] == folder / stored and "/" not in stored
