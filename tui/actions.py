"""The ticket actions (assign, status, priority, function, tags, note, discrepancy, window),
shared by the main screen (on the highlighted ticket) and the ticket screen (on the open one).

Each asks in a dialog, then writes in a worker with the version the agent saw; a conflict shows
one sentence and the fresh state.
"""

from __future__ import annotations

import json
from typing import Any

from textual import work

from db.core import clock
from db.core.errors import DeskError
from db.core.migrations import FUNCTIONS, PRIORITIES, STATUSES
from db.maintenance import marking
from db.tickets import tickets
from tui import windows
from tui.dialogs.choice import ChoiceDialog
from tui.dialogs.text_input import TextDialog
from tui.messages import ActionDone, ActionFailed


class TicketActions:
    """Mixed into a Screen that provides `current_ticket()` and `reload()`."""

    def current_ticket(self) -> dict[str, Any] | None:
        raise NotImplementedError

    def reload(self) -> None:
        raise NotImplementedError

    def _ticket_or_say(self) -> dict[str, Any] | None:
        ticket = self.current_ticket()
        if ticket is None:
            self.notify("No ticket is selected.", severity="warning")  # type: ignore[attr-defined]
        return ticket

    def action_assign(self) -> None:
        ticket = self._ticket_or_say()
        if ticket is None:
            return
        agent = self.app.settings.agent  # type: ignore[attr-defined]

        def chosen(value: str | None) -> None:
            if value is not None:
                who = agent if value.strip().lower() == "me" else value.strip()
                self.change(ticket, assignee=who)

        self.app.push_screen(  # type: ignore[attr-defined]
            TextDialog(
                f"Assign #{ticket['id']} to",
                ticket["assignee"] or agent,
                "a name; 'me' is you; empty unassigns",
            ),
            chosen,
        )

    def action_assign_me(self) -> None:
        ticket = self._ticket_or_say()
        if ticket is not None:
            self.change(ticket, assignee=self.app.settings.agent)  # type: ignore[attr-defined]

    def _choose(self, field: str, values: tuple[str, ...]) -> None:
        ticket = self._ticket_or_say()
        if ticket is None:
            return

        def chosen(value: str | None) -> None:
            if value is not None and value != ticket[field]:
                self.change(ticket, **{field: value})

        self.app.push_screen(  # type: ignore[attr-defined]
            ChoiceDialog(
                f"{field.capitalize()} of #{ticket['id']}",
                [(v, v) for v in values],
                ticket[field],
            ),
            chosen,
        )

    def action_status(self) -> None:
        self._choose("status", STATUSES)

    def action_set_status(self, status: str) -> None:
        ticket = self._ticket_or_say()
        if ticket is not None:
            self.change(ticket, status=status)

    def action_priority(self) -> None:
        self._choose("priority", PRIORITIES)

    def action_function(self) -> None:
        """The ticket's main function: the one whose SLA calendar and targets it is held to."""
        self._choose("function", FUNCTIONS)

    def action_tags(self) -> None:
        ticket = self._ticket_or_say()
        if ticket is None:
            return
        current = " ".join(json.loads(ticket["tags"] or "[]"))

        def chosen(value: str | None) -> None:
            if value is not None:
                self.change(ticket, tags=value.replace(",", " ").split())

        self.app.push_screen(  # type: ignore[attr-defined]
            TextDialog(f"Tags of #{ticket['id']}", current, "separate tags with spaces"), chosen
        )

    def action_note(self) -> None:
        ticket = self._ticket_or_say()
        if ticket is None:
            return

        def chosen(value: str | None) -> None:
            if value:
                self.write_note(ticket["id"], value)

        self.app.push_screen(  # type: ignore[attr-defined]
            TextDialog(f"Internal note on #{ticket['id']}", "", "only agents see notes"), chosen
        )

    def action_discrepancy(self) -> None:
        ticket = self._ticket_or_say()
        if ticket is not None:
            self.toggle_discrepancy(ticket)

    @work(thread=True, group="action", exit_on_error=False)
    def toggle_discrepancy(self, ticket: dict[str, Any]) -> None:
        """Mark or unmark through the window rules' own API, which also links the window the
        report is about and keeps the rule from overriding the agent."""
        app = self.app  # type: ignore[attr-defined]
        marked = ticket["kind"] == "discrepancy"
        try:
            if marked:
                app.data.call(marking.unmark, ticket["id"], app.settings.agent)
            else:
                app.data.call(marking.mark, ticket["id"], app.settings.agent)
        except DeskError as exc:
            self.post_message(ActionFailed(exc.message))  # type: ignore[attr-defined]
            return
        said = "no longer a discrepancy report" if marked else "marked as a discrepancy report"
        self.post_message(ActionDone(f"#{ticket['id']}: {said}"))  # type: ignore[attr-defined]

    def action_window(self) -> None:
        ticket = self._ticket_or_say()
        if ticket is not None:
            self.choose_window(ticket)

    @work(thread=True, group="action", exit_on_error=False)
    def choose_window(self, ticket: dict[str, Any]) -> None:
        app = self.app  # type: ignore[attr-defined]
        choices = [("none", "no window (unlink)"), *app.data.call(windows.linkable, clock.now())]
        current = str(ticket.get("window_id") or "none")

        def chosen(value: str | None) -> None:
            if value is not None and value != current:
                self.change(ticket, window_id=None if value == "none" else int(value))

        app.call_from_thread(
            app.push_screen,
            ChoiceDialog(f"Window of #{ticket['id']}", choices, current),
            chosen,
        )

    @work(thread=True, group="action", exit_on_error=False)
    def change(self, ticket: dict[str, Any], **changes: Any) -> None:
        app = self.app  # type: ignore[attr-defined]
        try:
            app.data.call(
                tickets.update, ticket["id"], ticket["version"], app.settings.agent, **changes
            )
        except DeskError as exc:  # a ConflictError too: the message says what to do
            self.post_message(ActionFailed(exc.message))  # type: ignore[attr-defined]
            return
        said = ", ".join(
            f"{k} → {v if not isinstance(v, list) else ' '.join(v)}" for k, v in changes.items()
        )
        self.post_message(ActionDone(f"#{ticket['id']}: {said or 'unchanged'}"))  # type: ignore[attr-defined]

    @work(thread=True, group="action", exit_on_error=False)
    def write_note(self, ticket_id: int, text: str) -> None:
        app = self.app  # type: ignore[attr-defined]
        try:
            app.data.call(tickets.add_note, ticket_id, app.settings.agent, text)
        except DeskError as exc:
            self.post_message(ActionFailed(exc.message))  # type: ignore[attr-defined]
            return
        self.post_message(ActionDone(f"#{ticket_id}: note added"))  # type: ignore[attr-defined]

    def on_action_done(self, message: ActionDone) -> None:
        # No reload here: the commit changes the database, and the live watch reloads once.
        self.notify(message.text, timeout=3, markup=False)  # type: ignore[attr-defined]

    def on_action_failed(self, message: ActionFailed) -> None:
        self.notify(message.text, severity="error", timeout=8, markup=False)  # type: ignore[attr-defined]
        self.reload()
