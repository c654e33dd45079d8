"""Help: the keys in force (after any remapping in config.toml), the marks and the search syntax."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui import keys
from tui.dialogs.search import SYNTAX
from tui.widgets.ticket_list import MARKS

GROUPS = (
    ("Everywhere", keys.APP),
    ("Ticket list", [*keys.LIST, *keys.MAIN]),
    ("Ticket", keys.TICKET),
    ("Reply", keys.REPLY),
)


def _keys_of(binding: Binding, keymap: dict[str, str]) -> str:
    chosen = keymap.get(binding.id or "", binding.key)
    return ", ".join(
        k.replace("question_mark", "?").replace("slash", "/") for k in chosen.split(",")
    )


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss(None)", "Close")]

    def compose(self) -> ComposeResult:
        keymap = self.app.settings.keys
        with VerticalScroll(classes="dialog wide", id="help"):
            yield Static(Text("Valuit Desk: keys", "bold"))
            for title, bindings in GROUPS:
                table = Table(title=title, title_justify="left", box=None, show_header=False)
                table.add_column(style="bold cyan", min_width=16)
                table.add_column()
                table.add_column(style="dim")
                seen: set[str] = set()
                for b in bindings:
                    if b.id in seen:
                        continue
                    seen.add(b.id or "")
                    table.add_row(_keys_of(b, keymap), b.description, b.id)
                yield Static(table)
            marks = Text("Marks: ")
            for mark, meaning, style in MARKS:
                marks.append(mark, style)
                marks.append(f" {meaning}  ")
            yield Static(marks)
            yield Static(Text("Search: /\n" + SYNTAX))
            yield Static(
                Text(
                    "ctrl+p opens the command palette; remap keys in [keys] of config.toml.", "dim"
                )
            )
