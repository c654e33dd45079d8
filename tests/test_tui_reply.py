"""Replying from the ticket screen: the composer with the quote, canned replies, the agent's own
editor, sending, and the delivery state of every mail we sent shown in the thread."""

from __future__ import annotations

import email
import sys
import threading
from datetime import timedelta
from email.policy import default
from pathlib import Path

import pytest
from textual.drivers.headless_driver import HeadlessDriver
from textual.widgets import TextArea
from textual.widgets._toast import Toast

from db.core import clock
from db.core.connect import open_db, write
from db.core.errors import DeskError
from db.mailout import outbox
from db.tickets import replies, tickets
from tests.tui_helpers import NOW, add_windows, build_config, deliver, line_text, mail, until
from tui.app import DeskApp
from tui.dialogs.choice import ChoiceDialog
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
THANKS = {
    "name": "thanks",
    "title": "Thank you, solved",
    "body": "Hello {name},\n\nthank you; this is solved.\n\n{signature}",
}


def desk_config(tmp_path):
    return build_config(
        tmp_path,
        functions={"technical": {"sender": SENDER}},
        replies={"signature": "Maria, Valuit Support", "canned": [CANNED, THANKS]},
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


def slowed(monkeypatch, owner, name: str, when=lambda *args: True) -> threading.Event:
    """Make `owner.name` wait, when `when(*args)`, until the returned event is set: a slow
    database, on cue. (Set it before the test ends, or the call waits out its 5 s.)"""
    real, gate = getattr(owner, name), threading.Event()

    def slow(*args, **kwargs):
        if when(*args):
            gate.wait(5)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, slow)
    return gate


def canned_load(name: str):
    """For `slowed` on the app's `data.call`: the load of the canned reply `name`."""
    return lambda fn, *args: fn is replies.draft and args[-1] is not None and args[-1].name == name


def sending_done(app) -> bool:
    return not any(w.group == "send" for w in app.workers)


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
        await until(pilot, lambda: "We quickly sent the fire brigade?" in thread_text(screen))
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


async def test_a_reply_being_queued_is_held_as_it_goes_out_and_queued_once(desk, monkeypatch):
    gate = slowed(monkeypatch, replies, "send")
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        composer = await open_composer(pilot)
        area = composer.query_one(TextArea)
        await pilot.press(*"On it.", "ctrl+s")
        await pilot.press("ctrl+s", *" quit?")  # neither a second mail, nor words left behind
        assert area.read_only and "On it." in area.text and " quit?" not in area.text
        assert app.screen is composer  # `q` went nowhere either
        gate.set()
        await until(pilot, lambda: isinstance(app.screen, TicketScreen))
        await until(pilot, lambda: sending_done(app))
        assert "Reply queued as mail 1" in toasts(app)
    assert [(1,)] == query(desk, "SELECT count(*) FROM outbox")
    (raw,) = query(desk, "SELECT raw FROM outbox")[0]
    text = email.message_from_bytes(raw, policy=default).get_content()
    assert "On it." in text and "quit" not in text


async def test_leaving_is_refused_while_the_reply_is_queued_and_it_closes_once_queued(
    desk, monkeypatch
):
    gate = slowed(monkeypatch, replies, "send")
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        composer = await open_composer(pilot)
        await pilot.press(*"On it.", "ctrl+s", "escape", "ctrl+t", "ctrl+e")
        assert app.screen is composer  # no "Discard?", no canned replies, no editor
        assert "The reply is being queued" in toasts(app)
        await pilot.press("ctrl+p")  # the app's own keys still work: the command palette
        await until(pilot, lambda: app.screen is not composer)
        gate.set()
        await until(pilot, lambda: isinstance(app.screen, TicketScreen))
        assert not any(isinstance(s, ReplyScreen) for s in app.screen_stack)
        assert "Reply queued as mail 1" in toasts(app)
        await pilot.press("escape")  # back to the list, as from any ticket
        await until(pilot, lambda: not isinstance(app.screen, TicketScreen))
    assert [(1,)] == query(desk, "SELECT count(*) FROM outbox")


