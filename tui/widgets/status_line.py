"""The status line: the outgoing mail that waits or failed, and the mail sources in a few words
("5 sources ✓", the failing ones named); each source's state, last success and error in
`details`, which the health dialog shows. Trouble stands out."""

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


def _failing(src: dict[str, Any]) -> bool:
    return src["state"] in FAILING or bool(
        src["last_error_at"] and (src["last_success"] or "") < src["last_error_at"]
    )


def describe(sources: list[dict[str, Any]], now: datetime) -> Text:
    """The sources in a few words: how many are fine, and each failing one by name."""
    if not sources:
        return Text("no mail source has reported yet (is desk-ingest running?)", "yellow")
    failing = [src for src in sources if _failing(src)]
    fine = len(sources) - len(failing)
    line = Text()
    if fine:
        line.append(f"{fine} source{'s' if fine > 1 else ''} ✓", "green")
    for src in failing:
        line.append(", " if line else "")
        line.append_text(safe.text(src["name"], "bold white on red"))
        line.append(f" {src['state']}", "bold white on red")
    return line


def details(sources: list[dict[str, Any]], now: datetime) -> list[Text]:
    """One line per source: its state, when it last fetched, and its last error if failing."""
    lines = []
    for src in sources:
        failing = _failing(src)
        style = "bold white on red" if failing else "green"
        line = safe.text(src["name"], style)
        line.append(f" {src['state']}", style)
        if src["last_success"]:
            line.append(f"  last fetched {age(src['last_success'], now)} ago", "dim")
        if failing and src["last_error"]:
            line.append("  ")
            line.append_text(safe.text(src["last_error"], "red"))
        lines.append(line)
    return lines


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

    def show(
        self, sources: list[dict[str, Any]], outbox: dict[str, int], can_send: bool, key: str
    ) -> None:
        """`key` opens the health dialog, named at the end of the line."""
        # Mail out first: the line is cut at the screen's edge, and a failure there needs action.
        line = describe_outbox(outbox, can_send)
        if line:
            line.append("  ")
        line.append_text(describe(sources, clock.now()))
        if sources:
            line.append(f"  ({key}: details)", "dim")
        self.update(line)
