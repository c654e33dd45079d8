"""Every key of the desk, each binding with an id so `[keys]` in config.toml can remap it, and
the one description of them all: the `?` help screen and README's key tables are made from
`GROUPS` here (`python -m tui.keys` rewrites README's; a test checks both agree)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from textual.binding import Binding


def _b(
    key: str, action: str, description: str, id: str, show: bool = True, priority: bool = False
) -> Binding:
    return Binding(key, action, description, show=show, id=id, priority=priority)


# Ticket actions work on the list's highlighted ticket and on the open ticket alike. The rarer
# ones stay out of the footer so that `? Help` still fits in it at 100 columns.
TICKET_ACTIONS = [
    _b("a", "assign", "Assign", "assign"),
    _b("s", "status", "Status", "status"),
    _b("p", "priority", "Priority", "priority"),
    _b("f", "function", "Function", "function", show=False),
    _b("t", "tags", "Tags", "tags"),
    _b("n", "note", "Note", "note"),
    _b("d", "discrepancy", "Discrepancy", "discrepancy", show=False),
    _b("w", "window", "Window", "window", show=False),
]

# Help first: a narrow footer cuts off the end, and the agent must always find `?`.
APP = [
    _b("question_mark", "help", "Help", "help"),
    _b("q", "quit", "Quit", "quit"),
]

MAIN = [
    _b("slash", "search", "Search", "search"),
    _b("r", "refresh", "Refresh", "refresh", show=False),
    _b("o", "sort", "Sort", "sort", show=False),
    _b("v", "toggle_preview", "Preview", "preview", show=False),
    _b("H", "health", "Sources' health", "health", show=False),
    _b("right_square_bracket,tab", "next_section", "Next section", "next_section", show=False),
    _b("left_square_bracket,shift+tab", "prev_section", "Prev section", "prev_section", show=False),
    _b("x", "discrepancies", "Discrepancy panel", "discrepancies", show=False),
    _b("escape", "clear_search", "Clear search", "clear_search", show=False),
    *TICKET_ACTIONS,
]

# Moving in a list: the ticket list, and with the same ids (one remap for all) the pickers and
# the discrepancy panel.
MOVE = [
    _b("j,down", "cursor_down", "Down", "down", show=False),
    _b("k,up", "cursor_up", "Up", "up", show=False),
    _b("g,home", "first", "First", "top", show=False),
    _b("G,end", "last", "Last", "bottom", show=False),
]

LIST = [
    *MOVE,
    _b("pagedown,ctrl+d", "page_down", "Page down", "page_down", show=False),
    _b("pageup,ctrl+u", "page_up", "Page up", "page_up", show=False),
    _b("enter", "open", "Open", "open"),
]

PANEL = [
    *MOVE,
    _b("escape", "screen.focus_list", "Back to the list", "panel_back", show=False),
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
    _b("c", "customer", "The customer's other tickets", "customer", show=False),
    _b("M", "merge", "Merge into another ticket", "merge", show=False),
    _b("U", "unmerge", "Unmerge a ticket merged into this one", "unmerge", show=False),
    _b("X", "split", "Split the message into a new ticket", "split", show=False),
    _b("ctrl+r", "refresh", "Refresh", "refresh_ticket", show=False),
    _b("j,down", "scroll_down", "Down", "scroll_down", show=False),
    _b("k,up", "scroll_up", "Up", "scroll_up", show=False),
    _b("g,home", "scroll_home", "Top", "scroll_top", show=False),
    _b("G,end", "scroll_end", "Bottom", "scroll_bottom", show=False),
]

# Reading a long view (the thread, the audit trail, help): the ticket screen's scroll keys, by
# the same ids, so one remap moves both.
SCROLL = TICKET[-4:]

# The composer's keys win over the text area's own (ctrl+e is its end-of-line; `end` still is).
REPLY = [
    _b("ctrl+s", "send", "Send", "send", priority=True),
    _b("escape", "cancel", "Cancel", "cancel_reply", priority=True),
    _b("ctrl+e", "external_editor", "$EDITOR", "external_editor", priority=True),
    _b("ctrl+t", "canned", "Canned reply", "canned", priority=True),
]

ALL_IDS = frozenset(b.id for b in (*APP, *MAIN, *LIST, *PANEL, *TICKET, *REPLY) if b.id)


def binding(ident: str) -> Binding:
    """The binding with id `ident` (KeyError if none)."""
    for b in (*APP, *MAIN, *LIST, *PANEL, *TICKET, *REPLY):
        if b.id == ident:
            return b
    raise KeyError(ident)


# What a binding does, where its footer word says too little.
EXPLAIN = {
    "help": "this help",
    "refresh": "read the list again (it follows the database by itself)",
    "sort": "next sort order: newest, oldest, number, priority",
    "preview": "show or hide the preview pane",
    "health": "each mail source's state, last success and last error",
    "discrepancies": "into the discrepancy panel and back",
    "clear_search": "clear the search",
    "top": 'first row (on the ticket list it also shows what "N new ↑" counted)',
    "bottom": "last row",
    "assign": "assign (`me` is you)",
    "note": "an internal note: in the thread for agents, never sent",
    "discrepancy": "mark or unmark a discrepancy report",
    "window": "link or unlink a maintenance window",
    "panel_back": "back to the ticket list",
    "back": "back to the list",
    "reply": "reply to the customer",
    "headers": "show or hide the headers",
    "save_attachment": "save an attachment",
    "mail": "retry a failed mail of the ticket, or cancel a queued one",
    "reparse": "read the message at the top of the view again (desk-ingest, within a second)",
    "refresh_ticket": "read the ticket again",
    "send": "queue the reply",
    "cancel_reply": "leave the composer (asks first if you wrote something)",
    "external_editor": "write the reply in $EDITOR",
    "canned": "pick a canned reply (it replaces the text)",
}

# Keys that Textual's own widgets give, described here so help and README stay complete.
BUILT_IN = {
    "Everywhere": [("ctrl+p", "command palette: every command of the screen, before typing")],
    "Pickers and the discrepancy panel": [("enter", "pick / open the ticket")],
    "Reply": [
        ("ctrl+z, ctrl+y", "undo, redo (a canned reply is one edit)"),
        ("tab, shift+tab", "between the text and the Cc field"),
    ],
}

GROUPS = (
    ("Everywhere", APP),
    ("Ticket list", [*LIST, *MAIN]),
    ("Pickers and the discrepancy panel", PANEL),
    ("Ticket", TICKET),
    ("Reply", REPLY),
)

_NAMES = {"question_mark": "?", "slash": "/", "right_square_bracket": "]"}
_NAMES |= {"left_square_bracket": "[", "pagedown": "PgDn", "pageup": "PgUp"}


def shown_keys(binding: Binding, keymap: dict[str, str]) -> str:
    """The keys that trigger `binding` after any remap, as a person writes them."""
    chosen = keymap.get(binding.id or "", binding.key)
    return ", ".join(_NAMES.get(k.strip(), k.strip()) for k in chosen.split(","))


def rows(keymap: dict[str, str]) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """Per group: (keys, what they do, binding id or "" for a built-in key), in GROUPS order."""
    out = []
    for title, bindings in GROUPS:
        seen: set[str] = set()
        entries = []
        for b in bindings:
            if b.id in seen:
                continue
            seen.add(b.id or "")
            what = EXPLAIN.get(b.id or "") or b.description[:1].lower() + b.description[1:]
            entries.append((shown_keys(b, keymap), what, b.id or ""))
        entries += [(k, what, "") for k, what in BUILT_IN.get(title, [])]
        out.append((title, entries))
    return out


BEGIN = "<!-- keys: made by `python -m tui.keys` from tui/keys.py; edit there -->"
END = "<!-- end of keys -->"


def markdown() -> str:
    """README's key tables, with the default keys."""
    parts = [BEGIN]
    for title, entries in rows({}):
        parts += ["", f"**{title}**", "", "| key | does | id |", "| --- | --- | --- |"]
        for key, what, ident in entries:
            keys = ", ".join(f"`{k.strip()}`" for k in key.split(", "))
            parts.append(f"| {keys} | {what} | {ident} |")
    return "\n".join([*parts, "", END])


def readme_block(text: str) -> str | None:
    found = re.search(re.escape(BEGIN) + r".*?" + re.escape(END), text, re.S)
    return found.group(0) if found else None


def main() -> int:
    """Rewrite README.md's key tables from GROUPS."""
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    text = path.read_text(encoding="utf-8")
    old = readme_block(text)
    if old is None:
        print(f"{path} has no {BEGIN!r} … {END!r} block to rewrite", file=sys.stderr)
        return 1
    path.write_text(text.replace(old, markdown()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
