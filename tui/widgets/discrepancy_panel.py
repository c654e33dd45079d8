"""Discrepancy reports grouped by the window they follow, with counts; enter opens a ticket."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.message import Message
from textual.widgets import Tree

from tui import keys, safe


class DiscrepancyPanel(Tree[int]):
    BINDINGS = keys.PANEL
    DEFAULT_CSS = """
    DiscrepancyPanel { height: auto; max-height: 12; border-top: solid $warning; }
    """

    class Opened(Message):
        def __init__(self, ticket_id: int) -> None:
            super().__init__()
            self.ticket_id = ticket_id

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(Text("Discrepancy reports"), **kwargs)
        self.show_root = False
        self._shown: tuple[list[dict[str, Any]], dict[int, str]] | None = None

    def show(self, reports: list[dict[str, Any]], titles: dict[int, str]) -> None:
        """`reports` newest first, each with its `window_id` (or None); `titles` by window id.
        Unchanged, it is left alone; changed, the cursor stays on its report's ticket."""
        if (reports, titles) == self._shown:
            return
        self._shown = (reports, titles)
        keep = self.cursor_node.data if self.cursor_node is not None else None
        groups: dict[int | None, list[dict[str, Any]]] = {}
        for report in reports:
            groups.setdefault(report["window_id"], []).append(report)
        self.clear()
        for window_id, items in groups.items():
            if window_id is None:
                label = Text(f"no window ({len(items)})", "bold")
            else:
                label = Text(f"W{window_id} ", "bold yellow")
                label.append_text(safe.text(titles.get(window_id, ""), "bold yellow"))
                label.append(f" ({len(items)})", "bold yellow")
            node = self.root.add(label, expand=True)
            for item in items:
                leaf = Text(f"#{item['ticket']} ")
                leaf.append_text(safe.text(item["subject"]))
                added = node.add_leaf(leaf, data=item["ticket"])
                if keep is not None and item["ticket"] == keep:
                    self.call_after_refresh(self.move_cursor, added)
        self.display = bool(reports)

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
