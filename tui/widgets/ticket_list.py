"""The ticket list: renders only the rows on screen, reading them from SQL a page at a time.

Like toolong's log view it never holds the table: it knows the list's length (counted up to
"1,000+", further as the cursor nears the end, to the end for `G`) and keeps a few
pages of rows in an LRU cache; a row not in the cache is drawn as a placeholder while a worker
fetches its page. Reloading (a new section, search, sort, or a change in the database) finds
the highlighted ticket's new row with one keyset query, so the cursor stays on the same ticket.

Live: when the database changes, the list reads its length, the cursor's row and the rows on
screen again, by keyset around the cursor's ticket when it is deep in the list, so a tick costs
the same at row 50,000 of 100,000 as at the top. At the top the new tickets appear there; further
down the view stays on the agent's ticket and the header says "N new ↑" until they go up.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from rich.style import Style
from rich.text import Text
from textual import events, work
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from db.core import clock, sla
from db.tickets import search, tickets
from tui import keys, safe
from tui.format import age
from tui.messages import ListCounted, ListLoaded, PageLoaded

PAGE = 100
KEEP_PAGES = 12  # rows in memory stay under PAGE * KEEP_PAGES whatever the table holds
# (title, width); the requester's and the subject's widths follow the list's (see `widths`).
COLUMNS = (
    ("", 5),
    ("#", 7),
    ("last", 4),  # since the last message: the order the list sorts by
    ("function", 10),
    ("requester", 0),
    ("subject", 0),
    ("status", 8),
    ("assignee", 10),
    ("priority", 8),
)
SUBJECT_MIN = 16
SUBJECT_WANTED = 40  # a column that would leave the subject less than this gives way
REQUESTER = (12, 24)  # the requester's width: a sixth of the list, within these bounds
MARKS = (  # (mark, meaning, style)
    ("D", "discrepancy report", "bold yellow"),
    ("W", "received during a window", "bold magenta"),
    ("U", "unparsed", "bold red"),
    ("!", "SLA overdue: first response or resolution past due", "bold red"),
    ("L", "came through a mailing list", "bold cyan"),
)


def widths(total: int) -> list[int]:
    """Column widths for a list `total` cells wide: the subject gets the room. The requester
    takes a sixth of the width (12 to 24 cells); assignee, function and priority are shown, in
    that order, only while the subject keeps SUBJECT_WANTED cells; the subject takes the rest."""
    out = [w for _, w in COLUMNS]
    out[4] = max(REQUESTER[0], min(REQUESTER[1], total // 6))
    for column in (3, 7, 8):  # function, assignee, priority: shown only while there is room
        out[column] = 0

    def left() -> int:
        return total - sum(w + 1 for w in out if w) - 1

    for column in (7, 3, 8):  # assignee, function, priority
        width = COLUMNS[column][1]
        if left() - width - 1 >= SUBJECT_WANTED:
            out[column] = width
    out[5] = max(SUBJECT_MIN, left())
    return out


def marks(row: dict[str, Any], now_iso: str) -> Text:
    flags = (
        row["kind"] == "discrepancy",
        bool(row.get("during_window_id")),
        bool(row["unparsed"]),
        sla.overdue(row, now_iso),
        bool(row.get("via_list")),
    )
    out = Text()
    for (mark, _, style), on in zip(MARKS, flags, strict=True):
        out.append(mark if on else " ", style)
    return out


def who(row: dict[str, Any]) -> Text:
    """The requester's name or address; a ticket with no usable sender says so in red."""
    if row["requester_addr"]:
        return safe.text(row["requester_name"] or row["requester_addr"])
    name = safe.text(row["requester_name"], "red")
    return name.append(" (no sender)" if name else "(no sender)", "bold red")


