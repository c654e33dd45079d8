"""The status line: each mail source's state and last success, and the outgoing mail that
waits or failed; trouble stands out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.text import Text
from textual.widgets import Static

from db.core import clock
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


def describe_outbox(counts: dict[str, int], can_send: bool) -> Text:
    """'mail out: 3 queued, 1 failed', or nothing when all is sent."""
    line = Text()
    waiting, failed = counts.get("queued", 0) + counts.get("sending", 0), counts.get("failed", 0)
    if waiting:
        line.append(f"mail out: {waiting} queued", "yellow" if can_send else "bold yellow")
        if not can_send:
            line.append(" (no [smtp]: not sent)", "bold yellow")
    if failed:
        line.append(", " if waiting else "mail out: ")
        line.append(f"{failed} failed (desk outbox --status failed)", "bold white on red")
    return line


class StatusLine(Static):
    DEFAULT_CSS = """
    StatusLine { height: 1; background: $panel; padding: 0 1; }
    """

    def show(self, sources: list[dict[str, Any]], outbox: dict[str, int], can_send: bool) -> None:
        # Mail out first: the line is cut at the screen's edge, and a failure there needs action.
        line = describe_outbox(outbox, can_send)
        if line:
            line.append("  ")
        line.append_text(describe(sources, clock.now()))
        self.update(line)
