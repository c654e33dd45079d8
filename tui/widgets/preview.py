"""The preview pane: the highlighted ticket's facts and its latest message, as plain text."""

from __future__ import annotations

import json
from datetime import tzinfo
from typing import Any

from rich.console import Group
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from db.maintenance import discrepancy
from tui import safe
from tui.format import html_text, local, mail_text

PREVIEW_CHARS = 4000  # a preview, not the thread: the ticket screen shows the rest


def requester(ticket: dict[str, Any]) -> Text:
    """Who opened the ticket, 'Name <addr>'; a ticket whose mail named no address to write to
    says so, since no reply can be sent on it."""
    name, addr = ticket["requester_name"] or "", ticket["requester_addr"]
    if addr:
        return safe.text(f"{name} <{addr}>" if name else addr)
    line = safe.text(f"{name} " if name else "")
    line.append("(no usable sender)", "bold red")
    return line


def facts(ticket: dict[str, Any]) -> Text:
    """One line of a ticket's state, shared by the preview and the ticket screen."""
    line = Text()
    line.append(f"{ticket['status']}", "bold")
    line.append(f" · {ticket['priority']} · ")
    line.append_text(safe.text(ticket["assignee"] or "unassigned"))
    tags = json.loads(ticket.get("tags") or "[]")
    if tags:
        line.append(" · ")
        line.append_text(safe.text(" ".join(f"#{t}" for t in tags), "cyan"))
    if ticket["kind"] == "discrepancy":
        line.append(" · discrepancy report", "bold yellow")
        why = discrepancy.reason(ticket.get("kind_reason"))
        if why:
            line.append_text(safe.text(f" ({why})", "yellow"))
    if ticket.get("window_id"):
        line.append(f" · about window W{ticket['window_id']}", "magenta")
    if ticket.get("during_window_id"):
        line.append(f" · received during W{ticket['during_window_id']}", "magenta")
    if ticket.get("followup_windows"):
        during = ", ".join(f"W{w}" for w in ticket["followup_windows"])
        line.append(f" · follow-up during {during}", "magenta")
    return line


def body_of(message: dict[str, Any]) -> str:
    return message["body_text"] or html_text(message["body_html"] or "")


class Preview(VerticalScroll):
    DEFAULT_CSS = """
    Preview { border-left: solid $primary 50%; padding: 0 1; }
    """

    def compose(self):  # noqa: ANN201 - a generator of one widget
        yield Static("", id="preview-body")

    shown: int | None = None  # the ticket on show, for tests and for the screen

    def clear(self) -> None:
        self.shown = None
        self.query_one("#preview-body", Static).update("")

    def show(
        self, ticket: dict[str, Any], last: dict[str, Any] | None, zone: tzinfo | None
    ) -> None:
        self.shown = ticket["id"]
        head = Text()
        head.append(f"#{ticket['id']} ", "bold")
        head.append_text(safe.text(ticket["subject"], "bold"))
        who = requester(ticket)
        who.append(f"  {ticket['message_count']} message(s)")
        parts: list[Any] = [head, who, facts(ticket), Text("")]
        if last is not None:
            ours = "sent by us, " if last["direction"] == "out" else ""
            parts.append(Text(f"latest, {ours}{local(last['received_at'], zone)}:", "dim"))
            parts.append(mail_text(body_of(last)[:PREVIEW_CHARS]))
        self.query_one("#preview-body", Static).update(Group(*parts))
