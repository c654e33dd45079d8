"""The command palette's desk commands, built from the screen it was opened on."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from db.core.migrations import PRIORITIES, STATUSES
from tui.actions import TicketActions


def _commands(screen: object) -> list[tuple[str, str, str]]:
    """(name, action, help) for what the screen can do."""
    found: list[tuple[str, str, str]] = []
    if isinstance(screen, TicketActions):
        found += [
            ("Assign to me", "assign_me", "take the ticket"),
            ("Assign to…", "assign", "name an agent"),
            *((f"Status: {s}", f"set_status('{s}')", "set the ticket's status") for s in STATUSES),
            ("Priority…", "priority", f"one of {', '.join(PRIORITIES)}"),
            ("Tags…", "tags", "set the ticket's tags"),
            ("Add a note", "note", "an internal note in the thread, never sent"),
            ("Mark / unmark discrepancy", "discrepancy", "a report after maintenance"),
            ("Link / unlink a window", "window", "the maintenance window it is about"),
        ]
    extra = [
        ("Search", "search", "filter the list"),
        ("Sort: next order", "sort", "newest, oldest, number, priority"),
        ("Toggle preview", "toggle_preview", "show or hide the preview pane"),
        ("Sources' health", "health", "each mail source's state and last error"),
        ("Discrepancy panel", "discrepancies", "into the panel and back to the list"),
        ("Refresh", "refresh", "read the database again"),
        ("Audit trail", "audit", "who did what when"),
        ("Show headers", "headers", "the message headers"),
        ("Save attachment", "save_attachment", "into a folder"),
        ("Reply", "reply", "answer the customer by mail"),
        ("Retry / cancel a mail", "mail", "a failed mail of the ticket, or a queued one"),
        ("Customer's other tickets", "customer", "the requester's tickets, open ones first"),
        ("Merge into…", "merge", "this ticket into another: messages, notes, tags move"),
        ("Unmerge…", "unmerge", "undo a merge into this ticket"),
        ("Split the message…", "split", "the message at the top of the view into a new ticket"),
    ]
    found += [entry for entry in extra if hasattr(screen, f"action_{entry[1]}")]
    return found


class TicketCommands(Provider):
    async def discover(self) -> Hits:
        """Before anything is typed the palette lists the screen's commands, in this order."""
        screen = self.screen
        for name, action, help_text in _commands(screen):
            yield DiscoveryHit(name, partial(screen.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        screen = self.screen
        for name, action, help_text in _commands(screen):
            score = matcher.match(name)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(name),
                    partial(screen.run_action, action),
                    help=help_text,
                )
