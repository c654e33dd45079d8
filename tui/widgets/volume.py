"""Tickets per hour over the last days as a sparkline, with maintenance windows marked below."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Sparkline, Static

HOURS = 72


class Volume(Vertical):
    DEFAULT_CSS = """
    Volume { height: 2; padding: 0 1; }
    Volume Horizontal { height: 1; }
    Volume Label { width: 18; color: $text-muted; }
    Volume Sparkline { width: 1fr; }
    Volume #window-marks { height: 1; padding-left: 18; color: $warning; }
    """

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label("tickets/h, 72 h", id="volume-label")
            yield Sparkline([0] * HOURS, summary_function=max, id="volume-spark")
        yield Static("", id="window-marks")

    def show(self, counts: list[int], window_hours: list[bool]) -> None:
        """`counts` per hour, oldest first; `window_hours` True where a window was in force."""
        self.query_one(Sparkline).data = counts or [0]
        label = self.query_one("#volume-label", Label)
        label.update(f"tickets/h, peak {max(counts or [0])}")
        marks = self.query_one("#window-marks", Static)
        width = max(1, marks.size.width - 18) if marks.size.width else HOURS
        if not any(window_hours):
            marks.update(Text(""))
            return
        # The sparkline spreads the hours across its width; the marks follow the same scale.
        line = "".join(
            "▀" if window_hours[min(len(window_hours) - 1, i * len(window_hours) // width)] else " "
            for i in range(width)
        )
        marks.update(Text(line + " window"))
