"""The audit trail of one ticket: who did what when, oldest first."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from tui import safe
from tui.format import local
from tui.widgets.reader import Reader


def describe(event: dict[str, Any], zone: tzinfo | None) -> Text:
    line = Text(f"{local(event['at'], zone)}  ", "dim")
    line.append_text(safe.text(event["actor"], "bold"))
    line.append(f"  {event['action']}")
    detail = event["detail"]
    if "from" in detail or "to" in detail:
        line.append(": ")
        line.append_text(safe.text(f"{detail.get('from')} → {detail.get('to')}"))
    elif event["action"] == "note":
        line.append(": ")
        line.append_text(safe.text(detail.get("text", ""), multiline=True))
    elif detail:
        line.append("  ")
        line.append_text(safe.text(", ".join(f"{k}={v}" for k, v in detail.items()), "dim"))
    return line


class AuditDialog(ModalScreen[None]):
    BINDINGS = [Binding("escape,e,q", "dismiss(None)", "Close")]

    def __init__(self, ticket_id: int, events: list[dict[str, Any]], zone: tzinfo | None) -> None:
        super().__init__()
        self.ticket_id = ticket_id
        self.events = events
        self.zone = zone

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(f"Audit trail of #{self.ticket_id}", classes="dialog-title")
            with Reader():
                for event in self.events:
                    yield Static(describe(event, self.zone))
