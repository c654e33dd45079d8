"""The agent's desk: for now the list of tickets, newest first, refreshed every second."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Footer, Header

from db import tickets
from db.config import Config
from db.connect import open_db


class DeskApp(App):
    TITLE = "Valuit Desk"
    BINDINGS = [("q", "quit", "Quit"), ("r", "refresh", "Refresh")]

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("#", "function", "from", "subject", "status", "msgs")
        self.action_refresh()
        self.set_interval(1.0, self.action_refresh)

    def action_refresh(self) -> None:
        db = open_db(self.config.database, migrate=False)
        rows = tickets.recent(db)
        db.close()
        table = self.query_one(DataTable)
        table.clear()
        for row in rows:
            # Text, never markup: subjects and names come from strangers.
            table.add_row(
                f"#{row['id']}",
                row["function"],
                Text(row["requester_addr"]),
                Text(row["subject"]),
                row["status"],
                str(row["message_count"]),
            )
