"""The mail sources' health: each source's state, when it last fetched and its last error."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from db.core import clock
from tui.widgets.reader import Reader
from tui.widgets.status_line import details


class HealthDialog(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,H", "dismiss(None)", "Close")]

    def __init__(self, sources: list[dict[str, Any]]) -> None:
        super().__init__()
        self.sources = sources

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("Mail sources", classes="dialog-title")
            with Reader():
                lines = details(self.sources, clock.now())
                for line in lines or [Text("No mail source has reported yet.", "yellow")]:
                    yield Static(line)
