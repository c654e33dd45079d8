"""The footer, fitted to the terminal: `? Help` is always in it.

Textual's footer lays every shown key side by side and a narrow terminal cuts off the end, where
the app's keys (Help) come, or the command palette's key covers them. This one keeps Help and the
palette's key, then the screen's keys in their order (tui/keys.py lists what agents do most
first) while they fit; the keys left out still work, and `?` and the palette list them all.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

ALWAYS = ("help",)  # actions never left out


def key_width(key: FooterKey) -> int:
    """The cells a key takes: its key and description, a space between, one cell of padding
    on either side (Textual's FooterKey style)."""
    description = cell_len(key.description)
    return cell_len(key.key_display) + (description + 1 if description else 0) + 2


class DeskFooter(Footer):
    """A Footer that leaves out the screen's later keys when they would not fit."""

    def compose(self) -> ComposeResult:
        widgets = list(super().compose())
        width = self.size.width or self.app.size.width
        palette = [w for w in widgets if w.has_class("-command-palette")]
        keys = [w for w in widgets if isinstance(w, FooterKey) and w not in palette]
        if len(keys) != len(widgets) - len(palette):
            yield from widgets  # grouped keys: Textual's own layout
            return
        room = width - sum(key_width(k) for k in palette)
        room -= sum(key_width(k) for k in keys if k.action in ALWAYS)
        kept: list[Widget] = []
        full = False
        for key in keys:
            if key.action not in ALWAYS:
                # In order: once one does not fit, the later (rarer) ones stay out too.
                full = full or key_width(key) > room
                if full:
                    continue
                room -= key_width(key)
            kept.append(key)
        self.styles.grid_size_columns = len(kept)
        yield from kept
        yield from palette

    def on_resize(self) -> None:
        # What fits depends on the width: lay the keys out again.
        self.refresh(recompose=True)
