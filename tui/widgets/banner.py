"""The banner: the platform's state. An active window stands out, an emergency past its expected
end says it is overrunning (ops must extend, update or complete it), one starting within 48 hours
is announced quietly, each with the banner its users see on the platform's dashboard (the
notice ledger's text, word for word); overdue post-maintenance reports are named, and so is a
window whose recurring rule is gone until an operator cancels or keeps it; nothing in force is
quiet."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from rich.text import Text
from textual.widgets import Static

from db.core import clock
from tui import safe
from tui.format import local


def _until(stamp: str, *, since: bool = False) -> str:
    """'1 h 05 min' from now to `stamp` (or, `since`, from `stamp` to now); never negative."""
    delta = clock.parse(stamp) - clock.now()
    minutes = max(0, int((-delta if since else delta).total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def _users_see(w: dict[str, Any]) -> Text:
    """The platform dashboard's banner for the window, word for word, or that there is none."""
    if not w.get("banner"):
        return Text("  users have not been told yet (no notice issued)", "italic")
    line = Text("  users see: ", "italic")
    line.append_text(safe.text(w["banner"]))
    return line


class Banner(Static):
    DEFAULT_CSS = """
    Banner { height: auto; padding: 0 1; color: $text-muted; }
    Banner.-active { background: $error; color: $text; text-style: bold; }
    Banner.-upcoming { background: $warning 25%; color: $text; }
    """

    def show(self, state: dict[str, Any], zone: tzinfo | None) -> None:
        """`state`: {"active": [...], "upcoming": [...], "overdue_reports": [...],
        "rule_gone": [...]} of windows, each with id, title, start_at, end_at and features
        (and rule_gone, the sentence why)."""
        active, upcoming = state.get("active", []), state.get("upcoming", [])
        overdue = state.get("overdue_reports", [])
        lines: list[Text] = []
        for w in active:
            overrun = w.get("status") == "overrunning"
            head = "EMERGENCY OVERRUNNING" if overrun else "MAINTENANCE IN PROGRESS"
            line = Text(f"{head}  W{w['id']} ")
            line.append_text(safe.text(w["title"]))
            if overrun:
                late = _until(w["end_at"], since=True)
                line.append(
                    f"  expected end {local(w['end_at'], zone)} passed {late} ago: "
                    "extend, update or complete it"
                )
            else:
                line.append(f"  ends in {_until(w['end_at'])} ({local(w['end_at'], zone)})")
            if w.get("features"):
                line.append("  unavailable: ")
                line.append_text(safe.text(", ".join(w["features"])))
            lines += [line, _users_see(w)]
        for w in upcoming:
            line = Text(f"Planned: W{w['id']} ")
            line.append_text(safe.text(w["title"]))
            line.append(f" starts {local(w['start_at'], zone)} (in {_until(w['start_at'])})")
            lines += [line, _users_see(w)]
        for w in overdue:
            line = Text(f"Post-maintenance report overdue: W{w['id']} ", "bold")
            line.append_text(safe.text(w["title"]))
            lines.append(line)
        for w in state.get("rule_gone", []):
            line = Text(f"W{w['id']} ", "bold")
            line.append_text(safe.text(w["title"]))
            line.append(f" ({local(w['start_at'], zone)}): ")
            line.append_text(safe.text(w["rule_gone"]))
            line.append(f"; desk window cancel W{w['id']} or desk window keep W{w['id']}")
            lines.append(line)
        if not lines:
            lines.append(Text("No maintenance window in force."))
        self.set_class(bool(active), "-active")
        self.set_class(bool(upcoming) and not active, "-upcoming")
        self.update(Text("\n").join(lines))
