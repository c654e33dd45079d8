"""Replying from the ticket screen: the composer with the quote, canned replies, the agent's own
editor, sending, and the delivery state of every mail we sent shown in the thread."""

from __future__ import annotations

import email
import sys
from datetime import timedelta
from email.policy import default

import pytest
from textual.drivers.headless_driver import HeadlessDriver
from textual.widgets import TextArea
from textual.widgets._toast import Toast

from db import clock, outbox, replies, tickets
from db.connect import open_db, write
from tests.tui_helpers import NOW, add_windows, build_config, deliver, line_text, mail, until
from tui.app import DeskApp
from tui.dialogs.confirm import ConfirmDialog
from tui.screens.reply import ReplyScreen
from tui.screens.ticket import TicketScreen
from tui.widgets.ticket_list import TicketList, marks

pytestmark = pytest.mark.anyio

STORED_NOW = clock.iso(clock.parse(NOW))  # NOW as the database writes times
SENDER = "Valuit Technical Support <technical@valuit.com>"
CANNED = {
    "name": "maintenance",
    "title": "We are in maintenance",
    "body": "Hello {name},\n\nwe are doing maintenance; this is what we announced:\n\n"
    "{window_notice}\n\n{signature}",
}


def desk_config(tmp_path):
    return build_config(
        tmp_path,
        functions={"technical": {"sender": SENDER}},
        replies={"signature": "Maria, Valuit Support", "canned": [CANNED]},
    )


@pytest.fixture
def desk(tmp_path, monkeypatch):
    """Ticket #1 from Ann about her printer."""
    monkeypatch.setenv("DESK_NOW", NOW)
    config = desk_config(tmp_path)
    body = "My printer is on fire.\nPlease help."
    deliver(config.database, mail(1, "Printer on fire", sender="Ann Example <ann@example.com>",
                                  body=body))  # fmt: skip
    return config


def query(config, sql: str) -> list[tuple]:
    db = open_db(config.database)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def shown(widget) -> str:
    """Every line the widget draws, as plain text."""
    return "\n".join(line_text(widget, y) for y in range(widget.size.height))


def thread_text(screen: TicketScreen) -> str:
    return "\n".join(shown(view) for view in screen.query_one("#thread").children)


def toasts(app) -> str:
    return " ".join(Toast(n).render().plain for n in app._notifications)


async def open_ticket(pilot) -> TicketScreen:
    app = pilot.app
    listing = app.screen.query_one(TicketList)
    await until(pilot, lambda: listing.loaded and listing.current is not None)
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen.data)
    return app.screen


async def open_composer(pilot) -> ReplyScreen:
    await open_ticket(pilot)
    await pilot.press("r")
    await until(pilot, lambda: isinstance(pilot.app.screen, ReplyScreen))
    await until(pilot, lambda: pilot.app.screen.original is not None)
    return pilot.app.screen


