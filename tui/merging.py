"""Merging the open ticket into another, undoing a merge into it, and splitting a message out
into a new ticket (`db.tickets.merge`), for the ticket screen.

Each asks first (a picker, a choice, a confirmation), then writes in a worker; the live refresh
shows the result, and a split opens the new ticket.
"""

from __future__ import annotations

from typing import Any

from textual import work

from db.core.errors import DeskError
from db.tickets import merge
from tui import safe
from tui.dialogs.choice import ChoiceDialog
from tui.dialogs.confirm import ConfirmDialog
from tui.dialogs.merge import MergeDialog
from tui.format import local
from tui.messages import ActionDone, ActionFailed


class MergeActions:
    """Mixed into the ticket screen, which provides `data` (with `ticket` and `merged_here`),
    `ticket_id`, `shown` and `message_under_cursor()`."""

    data: dict[str, Any] | None
    ticket_id: int
    shown: list[int]

    def message_under_cursor(self) -> int | None:
        raise NotImplementedError

    def action_merge(self) -> None:
        """Merge this ticket into one the agent picks, after a confirmation."""
        if self.data is None:
            return
        ticket = self.data["ticket"]

        def confirmed(target: int, yes: bool | None) -> None:
            if yes:
                self.merge_into(ticket, target)

        def picked(target: int | None) -> None:
            if target is not None:
                question = (
                    f"Merge #{ticket['id']} into #{target}? Its messages, notes, tags and "
                    f"people move to #{target}, and its mail goes there from now on. "
                    f"U on #{target} undoes it."
                )
                self.app.push_screen(ConfirmDialog(question), lambda yes: confirmed(target, yes))

        self.app.push_screen(MergeDialog(ticket), picked)

    @work(thread=True, group="action", exit_on_error=False)
    def merge_into(self, ticket: dict[str, Any], target: int) -> None:
        app = self.app
        try:
            app.data.call(
                merge.merge, ticket["id"], target, app.settings.agent, version=ticket["version"]
            )
        except DeskError as exc:
            self.post_message(ActionFailed(exc.message))
            return
        self.post_message(ActionDone(f"#{ticket['id']} merged into #{target}"))

    def action_unmerge(self) -> None:
        """Undo a merge into this ticket: the one merged in, or a choice when there are more."""
        merged = self.data["merged_here"] if self.data else []
        if not merged:
            self.notify(f"No ticket was merged into #{self.ticket_id}.")
            return

        def confirmed(source: int, yes: bool | None) -> None:
            if yes:
                self.unmerge(source)

        def picked(value: str | None) -> None:
            if value is not None:
                source = int(value)
                question = (
                    f"Unmerge #{source} from #{self.ticket_id}? What came with it goes back to "
                    f"#{source}; mail that came since stays here."
                )
                self.app.push_screen(ConfirmDialog(question), lambda yes: confirmed(source, yes))

        if len(merged) == 1:
            picked(str(merged[0]["source_id"]))
            return
        choices = [
            (str(m["source_id"]), safe.visible(f"#{m['source_id']} {m['subject']}")) for m in merged
        ]
        self.app.push_screen(ChoiceDialog(f"Unmerge from #{self.ticket_id}", choices, None), picked)

    @work(thread=True, group="action", exit_on_error=False)
    def unmerge(self, source: int) -> None:
        try:
            self.app.data.call(merge.unmerge, source, self.app.settings.agent)
        except DeskError as exc:
            self.post_message(ActionFailed(exc.message))
            return
        self.post_message(ActionDone(f"#{source} unmerged: it is a ticket of its own again"))

    def action_split(self) -> None:
        """Split a message (the one at the top of the view is offered first), and if chosen
        those after it, into a new ticket, which then opens."""
        if self.data is None:
            return
        zone = self.app.settings.zone
        choices = [
            (
                str(m["id"]),
                safe.visible(
                    f"{local(m['received_at'], zone)}  {m['from_addr'] or '?'}  {m['subject'][:60]}"
                ),
            )
            for m in self.data["thread"]
        ]

        def how(value: str | None) -> None:
            if value is None:
                return
            message_id = int(value)
            after = len(self.shown) - self.shown.index(message_id) - 1
            if not after:
                self.split_out(message_id, False)
                return

            def extent(chosen: str | None) -> None:
                if chosen is not None:
                    self.split_out(message_id, chosen == "following")

            options = [
                ("one", "this message only"),
                ("following", f"this message and the {after} after it"),
            ]
            self.app.push_screen(ChoiceDialog("Split out", options, None), extent)

        under = self.message_under_cursor()
        self.app.push_screen(
            ChoiceDialog(
                f"Split which message of #{self.ticket_id} into a new ticket?",
                choices,
                str(under) if under is not None else None,
            ),
            how,
        )

    @work(thread=True, group="action", exit_on_error=False)
    def split_out(self, message_id: int, following: bool) -> None:
        app = self.app
        try:
            new = app.data.call(merge.split, message_id, app.settings.agent, following=following)
        except DeskError as exc:
            self.post_message(ActionFailed(exc.message))
            return
        self.post_message(ActionDone(f"split into the new ticket #{new}"))
        app.call_from_thread(app.push_screen, type(self)(new))
