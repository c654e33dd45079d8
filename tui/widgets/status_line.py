"""The status line: each mail source's state and last success; a failing source stands out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.text import Text
from textual.widgets import Static

from db import clock
from tui import safe
from tui.format import age

# The states a source is in when mail may not be arriving.
FAILING = ("backing-off", "failed-auth", "stopped")


def describe(sources: list[dict[str, Any]], now: datetime) -> Text:
    if not sources:
        return Text("no mail source has reported yet (is desk-ingest running?)", "yellow")
    line = Text()
    for i, src in enumerate(sources):
        if i:
            line.append("  ")
        failing = src["state"] in FAILING or (
            src["last_error_at"] and (src["last_success"] or "") < src["last_error_at"]
        )
        style = "bold white on red" if failing else "green"
        line.append_text(safe.text(src["name"], style))
        line.append(f" {src['state']}", style)
        if src["last_success"]:
            line.append(f" ✓{age(src['last_success'], now)}", "dim")
        if failing and src["last_error"]:
            line.append(" ")
            line.append_text(safe.text(src["last_error"][:60], "red"))
    return line


class StatusLine(Static):
    DEFAULT_CSS = """
    StatusLine { height: 1; background: $panel; padding: 0 1; }
    """

    def show(self, sources: list[dict[str, Any]]) -> None:
        self.update(describe(sources, clock.now()))