async def test_a_reply_quotes_the_customer_goes_out_from_the_function_and_shows_as_queued(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        composer = await open_composer(pilot)
        area = composer.query_one(TextArea)
        assert "Ann Example wrote:\n> My printer is on fire.\n> Please help." in area.text
        head = shown(composer.query_one("#reply-head"))
        assert "To:      Ann Example <ann@example.com>" in head
        assert f"From:    {SENDER}" in head
        assert "Subject: Re: Printer on fire [#1]" in head

        await pilot.press(*"We quickly sent the fire brigade?")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, TicketScreen))
        assert "Reply queued as mail 1" in toasts(app)
        assert "there is no [smtp]" in toasts(app)  # the test config sends nowhere

        (raw,) = query(desk, "SELECT raw FROM outbox")[0]
        sent = email.message_from_bytes(raw, policy=default)
        assert "Ann Example <ann@example.com>" == sent["To"]
        assert SENDER == sent["From"]
        assert "Re: Printer on fire [#1]" == sent["Subject"]
        assert "<m1@example.com>" == sent["In-Reply-To"]
        text = sent.get_content().replace("\r\n", "\n")
        assert text.startswith("Hello Ann,\n\nWe quickly sent the fire brigade?\n")
        assert "-- \nMaria, Valuit Support" in text and "> My printer is on fire." in text

        screen = app.screen
        await until(pilot, lambda: len(screen.data["thread"]) == 2)
        await pilot.pause(0.05)
        reply = shown(screen.query_one("#thread").children[-1])
        assert "→ to ann@example.com · sent by maria" in reply
        assert "queued" in reply and "We quickly sent the fire brigade?" in reply
        assert screen.query_one("#thread").children[-1].has_class("out")
        assert [(STORED_NOW, "open")] == query(desk, "SELECT first_response_at, status FROM ticket")
        head = " ".join(shown(screen.query_one("#ticket-head")).split())  # as one line
        assert "first reply 2026-11-26 12:00 UTC" in head

        await pilot.press("escape")  # the list's preview says whose the newest message is
        preview = app.screen.query_one("#preview-body")
        await until(pilot, lambda: "latest, sent by us, 2026-11-26 12:00 UTC" in shown(preview))


async def test_a_canned_reply_carries_the_notice_of_the_window_in_force(desk):
    add_windows(desk.database)
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        composer = await open_composer(pilot)
        await pilot.press("ctrl+t")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ChoiceDialog")
        await pilot.press("enter")
        area = composer.query_one(TextArea)
        await until(pilot, lambda: composer.canned == "maintenance")
        assert area.text.startswith("Hello Ann,\n\nwe are doing maintenance;")
        assert "Nature of the issue: primary database host failed" in area.text
        assert "> My printer is on fire." in area.text
        await pilot.press("ctrl+s")  # a canned reply may go as it is
        await until(pilot, lambda: isinstance(app.screen, TicketScreen))
        (raw,) = query(desk, "SELECT raw FROM outbox")[0]
        sent = email.message_from_bytes(raw, policy=default).get_content()
        assert "Emergency maintenance (security update) has begun" in sent


