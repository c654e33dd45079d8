"""Save one attachment into a folder the agent names, under its stored sanitised name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from db.mailin.names import safe_name
from tui import safe
from tui.widgets.picker import Picker


class SaveAttachmentDialog(ModalScreen[tuple[int, Path] | None]):
    """Returns (attachment id, folder) or None."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, attachments: list[dict[str, Any]], folder: Path) -> None:
        super().__init__()
        self.attachments = attachments
        self.folder = folder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("Save an attachment: pick it, then enter to save", classes="dialog-title")
            options = []
            for a in self.attachments:
                label = safe.text(a["display_name"])
                label.append(f"  {a['content_type']}, {a['size']} bytes → ", "dim")
                label.append_text(safe.text(safe_name(a["safe_name"]), "dim"))
                options.append(Option(label, id=str(a["id"])))
            yield Picker(*options)
            yield Label(Text("into folder:"))
            yield Input(value=str(self.folder), id="folder")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.query_one("#folder", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        options = self.query_one(OptionList)
        index = options.highlighted if options.highlighted is not None else 0
        self.dismiss((self.attachments[index]["id"], Path(event.value).expanduser()))