async def test_a_canned_reply_failing_to_load_does_not_release_a_reply_being_sent(
    desk, monkeypatch
):
    real_draft, canned_gate = replies.draft, threading.Event()

    def broken_canned(db, *args):
        if args[-1] is None:
            return real_draft(db, *args)
        canned_gate.wait(5)
        raise DeskError("The canned reply could not be filled in.")

    monkeypatch.setattr(replies, "draft", broken_canned)
    send_gate = slowed(monkeypatch, replies, "send")
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        composer = await open_composer(pilot)
        await pilot.press(*"On it.", "ctrl+t")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        await pilot.press("enter", "ctrl+s")  # sends what it shows while the canned one loads
        canned_gate.set()
        await until(pilot, lambda: "could not be filled in" in toasts(app))
        assert composer.sending
        await pilot.press("ctrl+s")
        send_gate.set()
        await until(pilot, lambda: isinstance(app.screen, TicketScreen))
        await until(pilot, lambda: sending_done(app))
    assert [(1,)] == query(desk, "SELECT count(*) FROM outbox")


async def test_an_unexpected_failure_to_queue_gives_the_text_back_and_says_why(desk, monkeypatch):
    def broken(*args):
        raise OSError("disk full")

    monkeypatch.setattr(replies, "send", broken)
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        composer = await open_composer(pilot)
        await pilot.press(*"On it.", "ctrl+s")
        await until(pilot, lambda: "The reply was not queued: disk full" in toasts(app))
        await pilot.press(*" Truly.")
        assert "On it. Truly." in composer.query_one(TextArea).text
        assert app.screen is composer


async def test_leaving_after_a_canned_reply_asks_when_the_agent_had_written(desk):
    app = DeskApp(desk)
    async with app.run_test(size=(120, 40)) as pilot:
        composer = await open_composer(pilot)
        await pilot.press(*"My careful answer", "ctrl+t")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        await pilot.press("enter")
        await until(pilot, lambda: composer.canned == "maintenance")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("n", "ctrl+z")
        assert "My careful answer" in composer.query_one(TextArea).text
        await pilot.press("escape", "y")
        await until(pilot, lambda: isinstance(app.screen, TicketScreen))

        await pilot.press("r")  # a canned reply alone is no work of the agent's to lose
        await until(pilot, lambda: isinstance(app.screen, ReplyScreen))
        composer = app.screen
        await until(pilot, lambda: composer.original is not None)
        await pilot.press("ctrl+t")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        await pilot.press("enter")
        await until(pilot, lambda: composer.canned == "maintenance")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, TicketScreen))


async def test_canned_replies_wait_for_the_draft_and_the_last_one_picked_wins(desk, monkeypatch):
    arrived = []  # the loads the composer received, in the order it did
    on_draft_loaded = ReplyScreen.on_draft_loaded

    def counted(screen, message):
        arrived.append(message.canned)
        on_draft_loaded(screen, message)

    monkeypatch.setattr(ReplyScreen, "on_draft_loaded", counted)
    app = DeskApp(desk)
    first = slowed(monkeypatch, replies, "draft")
    async with app.run_test(size=(120, 40)) as pilot:
        await open_ticket(pilot)
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ReplyScreen))
        composer = app.screen
        await pilot.press("ctrl+t")  # the draft is not there yet to be replaced
        assert app.screen is composer
        first.set()
        await until(pilot, lambda: composer.original is not None)

        slow = slowed(monkeypatch, app.data, "call", canned_load("maintenance"))
        await pilot.press("ctrl+t")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        await pilot.press("enter")  # maintenance, which is slow to load
        await pilot.press("ctrl+t")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        await pilot.press("down", "enter")  # thanks, which is not
        area = composer.query_one(TextArea)
        await until(pilot, lambda: "thank you; this is solved" in area.text)
        slow.set()
        await until(pilot, lambda: [None, "thanks", "maintenance"] == arrived)
        assert "thanks" == composer.canned
        assert "maintenance" not in area.text


