"""The search prompt: free text and filters, with the syntax shown under it."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

# Lines within the dialog's width (64 cells), so that no filter is cut off.
SYNTAX = (
    "words search subjects, senders and bodies · #42 a ticket number\n"
    "fn:technical  status:open  priority:high  assignee:me\n"
    "is:unassigned  is:discrepancy  is:during-window  is:via-list\n"
    "is:merged  window:3  age:>2h  age:<30m  age:>3d\n"
    "from:ann@example.com  from:example.com  a sender, or part of one"
)


class SearchDialog(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, query: str = "") -> None:
        super().__init__()
        self.query_text = query

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Search (enter to apply, empty to clear)", classes="dialog-title")
            yield Input(value=self.query_text, placeholder="e.g. fn:sales is:unassigned invoice")
            yield Label(Text(SYNTAX), classes="dialog-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())
