"""A scrolling view that reads with the desk's keys (j/k/g/G, remapped with the thread's)."""

from __future__ import annotations

from textual.containers import VerticalScroll

from tui import keys


class Reader(VerticalScroll, can_focus=True):
    BINDINGS = keys.SCROLL

    def action_scroll_down(self) -> None:
        self.scroll_down(animate=False)

    def action_scroll_up(self) -> None:
        self.scroll_up(animate=False)

    def action_scroll_home(self) -> None:
        self.scroll_home(animate=False)

    def action_scroll_end(self) -> None:
        self.scroll_end(animate=False)