async def test_the_agents_editor_writes_the_reply(desk, monkeypatch, tmp_path):
    script, seen = tmp_path / "editor.py", tmp_path / "seen"
    script.write_text(
        "import os, sys\n"
        "if len(sys.argv) > 2: sys.exit(3)\n"
        "path = sys.argv[1]\n"
        f"open({str(seen)!r}, 'w').write(oct(os.stat(path).st_mode & 0o777) + ' ' + path)\n"
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
        assert "exited with status 3, so its text was not taken" in toasts(app)
        assert before == area.text
        monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")
        await pilot.press("ctrl+e")
        assert "Written in my editor.\n" + before == area.text
    mode, path = seen.read_text().split(" ", 1)
    assert "0o600" == mode  # the customer's mail is the agent's to read alone
    assert not Path(path).exists()


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
        await until(pilot, lambda: "✗ failed" not in thread_text(screen))
        # Retried, it starts afresh: the old failure is not shown as why it waits.
        assert "sent by jonas" in thread_text(screen) and "queued" in thread_text(screen)
        assert "waiting: 550" not in thread_text(screen)
        assert "tried 1 time" not in thread_text(screen)


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
        await until(pilot, lambda: "> ␛[31mred␛[0m and [bold]loud[/bold]" in thread_text(screen))
        assert "\x1b" not in thread_text(screen)


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


async def test_the_composer_copies_whom_the_customer_copied(tmp_path, monkeypatch):
    from tests.conftest import mail as mail_with

    monkeypatch.setenv("DESK_NOW", NOW)
    config = desk_config(tmp_path)
    deliver(config.database, mail_with(
        subject="Printer on fire", sender="Ann Example <ann@example.com>",
        headers={"Cc": "Bob Colleague <bob@example.com>, technical@valuit.com"},
    ))  # fmt: skip
    app = DeskApp(config)
    async with app.run_test(size=(120, 40)) as pilot:
        composer = await open_composer(pilot)
        cc = composer.query_one("#reply-cc")
        await until(pilot, lambda: cc.value)
        assert "Bob Colleague <bob@example.com>" == cc.value  # never ourselves
        composer.query_one(TextArea).insert("Help is on its way.")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, TicketScreen))
    assert [('["bob@example.com"]',)] == query(config, "SELECT cc FROM outbox")


async def test_the_composer_shows_a_reply_going_to_the_reply_to(tmp_path, monkeypatch):
    from tests.conftest import mail as mail_with

    monkeypatch.setenv("DESK_NOW", NOW)
    config = desk_config(tmp_path)
    deliver(config.database, mail_with(
        subject="Invoice", sender="Jane Smith <jane@example.com>",
        headers={"Reply-To": "Accounts <accounts@example.com>"},
    ))  # fmt: skip
    app = DeskApp(config)
    async with app.run_test(size=(120, 40)) as pilot:
        composer = await open_composer(pilot)
        head = shown(composer.query_one("#reply-head"))
        expected = (
            "To:      Accounts <accounts@example.com> (Reply-To of Jane Smith <jane@example.com>)"
        )
        assert expected in head
        composer.query_one(TextArea).insert("Paid.")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, TicketScreen))
    assert [("accounts@example.com",)] == query(config, "SELECT rcpt FROM outbox")


async def test_a_ticket_with_no_usable_sender_says_why_no_reply_can_go(tmp_path, monkeypatch):
    monkeypatch.setenv("DESK_NOW", NOW)
    config = desk_config(tmp_path)
    deliver(config.database, mail(1, "Positions missing", sender="Smith"))
    app = DeskApp(config)
    async with app.run_test(size=(120, 40)) as pilot:
        listing = app.screen.query_one(TicketList)
        await until(pilot, lambda: listing.loaded and listing.current is not None)
        assert "Smith (no sender)" in line_text(listing, 1)
        composer = await open_composer(pilot)
        head = " ".join(shown(composer.query_one("#reply-head")).split())
        why = (
            'Ticket #1 has no usable sender: the From of its mail ("Smith") is no address, so no '
            "reply can be sent."
        )
        assert why in head
        composer.query_one(TextArea).insert("Hello?")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "has no usable sender" in toasts(app))
        assert app.screen is composer and "Hello?" in composer.query_one(TextArea).text
    assert [(0,)] == query(config, "SELECT count(*) FROM outbox")
