"""Each window's live impact and the discrepancy reports grouped by the window they follow;
enter opens a ticket.

A window active or in its verification period shows what it has brought so far: tickets
received during it and discrepancy reports after it, by function, and each older ticket a
follow-up during it linked to it (marked "follow-up"). The counts come from
`db.maintenance.impact` on every refresh, so they move as mail arrives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.message import Message
from textual.widgets import Tree

from db.core.migrations import FUNCTIONS
from tui import keys, safe


def _count(label: str, part: dict[str, int]) -> Text:
    """'received 3: technical 2, sales 1'."""
    line = Text(f"{label} {part['total']}", "bold")
    found = ", ".join(f"{fn} {part[fn]}" for fn in FUNCTIONS if part[fn])
    if found:
        line.append(f": {found}", "dim")
    return line


class DiscrepancyPanel(Tree[int]):
    BINDINGS = keys.PANEL
    DEFAULT_CSS = """
    DiscrepancyPanel { max-height: 12; border-top: solid $warning; }
    """

    class Opened(Message):
        def __init__(self, ticket_id: int) -> None:
            super().__init__()
            self.ticket_id = ticket_id

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(Text("Windows and discrepancy reports"), **kwargs)
        self.show_root = False
        self._shown: tuple[list[dict[str, Any]], dict[int, str], list[dict[str, Any]]] | None = None

    def show(
        self,
        reports: list[dict[str, Any]],
        titles: dict[int, str],
        impacts: Sequence[dict[str, Any]] = (),
    ) -> None:
        """`reports` newest first, each with its `window_id` (or None); `titles` by window id;
        `impacts` as `tui.windows.overview` gives them (windows whose counts still move).
        Unchanged, it is left alone; changed, the cursor stays on its ticket."""
        if (reports, titles, list(impacts)) == self._shown:
            return
        self._shown = (reports, titles, list(impacts))
        keep = self.cursor_node.data if self.cursor_node is not None else None
        groups: dict[int | None, list[dict[str, Any]]] = {w["id"]: [] for w in impacts}
        for report in reports:
            groups.setdefault(report["window_id"], []).append(report)
        counted = {w["id"]: w for w in impacts}
        self.clear()
        for window_id, items in groups.items():
            if window_id is None:
                label = Text(f"no window ({len(items)})", "bold")
            else:
                label = Text(f"W{window_id} ", "bold yellow")
                label.append_text(safe.text(titles.get(window_id, ""), "bold yellow"))
                if window_id not in counted:  # else its counts say it, by function
                    label.append(f" ({len(items)})", "bold yellow")
            node = self.root.add(label, expand=True)
            if window_id in counted:
                self._impact(node, counted[window_id])
            for item in items:
                leaf = Text(f"#{item['ticket']} ")
                leaf.append_text(safe.text(item["subject"]))
                added = node.add_leaf(leaf, data=item["ticket"])
                if keep is not None and item["ticket"] == keep:
                    self.call_after_refresh(self.move_cursor, added)
        self.display = bool(groups)
        # A Tree counts its lines only when drawn, so `height: auto` keeps the height it had
        # before these nodes (none, at first); every node is expanded: one line each, plus
        # the border. `max-height` still caps it.
        lines = sum(1 + len(node.children) for node in self.root.children)
        self.styles.height = lines + 1

    @staticmethod
    def _impact(node: Any, window: dict[str, Any]) -> None:
        counts = window["counts"]
        node.add_leaf(_count("received", counts["received"]))
        node.add_leaf(_count("discrepancy reports", counts["discrepancies"]))
        for followup in window["followups"]:
            leaf = Text(f"#{followup['ticket']} ")
            leaf.append("follow-up ", "bold magenta")
            leaf.append_text(safe.text(followup["subject"]))
            node.add_leaf(leaf, data=followup["ticket"])
        more = counts["linked_followups"] - len(window["followups"])
        if more > 0:
            node.add_leaf(Text(f"… {more} more follow-ups", "dim"))

    def on_focus(self) -> None:
        if self.cursor_line < 0:
            self.cursor_line = 0

    def action_first(self) -> None:
        self.action_scroll_home()

    def action_last(self) -> None:
        self.action_scroll_end()

    def on_tree_node_selected(self, event: Tree.NodeSelected[int]) -> None:
        event.stop()
        if event.node.data is not None:
            self.post_message(self.Opened(event.node.data))
