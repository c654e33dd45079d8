"""The reply composer: the draft with the customer's newest message quoted, canned replies, the
agent's own editor, and sending, which queues the mail and goes back to the ticket. Its To line
says where the reply goes: the customer, or the Reply-To they named, or why it cannot be sent.

Nothing the agent wrote is lost by a refusal: a reply the desk cannot send leaves the composer
open with its text, and leaving it after writing asks first, even when a canned reply has
replaced what they wrote. While the reply is being queued its text is held as it goes out, and
the composer can be neither left nor changed; once queued, it closes.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.text import Text
from textual import events, work
from textual.app import ComposeResult, SuspendNotSupported
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Input, Label, Static, TextArea
from textual.worker import Worker, WorkerState

from db.core.config import Canned
from db.core.errors import DeskError
from db.mailout import compose
from db.tickets import replies
from tui import editor, keys, safe
from tui.dialogs.choice import ChoiceDialog
from tui.dialogs.confirm import ConfirmDialog
from tui.messages import ActionFailed, DraftLoaded, ReplyQueued
from tui.widgets.footer import DeskFooter


def _field(name: str, value: Text) -> Text:
    line = Text(f"{name:<9}", "dim")
    line.append_text(value)
    return line


class ReplyScreen(Screen[None]):
    BINDINGS = keys.REPLY

    def __init__(self, ticket: dict[str, Any]) -> None:
        super().__init__()
        self.ticket = ticket
        self.original: str | None = None  # the text as last loaded; None while it loads
        self.canned: str | None = None  # the canned reply it came from
        self.wanted: str | None = None  # the canned reply last asked for (None: the greeting)
        self.written = False  # the agent wrote here before a canned reply replaced it
        self.sending = False
        self.addressee: replies.Addressee | None = None  # None while it loads

    def compose(self) -> ComposeResult:
        yield Static(self.head(), id="reply-head")
        with Horizontal(id="reply-cc-row"):
            yield Label("Cc:", id="reply-cc-label")
            yield Input(id="reply-cc", placeholder="colleagues to copy: Name <address>, …")
        yield TextArea(id="reply-body", read_only=True, soft_wrap=True)
        yield DeskFooter()

    def head(self) -> Group:
        ticket, function = self.ticket, self.ticket["function"]
        sender = self.app.config.mail.senders.get(function)
        return Group(
            Text(f"Reply to #{ticket['id']}", "bold"),
            _field("To:", self.to_line()),
            _field(
                "From:",
                safe.text(sender)
                if sender
                else Text(f"no address: set [functions.{function}] sender in config.toml", "red"),
            ),
            _field("Subject:", safe.text(compose.reply_subject(ticket["subject"], ticket["id"]))),
        )

    def to_line(self) -> Text:
        target = self.addressee
        if target is None:
            return Text("…", "dim")
        if target.refusal:
            return safe.text(target.refusal, "bold red", multiline=True)
        line = safe.text(target.to)
        if target.via:
            line.append(" (")
            line.append_text(safe.text(target.via, "yellow"))
            line.append(")")
        return line

    def show_addressee(self, target: replies.Addressee) -> None:
        self.addressee = target
        self.query_one("#reply-head", Static).update(self.head())

    def on_mount(self) -> None:
        self.load_draft(None)
        self.load_cc()

    @work(thread=True, group="cc", exit_on_error=False)
    def load_cc(self) -> None:
        """Copy whom the customer copied, as a mail client's Reply All would."""
        app = self.app
        found = app.data.call(replies.default_cc, self.ticket["id"], app.config.mail)
        app.call_from_thread(self._fill_cc, safe.visible(found))

    def _fill_cc(self, found: str) -> None:
        cc = self.query_one("#reply-cc", Input)
        if not cc.value:  # the agent may have typed there already
            cc.value = found

    @work(thread=True, group="draft", exclusive=True, exit_on_error=False)
    def load_draft(self, canned: Canned | None) -> None:
        app = self.app
        try:
            if self.addressee is None:  # shown before the text, so the agent knows whom
                target = app.data.call(
                    replies.addressee, self.ticket["id"], app.config.mail.own_addresses
                )
                app.call_from_thread(self.show_addressee, target)
            text = app.data.call(
                replies.draft,
                self.ticket["id"],
                app.settings.agent,
                app.config.mail,
                app.settings.zone,
                canned,
            )
        except DeskError as exc:
            # Nothing to undo: the text stays as it was (notify is safe from a thread).
            self.notify(exc.message, severity="error", timeout=8, markup=False)
            return
        self.post_message(DraftLoaded(text, canned.name if canned else None))

    def on_draft_loaded(self, message: DraftLoaded) -> None:
        # Only the canned reply last picked counts (an earlier pick may arrive after it), and none
        # once the reply is on its way: what goes out is what the agent saw.
        if message.canned != self.wanted or self.sending:
            return
        area = self.query_one(TextArea)
        # The quote is a stranger's text: shown, and sent back, without its control characters.
        text = safe.visible(message.text, multiline=True)
        if self.original is None:
            area.load_text(text)
        else:  # a canned reply replaces the text as one edit, so ctrl+z brings it back
            self.written = self.edited()
            area.replace(text, area.document.start, area.document.end)
        self.original, self.canned = text, message.canned
        area.read_only = False
        # Under the greeting, or at the top of a canned reply that may need a word changed.
        area.cursor_location = (0, 0) if message.canned else (2, 0)
        area.focus()

    def on_key(self, event: events.Key) -> None:
        # While the text area takes no typing (loading, sending) a letter would reach the app's
        # keys, where `q` quits: the agent meant it for the reply.
        if event.is_printable and (self.original is None or self.sending):
            event.stop()
            event.prevent_default()

    def edited(self) -> bool:
        """Whether the agent wrote anything here, even if a canned reply has replaced it since."""
        if self.original is None:
            return False
        return self.written or self.query_one(TextArea).text != self.original

    def held(self) -> bool:
        """True, and the agent told so, while the reply is being queued: its text is on its way
        and no longer theirs to change or throw away."""
        if self.sending:
            self.notify("The reply is being queued…", timeout=2)
        return self.sending

    def action_send(self) -> None:
        if self.original is None or self.sending:
            return
        if self.canned is None and not self.edited():
            self.notify(
                "The reply is only the greeting and the quote; write it first, or press escape.",
                severity="warning",
            )
            return
        area, cc = self.query_one(TextArea), self.query_one("#reply-cc", Input)
        self.sending = True
        area.read_only = cc.disabled = True  # what the agent sees is what goes out
        self.send(area.text, cc.value)

    @work(thread=True, group="send", exit_on_error=False)
    def send(self, body: str, cc: str) -> None:
        app = self.app
        try:
            outbox_id = app.data.call(
                replies.send, self.ticket["id"], body, app.settings.agent, app.config.mail, cc
            )
        except DeskError as exc:
            self.post_message(ActionFailed(exc.message))
            return
        self.post_message(ReplyQueued(outbox_id))

    def on_reply_queued(self, message: ReplyQueued) -> None:
        if self.app.config.mail.smtp is None:
            self.app.notify(
                f"Reply queued as mail {message.outbox_id}; there is no [smtp] in "
                f"{self.app.config.path}, so it waits in the outbox until one is set.",
                severity="warning",
                timeout=8,
                markup=False,
            )
        else:
            self.app.notify(f"Reply queued as mail {message.outbox_id}", timeout=4, markup=False)
        # The composer's own dialogs wait while it sends, but the app's (the command palette)
        # may stand over it; the mail is queued, so they go with the composer.
        while self.app.screen is not self:
            self.app.pop_screen()
        self.dismiss()

    def on_action_failed(self, message: ActionFailed) -> None:
        self.give_back(message.text)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # A worker's state goes to its screen alone: the app never hears of these.
        if event.state != WorkerState.ERROR:
            return
        if event.worker.group == "send":
            self.give_back(f"The reply was not queued: {event.worker.error}")
        else:
            self.notify(
                f"Could not load the reply's text: {event.worker.error}",
                severity="error",
                timeout=8,
                markup=False,
            )

    def give_back(self, why: str) -> None:
        """The reply was not queued: the agent has their text again, and hears why."""
        self.sending = False
        self.query_one(TextArea).read_only = self.query_one("#reply-cc", Input).disabled = False
        self.notify(why, severity="error", timeout=8, markup=False)

    def action_cancel(self) -> None:
        if self.held():
            return
        if not self.edited():
            self.dismiss()
            return

        def answered(discard: bool | None) -> None:
            if discard:
                self.dismiss()

        self.app.push_screen(ConfirmDialog("Discard this reply? What you wrote is lost."), answered)

    def action_external_editor(self) -> None:
        if self.held() or self.original is None:
            return
        area = self.query_one(TextArea)
        try:
            text = editor.edit(area.text, ".txt", self.app.suspend)
        except SuspendNotSupported:
            self.notify(
                "This terminal cannot hand over to an editor; write here.", severity="error"
            )
            return
        except DeskError as exc:
            self.notify(exc.message, severity="error", timeout=8, markup=False)
            return
        text = safe.visible(text, multiline=True)
        if text != area.text:
            area.replace(text, area.document.start, area.document.end)

    def action_canned(self) -> None:
        if self.held() or self.original is None:
            return
        canned = {c.name: c for c in self.app.config.mail.canned}
        if not canned:
            self.notify(
                "No canned replies yet: add [[replies.canned]] to config.toml.",
                severity="warning",
                markup=False,
            )
            return

        def chosen(name: str | None) -> None:
            if name is not None:
                self.wanted = name
                self.load_draft(canned[name])

        self.app.push_screen(
            ChoiceDialog(
                "Canned reply (it replaces the text; ctrl+z brings the text back)",
                [(c.name, c.title) for c in canned.values()],
                self.canned,
            ),
            chosen,
        )
