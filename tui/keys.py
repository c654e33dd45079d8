"""Every key binding of the desk, each with an id so `[keys]` in config.toml can remap it."""

from __future__ import annotations

from textual.binding import Binding


def _b(
    key: str, action: str, description: str, id: str, show: bool = True, priority: bool = False
) -> Binding:
    return Binding(key, action, description, show=show, id=id, priority=priority)


# Ticket actions work on the list's highlighted ticket and on the open ticket alike.
TICKET_ACTIONS = [
    _b("a", "assign", "Assign", "assign"),
    _b("s", "status", "Status", "status"),
    _b("p", "priority", "Priority", "priority"),
    _b("f", "function", "Function", "function", show=False),
    _b("t", "tags", "Tags", "tags"),
    _b("n", "note", "Note", "note"),
    _b("d", "discrepancy", "Discrepancy", "discrepancy"),
    _b("w", "window", "Window", "window"),
]

APP = [
    _b("q", "quit", "Quit", "quit"),
    _b("question_mark", "help", "Help", "help"),
]

MAIN = [
    _b("slash", "search", "Search", "search"),
    _b("r", "refresh", "Refresh", "refresh"),
    _b("o", "sort", "Sort", "sort", show=False),
    _b("v", "toggle_preview", "Preview", "preview", show=False),
    _b("right_square_bracket,tab", "next_section", "Next section", "next_section", show=False),
    _b("left_square_bracket,shift+tab", "prev_section", "Prev section", "prev_section", show=False),
    _b("x", "discrepancies", "Discrepancy panel", "discrepancies", show=False),
    _b("escape", "clear_search", "Clear search", "clear_search", show=False),
    *TICKET_ACTIONS,
]

LIST = [
    _b("j,down", "cursor_down", "Down", "down", show=False),
    _b("k,up", "cursor_up", "Up", "up", show=False),
    _b("g,home", "first", "First", "top", show=False),
    _b("G,end", "last", "Last", "bottom", show=False),
    _b("pagedown,ctrl+d", "page_down", "Page down", "page_down", show=False),
    _b("pageup,ctrl+u", "page_up", "Page up", "page_up", show=False),
    _b("enter", "open", "Open", "open"),
]

# In footer order: what an agent does most comes first, as a narrow footer cuts off the end.
TICKET = [
    _b("escape", "back", "Back", "back"),
    _b("r", "reply", "Reply", "reply"),
    *TICKET_ACTIONS,
    _b("h", "headers", "Headers", "headers"),
    _b("e", "audit", "Audit trail", "audit"),
    _b("S", "save_attachment", "Save attachment", "save_attachment"),
    _b("R", "mail", "Retry / cancel mail", "mail", show=False),
    _b("P", "reparse", "Read the message again", "reparse", show=False),
    _b("ctrl+r", "refresh", "Refresh", "refresh_ticket", show=False),
    _b("j,down", "scroll_down", "Down", "scroll_down", show=False),
    _b("k,up", "scroll_up", "Up", "scroll_up", show=False),
    _b("g,home", "scroll_home", "Top", "scroll_top", show=False),
    _b("G,end", "scroll_end", "Bottom", "scroll_bottom", show=False),
]

# The composer's keys win over the text area's own (ctrl+e is its end-of-line; `end` still is).
REPLY = [
    _b("ctrl+s", "send", "Send", "send", priority=True),
    _b("escape", "cancel", "Cancel", "cancel_reply", priority=True),
    _b("ctrl+e", "external_editor", "$EDITOR", "external_editor", priority=True),
    _b("ctrl+t", "canned", "Canned reply", "canned", priority=True),
]

ALL_IDS = frozenset(b.id for b in (*APP, *MAIN, *LIST, *TICKET, *REPLY) if b.id)
