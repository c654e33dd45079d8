"""The customer's other tickets beside a ticket: a count in the border, open ones first, enter
opens one (`db.tickets.customer`)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from db.tickets.search import OPEN_STATUSES
from tui import safe


def summary(info: dict[str, Any]) -> str:
    """ "3 other tickets, 1 open" for `other_tickets`' answer; "" when there are none."""
    count = info["count"]
    if not count:
        return ""
    return f"{count} other ticket{'s' if count != 1 else ''}, {info['open']} open"


def ticket_line(row: dict[str, Any]) -> Text:
    """One ticket of the list: its number, status and subject (the mail's text, made safe)."""
    line = Text(f"#{row['id']} ", "bold")
    line.append(f"{row['status']} ", "green" if row["status"] in OPEN_STATUSES else "dim")
    line.append_text(safe.text(row["subject"]))
    return line


class CustomerTickets(OptionList):
    DEFAULT_CSS = """
    CustomerTickets { width: 40; height: 1fr; border: round $primary 50%; }
    CustomerTickets:focus { border: round $primary; }
    """
    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    class Opened(Message):
        def __init__(self, ticket_id: int) -> None:
            super().__init__()
            self.ticket_id = ticket_id

    def show(self, info: dict[str, Any]) -> None:
        """`info` as `db.tickets.customer.other_tickets` gives it."""
        highlighted = self.highlighted
        self.clear_options()
        self.add_options(Option(ticket_line(row), id=str(row["id"])) for row in info["tickets"])
        self.border_title = summary(info)
        shown = len(info["tickets"])
        self.border_subtitle = f"{shown} shown" if shown < info["count"] else ""
        if self.option_count:
            self.highlighted = min(highlighted or 0, self.option_count - 1)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.Opened(int(event.option.id)))
