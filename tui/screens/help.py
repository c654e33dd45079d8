"""Help: the keys in force (after any remapping in config.toml), the marks and the search syntax;
the keys come from `tui.keys.rows`, as README's tables do."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Static

from tui import keys
from tui.dialogs.search import SYNTAX
from tui.widgets.reader import Reader
from tui.widgets.ticket_list import MARKS


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss(None)", "Close")]

    def on_mount(self) -> None:
        self.query_one(Reader).focus()

    def compose(self) -> ComposeResult:
        with Reader(classes="dialog wide", id="help"):
            yield Static(Text("Valuit Desk: keys", "bold"))
            for title, entries in keys.rows(self.app.settings.keys):
                table = Table(title=title, title_justify="left", box=None, show_header=False)
                table.add_column(style="bold cyan", min_width=16)
                table.add_column()
                table.add_column(style="dim")
                for key, what, ident in entries:
                    table.add_row(key, what, ident)
                yield Static(table)
            marks = Text("Marks: ")
            for mark, meaning, style in MARKS:
                marks.append(mark, style)
                marks.append(f" {meaning}  ")
            yield Static(marks)
            yield Static(Text("Search: /\n" + SYNTAX))
            yield Static(Text("Remap keys in [keys] of config.toml: binding id = key(s).", "dim"))
