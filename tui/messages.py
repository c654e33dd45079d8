"""Messages workers post back to the UI thread, and the widgets' own notifications."""

from __future__ import annotations

from typing import Any

from textual.message import Message


class DbChanged(Message, bubble=False):
    """Someone (the daemon, another agent, this desk) committed to the database; `tickets`
    names the tickets that changed (empty: none did), None when they are too many to name."""

    def __init__(self, tickets: frozenset[int] | None = None) -> None:
        super().__init__()
        self.tickets = tickets

    def can_replace(self, message: Message) -> bool:
        # A flood of new mail becomes one refresh: the pending one takes this one's tickets.
        if not isinstance(message, DbChanged):
            return False
        if message.tickets is not None:
            message.tickets = None if self.tickets is None else message.tickets | self.tickets
        return True


class ListLoaded(Message, bubble=False):
    """A fresh view of the ticket list: its length (`more` when counting stopped there), where
    the cursor goes, the rows around it (`pages` by page number, or `window`: the first row's
    index and the rows read by keyset), the sort values of its first row (`top`) and how many
    rows sort before the first row the agent last saw at the top (`new_above`)."""

    def __init__(
        self,
        generation: int,
        total: int,
        more: bool,
        cursor: int,
        pages: dict[int, list[dict[str, Any]]],
        where: tuple[str, list[object]],
        problems: list[str],
        *,
        window: tuple[int, list[dict[str, Any]]] | None = None,
        top: tuple[object, ...] | None = None,
        new_above: int = 0,
        live: bool = False,
    ) -> None:
        super().__init__()
        self.generation = generation
        self.total = total
        self.more = more
        self.cursor = cursor
        self.pages = pages
        self.where = where
        self.problems = problems
        self.window = window
        self.top = top
        self.new_above = new_above
        self.live = live


class ListCounted(Message, bubble=False):
    """The list counted further, as its cursor neared the end of what was counted."""

    def __init__(self, generation: int, total: int, more: bool, to_end: bool) -> None:
        super().__init__()
        self.generation = generation
        self.total = total
        self.more = more
        self.to_end = to_end


class PageLoaded(Message, bubble=False):
    def __init__(self, generation: int, number: int, rows: list[dict[str, Any]]) -> None:
        super().__init__()
        self.generation = generation
        self.number = number
        self.rows = rows


class Overview(Message, bubble=False):
    """What the main screen shows around the list: counts, sources, volume, windows, reports."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__()
        self.data = data


class PreviewLoaded(Message, bubble=False):
    def __init__(self, ticket_id: int, ticket: dict[str, Any], last: dict[str, Any] | None) -> None:
        super().__init__()
        self.ticket_id = ticket_id
        self.ticket = ticket
        self.last = last


class TicketLoaded(Message, bubble=False):
    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__()
        self.data = data


class ActionDone(Message, bubble=False):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class ActionFailed(Message, bubble=False):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class DraftLoaded(Message, bubble=False):
    """The composer's text: the greeting or a canned reply (`canned` names it), and the quote."""

    def __init__(self, text: str, canned: str | None) -> None:
        super().__init__()
        self.text = text
        self.canned = canned


class ReplyQueued(Message, bubble=False):
    def __init__(self, outbox_id: int) -> None:
        super().__init__()
        self.outbox_id = outbox_id
