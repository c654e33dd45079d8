"""Choose the ticket to merge one into: the customer's other tickets at first, or what a query
finds as it is typed (the search syntax of `/`); enter picks, escape cancels."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from db.tickets import merge
from tui.widgets.customer import ticket_line

HINT = (
    "empty: the customer's other tickets; or #42, words, from:…\n"
    "down/up choose · enter picks (you confirm next) · esc cancels"
)


class MergeDialog(ModalScreen[int | None]):
    BINDINGS = [
        Binding("escape", "dismiss(None)", "Cancel"),
        Binding("down", "move(1)", "Down", show=False),
        Binding("up", "move(-1)", "Up", show=False),
    ]

    def __init__(self, ticket: dict[str, Any]) -> None:
        super().__init__()
        self.ticket = ticket
        self.found: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(f"Merge #{self.ticket['id']} into…"), classes="dialog-title")
            yield Input(placeholder="#42, words, from:…")
            yield OptionList()
            yield Label(Text(HINT), classes="dialog-hint")

    def on_mount(self) -> None:
        self.look_up("")

    @on(Input.Changed)
    def changed(self, event: Input.Changed) -> None:
        self.look_up(event.value)

    @work(thread=True, group="candidates", exclusive=True, exit_on_error=False)
    def look_up(self, text: str) -> None:
        app = self.app
        found = app.data.call(merge.candidates, self.ticket["id"], text, app.settings.agent)
        app.call_from_thread(self.show, text, found)

    def show(self, text: str, found: list[dict[str, Any]]) -> None:
        if text != self.query_one(Input).value:
            return  # typed on since: a newer answer is coming
        self.found = found
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options(Option(ticket_line(row), id=str(row["id"])) for row in found)
        if found:
            options.highlighted = 0
        else:
            options.add_option(Option(Text("no ticket found", "dim"), disabled=True))

    def action_move(self, step: int) -> None:
        options = self.query_one(OptionList)
        if self.found:
            current = options.highlighted or 0
            options.highlighted = max(0, min(len(self.found) - 1, current + step))

    @on(Input.Submitted)
    def submitted(self) -> None:
        highlighted = self.query_one(OptionList).highlighted
        if self.found and highlighted is not None:
            self.dismiss(self.found[highlighted]["id"])

    @on(OptionList.OptionSelected)
    def selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.dismiss(int(event.option.id))