async def test_an_empty_reply_is_refused_and_leaving_asks_before_losing_text(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        composer = await open_composer(pilot)
        await pilot.press("ctrl+s")  # the untouched greeting and quote
        await until(pilot, lambda: "only the greeting and the quote" in toasts(app))
        await pilot.press("f7", "backspace", "ctrl+s")  # select all, delete, send
        await until(pilot, lambda: "The reply is empty" in toasts(app))
        assert app.screen is composer
        assert [(0,)] == query(desk, "SELECT count(*) FROM outbox")

        await pilot.press(*"Half a thought")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("n")
        assert app.screen is composer
        assert "Half a thought" == composer.query_one(TextArea).text
        await pilot.press("escape", "y")
        await until(pilot, lambda: isinstance(app.screen, TicketScreen))
        assert [(0,)] == query(desk, "SELECT count(*) FROM outbox")
        assert [(None, "new")] == query(desk, "SELECT first_response_at, status FROM ticket")


async def test_the_agents_editor_writes_the_reply(desk, monkeypatch, tmp_path):
    script = tmp_path / "editor.py"
    script.write_text(
        "import sys\n"
        "if len(sys.argv) > 2: sys.exit(3)\n"
        "path = sys.argv[1]\n"
        "text = open(path).read()\n"
        "open(path, 'w').write('Written in my editor.\\n' + text)\n"
    )
    # The headless test driver cannot give the terminal away; a real one can.
    monkeypatch.setattr(HeadlessDriver, "can_suspend", property(lambda self: True))
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.delenv("EDITOR", raising=False)
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        composer = await open_composer(pilot)
        area = composer.query_one(TextArea)
        before = area.text
        await pilot.press("ctrl+e")
        assert "Set $VISUAL or $EDITOR" in toasts(app)
        monkeypatch.setenv("EDITOR", f"{sys.executable} {script} --fail")
        await pilot.press("ctrl+e")
        assert "exited with status 3; the text is as it was" in toasts(app)
        assert before == area.text
        monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")
        await pilot.press("ctrl+e")
        assert "Written in my editor.\n" + before == area.text


async def test_delivery_state_and_a_failed_mail_show_on_the_ticket_and_can_be_retried(desk):
    db = open_db(desk.database)
    outbox_id = replies.send(db, 1, "We are on it.", "jonas", desk.mail)
    db.close()
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_ticket(pilot)
        assert "queued" in thread_text(screen)

        db = open_db(desk.database)
        with write(db):  # the sender's first attempt: the server is down
            outbox.begin(db, outbox_id)
            outbox.defer(db, outbox_id, "127.0.0.1:25 refused the connection", timedelta(minutes=5))
        await until(pilot, lambda: "waiting: 127.0.0.1:25 refused the connection" in
                    thread_text(screen))  # fmt: skip
        assert "tried 1 time · next try 2026-11-26 12:05" in thread_text(screen)

        with write(db):
            outbox.failed(db, outbox_id, "550 5.1.1 <ann@example.com>: no such user")
        db.close()
        await until(pilot, lambda: "✗ failed: 550 5.1.1 <ann@example.com>: no such user" in
                    thread_text(screen))  # fmt: skip
        assert "1 mail failed" in shown(screen.query_one("#ticket-head"))
        assert screen.query_one("#thread").children[-1].has_class("failed")

        await pilot.press("R")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ChoiceDialog")
        await pilot.press("enter")
        await until(pilot, lambda: [("queued",)] == query(desk, "SELECT status FROM outbox"))
        await until(pilot, lambda: "1 mail failed" not in shown(screen.query_one("#ticket-head")))
        assert "✗ failed" not in thread_text(screen)


async def test_hostile_subject_and_body_are_quoted_as_text(tmp_path, monkeypatch):
    monkeypatch.setenv("DESK_NOW", NOW)
    config = desk_config(tmp_path)
    body = "\x1b[31mred\x1b[0m and [bold]loud[/bold]"
    deliver(config.database, mail(1, "[bold red]x[/]", body=body))
    app = DeskApp(config)
    async with app.run_test(size=(120, 40)) as pilot:
        composer = await open_composer(pilot)
        assert "Subject: Re: [bold red]x[/] [#1]" in shown(composer.query_one("#reply-head"))
        area = composer.query_one(TextArea)
        assert "> ␛[31mred␛[0m and [bold]loud[/bold]" in area.text
        assert "\x1b" not in area.text
        await pilot.press(*"Noted.", "ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, TicketScreen))
        screen = app.screen
        await until(pilot, lambda: len(screen.data["thread"]) == 2)
        await pilot.pause(0.05)
        drawn = thread_text(screen)
        assert "> ␛[31mred␛[0m and [bold]loud[/bold]" in drawn
        assert "\x1b" not in drawn


def test_an_answered_ticket_is_never_marked_overdue():
    row = {
        "kind": "",
        "during_window_id": None,
        "unparsed": 0,
        "status": "new",
        "first_response_due": "2026-11-26T09:00:00Z",
        "first_response_at": None,
    }
    assert "!" == marks(row, NOW).plain.strip()
    row["first_response_at"] = "2026-11-26T08:30:00Z"
    assert "" == marks(row, NOW).plain.strip()


def test_the_thread_says_where_each_mail_we_sent_stands(desk):
    db = open_db(desk.database)
    outbox_id = replies.send(db, 1, "We are on it.", "jonas", desk.mail)
    with write(db):
        outbox.sent(db, outbox_id)
    first, reply = tickets.thread(db, 1)
    db.close()
    assert ("in", None) == (first["direction"], first["mail_status"])
    assert ("out", "sent", STORED_NOW, "ann@example.com", "jonas") == (
        reply["direction"],
        reply["mail_status"],
        reply["mail_sent_at"],
        reply["mail_to"],
        reply["mail_by"],
    )