class TicketList(ScrollView, can_focus=True):
    """Virtual rows over `ticket`; posts `Highlighted` and `Opened` with ticket ids."""

    BINDINGS = keys.LIST
    DEFAULT_CSS = """
    TicketList { height: 1fr; }
    """

    class Highlighted(Message):
        def __init__(self, ticket: dict[str, Any] | None) -> None:
            super().__init__()
            self.ticket = ticket

    class Counted(Message):
        """How many tickets the list holds; `more` when counting stopped there ("1,000+")."""

        def __init__(self, total: int, more: bool) -> None:
            super().__init__()
            self.total = total
            self.more = more

    class Opened(Message):
        def __init__(self, ticket_id: int) -> None:
            super().__init__()
            self.ticket_id = ticket_id

    def __init__(self, agent: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.agent = agent
        self.total = 0
        # Counting stopped at `total` (tickets.COUNT_CAP at the top): the list holds more, and
        # the count reaches further as the cursor nears its end.
        self.more = False
        self._counting = False  # a count further is on its way
        self.cursor = 0
        self.generation = 0
        self.loaded = False
        self.pages: OrderedDict[int, list[dict[str, Any]]] = OrderedDict()
        self._wanted: set[int] = set()
        self._where: tuple[str, list[object]] = ("0", [])
        self._query = ""
        self._sort = "newest"
        # Rows read by keyset around the cursor on a live reload: (index of the first, rows).
        self.window: tuple[int, list[dict[str, Any]]] | None = None
        self.top: tuple[object, ...] | None = None  # sort values of the list's first row
        self.seen_top: tuple[object, ...] | None = None  # ...when the agent last saw the top
        self.new_above = 0
        self._announced: int | None = None
        self._asked = 0.0
        self.last_load_ms = 0.0

    # -- loading -------------------------------------------------------------------------------

    def show(self, query: str, sort: str, keep_id: int | None, hint: int = 0) -> None:
        """Fill the list for `query`; the cursor stays on `keep_id` if listed, else near `hint`."""
        self.generation += 1
        self._query, self._sort = query, sort
        self._asked = time.perf_counter()
        self.seen_top, self.new_above = None, 0
        self._load(self.generation, query, sort, keep_id, hint, self._rows(), None, False)

    def live(self) -> None:
        """Read the list again after a change in the database, the cursor on its ticket; at the
        top the view stays there, further down it stays on the ticket."""
        self.generation += 1
        self._asked = time.perf_counter()
        ticket = self.current
        at_top = self.scroll_y == 0
        self._load(
            self.generation,
            self._query,
            self._sort,
            ticket["id"] if ticket else None,
            self.cursor,
            self._rows(),
            None if at_top else self.seen_top,
            True,
        )

    def _rows(self) -> int:
        return max(self.size.height - 1, 10)

    @work(thread=True, group="list", exit_on_error=False)
    def _load(
        self,
        generation: int,
        query: str,
        sort: str,
        keep_id: int | None,
        hint: int,
        rows: int,
        seen_top: tuple[object, ...] | None,
        live: bool,
    ) -> None:
        parsed = search.parse(query, self.agent)

        def job(db: Any) -> ListLoaded:
            where = search.where(parsed, clock.now(), db, hide_merged=True)
            keys = tickets.sort_keys(db, *where, sort, keep_id) if keep_id is not None else None
            spot = tickets.count_before(db, *where, sort, keys) if keys is not None else None
            # Counted no further than the rows around the cursor need: a broad search is not
            # walked to its end to say how long it is ("1,000+").
            cap = max(tickets.COUNT_CAP, (hint if spot is None else spot) + rows + PAGE + 1)
            head: list[dict[str, Any]] | None = None
            if cap == tickets.COUNT_CAP:
                head, total = tickets.first_page(db, *where, sort, PAGE, cap)
            else:
                total = tickets.count(db, *where, cap)
            cursor = spot if spot is not None else max(0, min(hint, total - 1))
            top = tickets.sort_keys(db, *where, sort)
            new_above = tickets.count_before(db, *where, sort, seen_top) if seen_top else 0
            pages, window = {}, None
            if keys is not None and cursor > rows:
                # Deep in the list: the rows on screen by keyset, not OFFSET (which walks them).
                head, tail = tickets.around(db, *where, sort, keys, rows, rows + 1)
                window = (cursor - len(head), head + tail)
            else:
                # The rows that can be on screen around the cursor, wherever the view scrolls.
                start = max(0, cursor - rows) // PAGE
                last = min(max(total - 1, 0), cursor + rows) // PAGE
                pages = {
                    n: head
                    if n == 0 and head is not None
                    else tickets.page(db, *where, sort, n * PAGE, PAGE)
                    for n in range(start, last + 1)
                }
            return ListLoaded(
                generation,
                total,
                total >= cap,
                cursor,
                pages,
                where,
                [] if live else parsed.problems,
                window=window,
                top=top,
                new_above=new_above,
                live=live,
            )

        self.post_message(self.app.data.call(job))

    def on_list_loaded(self, message: ListLoaded) -> None:
        if message.generation != self.generation:
            return
        message.stop()
        shift = message.cursor - self.cursor
        at_top = message.live and self.scroll_y == 0
        # From asking to rows in hand, for the benchmark and a slow-query eye in the log.
        self.last_load_ms = (time.perf_counter() - self._asked) * 1000
        self.loaded = True
        self.total = message.total
        self.more = message.more
        self._counting = False
        self.post_message(self.Counted(self.total, self.more))
        self._where = message.where
        self.pages = OrderedDict(message.pages)
        self.window = message.window
        self._trim(message.cursor // PAGE)
        self._wanted.clear()
        self.virtual_size = Size(self.size.width, self.total + 1)
        self.cursor = message.cursor
        self.top = message.top
        if not at_top:
            # New rows above push the highlighted ticket down; the view moves with it.
            self.scroll_to(y=max(0, self.scroll_y + shift), animate=False, immediate=True)
        self._follow()
        if at_top or not message.live or self.scroll_y == 0:
            self.seen_top, self.new_above = self.top, 0
        else:
            self.new_above = message.new_above
        self.refresh()
        self._announced = None
        self._announce()
        if message.problems:
            self.notify("; ".join(message.problems), severity="warning", markup=False)

    def _count_further(self, to_end: bool) -> None:
        """Count past the cursor (twice as far as it is), or to the end for `G`."""
        if not self._counting or to_end:
            self._counting = True
            cap = None if to_end else 2 * (self.cursor + self._rows() + PAGE)
            self._count(self.generation, self._where, cap, to_end)

    @work(thread=True, group="count", exit_on_error=False)
    def _count(
        self, generation: int, where: tuple[str, list[object]], cap: int | None, to_end: bool
    ) -> None:
        total = self.app.data.call(tickets.count, *where, cap)
        more = cap is not None and total >= cap
        self.post_message(ListCounted(generation, total, more, to_end))

    def on_list_counted(self, message: ListCounted) -> None:
        message.stop()
        if message.generation != self.generation:
            return
        self._counting = False
        self.total, self.more = message.total, message.more
        self.virtual_size = Size(self.size.width, self.total + 1)
        self.post_message(self.Counted(self.total, self.more))
        if message.to_end:
            self.move_to(self.total - 1)

    @work(thread=True, group="page", exit_on_error=False)
    def _fetch(self, generation: int, number: int, where: tuple[str, list[object]]) -> None:
        rows = self.app.data.call(tickets.page, *where, self._sort, number * PAGE, PAGE)
        self.post_message(PageLoaded(generation, number, rows))

    def on_page_loaded(self, message: PageLoaded) -> None:
        message.stop()
        if message.generation != self.generation:
            return
        self._wanted.discard(message.number)
        self.pages[message.number] = message.rows
        self._trim(self.cursor // PAGE)
        self.refresh()
        self._announce()

    def _trim(self, keep: int) -> None:
        """Forget the least recently drawn pages beyond KEEP_PAGES, never the cursor's."""
        if keep in self.pages:
            self.pages.move_to_end(keep)
        while len(self.pages) > KEEP_PAGES:
            self.pages.popitem(last=False)

    def row(self, index: int) -> dict[str, Any] | None:
        """The row at `index` if its page is at hand; otherwise ask for the page."""
        if self.window is not None:
            start, rows = self.window
            if start <= index < start + len(rows):
                return rows[index - start]
        number, offset = divmod(index, PAGE)
        rows = self.pages.get(number)
        if rows is None:
            if number not in self._wanted and self.loaded:
                self._wanted.add(number)
                self.call_later(self._fetch, self.generation, number, self._where)
            return None
        self.pages.move_to_end(number)
        return rows[offset] if offset < len(rows) else None

    @property
    def current(self) -> dict[str, Any] | None:
        return self.row(self.cursor) if self.total else None

    def _announce(self) -> None:
        ticket = self.current
        key = ticket["id"] if ticket else None
        if key != self._announced or ticket is None:
            self._announced = key
            self.post_message(self.Highlighted(ticket))

    # -- moving --------------------------------------------------------------------------------

    def move_to(self, index: int) -> None:
        if not self.total:
            return
        self.cursor = max(0, min(index, self.total - 1))
        if self.more and self.cursor + self._rows() + PAGE >= self.total:
            self._count_further(to_end=False)
        self._follow()
        self.refresh()
        self._announce()

    def _follow(self) -> None:
        visible = max(1, self.size.height - 1)
        if self.cursor < self.scroll_y:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= self.scroll_y + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False, immediate=True)

    def action_cursor_down(self) -> None:
        self.move_to(self.cursor + 1)

    def action_cursor_up(self) -> None:
        self.move_to(self.cursor - 1)

    def action_first(self) -> None:
        self.move_to(0)

    def action_last(self) -> None:
        if self.more:
            self._count_further(to_end=True)
        else:
            self.move_to(self.total - 1)

    def action_page_down(self) -> None:
        self.move_to(self.cursor + max(1, self.size.height - 2))

    def action_page_up(self) -> None:
        self.move_to(self.cursor - max(1, self.size.height - 2))

    def action_open(self) -> None:
        ticket = self.current
        if ticket is not None:
            self.post_message(self.Opened(ticket["id"]))

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self.move_to(int(self.scroll_y) + event.y - 1)
            if event.chain == 2:
                self.action_open()

    # -- drawing -------------------------------------------------------------------------------

    @property
    def text_width(self) -> int:
        """The cells a row has, the scrollbar's excluded."""
        return self.scrollable_content_region.width

    def _line(self, cells: list[Text], style: Style) -> Strip:
        line = Text(no_wrap=True, end="")
        for cell, width in zip(cells, widths(self.text_width), strict=True):
            if width:
                cell.truncate(width, overflow="ellipsis", pad=True)
                line.append_text(cell)
                line.append(" ")
        line.stylize(style)
        strip = Strip(line.render(self.app.console))
        return strip.crop_extend(0, self.text_width, style)

    def render_line(self, y: int) -> Strip:
        if y == 0:
            header = self._line(
                [Text(title) for title, _ in COLUMNS], Style(bold=True, underline=True)
            )
            if not self.new_above:
                return header
            # Over the header's right end: how many came in above, and the key that goes there.
            key = keys.shown_keys(keys.binding("top"), self.app.settings.keys).split(",")[0]
            badge = Strip(
                Text(f" {self.new_above:,} new ↑ {key} ", "bold black on yellow").render(
                    self.app.console
                )
            )
            room = max(0, self.text_width - badge.cell_length)
            return Strip.join([header.crop(0, room), badge]).crop_extend(
                0, self.text_width, Style()
            )
        index = int(self.scroll_y) + y - 1
        if index >= self.total:
            text = "no tickets here" if y == 1 and self.loaded else ""
            return self._line([Text(text if i == 5 else "") for i in range(len(COLUMNS))], Style())
        selected = index == self.cursor
        style = (
            Style(reverse=True)
            if selected and self.has_focus
            else Style(bgcolor="grey23")
            if selected
            else Style()
        )
        row = self.row(index)
        if row is None:
            return self._line([Text("…", "dim") for _ in COLUMNS], style)
        now = clock.now()
        status_style = (
            "bold"
            if row["status"] == "new"
            else "dim"
            if row["status"] in ("resolved", "closed")
            else ""
        )
        prio_style = {"urgent": "bold red", "high": "yellow"}.get(row["priority"], "")
        cells = [
            marks(row, clock.iso(now)),
            Text(f"#{row['id']}"),
            Text(age(row["last_message_at"], now)),
            Text(row["function"]),
            who(row),
            safe.text(row["subject"], status_style),
            Text(row["status"], status_style),
            safe.text(row["assignee"] or ""),
            Text(row["priority"], prio_style),
        ]
        return self._line(cells, style)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, self.total + 1)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new == 0 and self.new_above:
            # The agent is back at the top: what was new there is seen.
            self.seen_top, self.new_above = self.top, 0
            self.refresh()
