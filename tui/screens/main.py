"""The main screen: banner, sections with open counts, the ticket list, preview, discrepancy
reports, the volume chart and the sources' health."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Static, Tab, Tabs

from db.core import clock
from db.core.migrations import FUNCTIONS
from db.mailin import sources
from db.mailout import outbox
from db.maintenance import discrepancy
from db.tickets import search, tickets
from tui import keys, safe, windows
from tui.actions import TicketActions
from tui.dialogs.health import HealthDialog
from tui.dialogs.search import SearchDialog
from tui.format import count_figure, count_text
from tui.messages import DbChanged, Overview, PreviewLoaded
from tui.widgets.banner import Banner
from tui.widgets.discrepancy_panel import DiscrepancyPanel
from tui.widgets.footer import DeskFooter
from tui.widgets.preview import Preview
from tui.widgets.status_line import StatusLine
from tui.widgets.ticket_list import TicketList
from tui.widgets.volume import HOURS, Volume

REPORTS_SHOWN = 200
# Below this many columns the preview goes under the list, which keeps the whole width: beside
# it, the list would leave the subject too little (tui/widgets/ticket_list.py `widths`).
NARROW = 150
# Below this many rows the preview is hidden until `v`: the list needs the height.
SHORT = 30
COUNTS_SECONDS = 2.0
SORT_ORDER = tuple(search.SORTS)


class MainScreen(TicketActions, Screen):
    BINDINGS = keys.MAIN

    def __init__(self) -> None:
        super().__init__()
        self.section = 0
        self.query_text = ""
        self.found: tuple[int, bool] | None = None  # the list's count: (total, more)
        self.sort = SORT_ORDER[0]
        # Per section: (ticket id, row) under the cursor when the agent left it.
        self.cursors: dict[int, tuple[int | None, int]] = {}
        self.preview_on = True
        self._short: bool | None = None  # the height class the preview was last set for
        self._counted = 0.0  # time.monotonic() of the last open counts asked for
        self._counts_timer: Timer | None = None
        self.sources: list[dict[str, Any]] = []  # as the last overview found them

    def compose(self) -> ComposeResult:
        sections = self.app.settings.sections
        yield Banner(id="banner")
        yield Tabs(*(Tab(Text(s.name), id=f"section-{i}") for i, s in enumerate(sections)))
        yield Static("", id="search-line")
        with Horizontal(id="body"):
            with Vertical(id="list-pane"):
                yield TicketList(self.app.settings.agent, id="tickets")
            with Vertical(id="side"):
                yield DiscrepancyPanel(id="discrepancies")
                yield Preview(id="preview")
        yield Volume(id="volume")
        yield StatusLine(id="status-line")
        yield DeskFooter()

    @property
    def list(self) -> TicketList:
        return self.query_one(TicketList)

    def on_mount(self) -> None:
        self.query_one(DiscrepancyPanel).display = False
        self.query_one("#search-line").display = False
        self.list.focus()
        self.list.show(self.full_query(), self.sort, None)
        self.load_overview()
        # Ages, "ends in" and overdue marks move with the clock even when nothing is written.
        self.set_interval(30, self.load_overview)

    def on_resize(self) -> None:
        self.query_one("#body").set_class(self.size.width < NARROW, "narrow")
        short = self.size.height < SHORT
        self.set_class(short, "short")
        if short != self._short:
            # The screen's size decides until the agent does; `v` overrides it.
            self._short = short
            self.show_preview(not short)

    # -- the list ------------------------------------------------------------------------------

    def full_query(self) -> str:
        return f"{self.app.settings.sections[self.section].query} {self.query_text}".strip()

    def reload(self) -> None:
        self.list.live()

    def current_ticket(self) -> dict[str, Any] | None:
        return self.list.current

    def on_db_changed(self, message: DbChanged) -> None:
        # Sources' health and the outbox write often; the list only moves when a ticket did.
        if message.tickets is not None and not message.tickets:
            self.load_overview(False)
            return
        self.reload()
        # The open counts scan the open tickets: during a flood of mail at most one count per
        # COUNTS_SECONDS, and one more after the last change so that they end up right.
        wait = self._counted + COUNTS_SECONDS - time.monotonic()
        if wait <= 0:
            self._counted = time.monotonic()
            self.load_overview(True)
        else:
            self.load_overview(False)
            if self._counts_timer is None:
                self._counts_timer = self.set_timer(wait, self._count_again)

    def _count_again(self) -> None:
        self._counts_timer = None
        self._counted = time.monotonic()
        self.load_overview(True)

    @on(Tabs.TabActivated)
    def switch_section(self, event: Tabs.TabActivated) -> None:
        index = int(event.tab.id.rsplit("-", 1)[1]) if event.tab and event.tab.id else 0
        if index == self.section:
            return
        ticket = self.list.current
        self.cursors[self.section] = (ticket["id"] if ticket else None, self.list.cursor)
        self.section = index
        keep, row = self.cursors.get(index, (None, 0))
        self.list.show(self.full_query(), self.sort, keep, row)
        self.list.focus()

    def action_next_section(self) -> None:
        self.query_one(Tabs).action_next_tab()

    def action_prev_section(self) -> None:
        self.query_one(Tabs).action_previous_tab()

    def action_sort(self) -> None:
        self.sort = SORT_ORDER[(SORT_ORDER.index(self.sort) + 1) % len(SORT_ORDER)]
        self.notify(f"sorted by {self.sort}", timeout=2)
        ticket = self.list.current
        self.list.show(self.full_query(), self.sort, ticket["id"] if ticket else None)

    def action_refresh(self) -> None:
        self.reload()
        self.load_overview()

    def action_search(self) -> None:
        self.app.push_screen(SearchDialog(self.query_text), self.apply_search)

    def apply_search(self, query: str | None) -> None:
        if query is None:
            return
        self.query_text = query
        self.found = None
        self.show_search_line()
        self.list.show(self.full_query(), self.sort, None, 0)

    def show_search_line(self) -> None:
        """The query and, once counted, how many tickets it finds ("1,000+" when many)."""
        line = self.query_one("#search-line", Static)
        line.display = bool(self.query_text)
        text = Text("/ ") + safe.text(self.query_text)
        if self.found is not None:
            text.append(f"  · {count_text(*self.found)}", "bold")
        line.update(text + Text("   (esc clears)", "dim"))

    def on_ticket_list_counted(self, message: TicketList.Counted) -> None:
        self.found = (message.total, message.more)
        if self.query_text:
            self.show_search_line()

    def action_clear_search(self) -> None:
        if self.query_text:
            self.apply_search("")

    def action_toggle_preview(self) -> None:
        self.show_preview(not self.preview_on)

    def show_preview(self, on: bool) -> None:
        self.preview_on = on
        self.query_one("#side").display = on
        if on and self.list.loaded:
            self.on_ticket_list_highlighted(TicketList.Highlighted(self.list.current))

    def action_health(self) -> None:
        self.app.push_screen(HealthDialog(self.sources))

    def action_discrepancies(self) -> None:
        """Into the panel, and out of it again: the list's keys work as soon as it is left."""
        panel = self.query_one(DiscrepancyPanel)
        if panel.has_focus or not panel.display:
            self.focus_list()
        else:
            panel.focus()

    def action_focus_list(self) -> None:
        self.focus_list()

    def focus_list(self) -> None:
        self.list.focus()

    def on_screen_resume(self) -> None:
        # Back from a ticket (opened from the list or the panel) or a dialog: the list's keys.
        if not isinstance(self.focused, TicketList):
            self.focus_list()

    @on(TicketList.Opened)
    @on(DiscrepancyPanel.Opened)
    def open_ticket(self, event: TicketList.Opened | DiscrepancyPanel.Opened) -> None:
        from tui.screens.ticket import TicketScreen

        self.app.push_screen(TicketScreen(event.ticket_id))

    # -- preview -------------------------------------------------------------------------------

    def on_ticket_list_highlighted(self, event: TicketList.Highlighted) -> None:
        if event.ticket is None:
            self.query_one(Preview).clear()
        elif self.preview_on:
            self.load_preview(event.ticket["id"])

    @work(thread=True, group="preview", exclusive=True, exit_on_error=False)
    def load_preview(self, ticket_id: int) -> None:
        def job(db: Any) -> PreviewLoaded:
            ticket = windows.with_followups(db, tickets.get(db, ticket_id))
            return PreviewLoaded(ticket_id, ticket, tickets.last_message(db, ticket_id))

        self.post_message(self.app.data.call(job))

    def on_preview_loaded(self, message: PreviewLoaded) -> None:
        current = self.list.current
        if current is not None and current["id"] == message.ticket_id:
            self.query_one(Preview).show(message.ticket, message.last, self.app.settings.zone)

    # -- around the list -----------------------------------------------------------------------

    @work(thread=True, group="overview", exclusive=True, exit_on_error=False)
    def load_overview(self, counts: bool = True) -> None:
        """Everything around the list; the tabs' counts (a scan of the open tickets, ~50 ms at
        100,000, and each other tab's query counted up to 1,001) only when `counts`."""
        ahead = timedelta(hours=self.app.config.maintenance.announce_hours)

        def job(db: Any) -> Overview:
            now = clock.now()
            return Overview(
                {
                    "counts": self._section_counts(db, now) if counts else None,
                    "sources": sources.all_states(db),
                    "outbox": outbox.counts(db),
                    "volume": tickets.hourly_volume(db, now, HOURS),
                    "reports": discrepancy.listing(db, open_only=True)[:REPORTS_SHOWN],
                    "windows": windows.overview(db, now, HOURS, ahead),
                }
            )

        self.post_message(self.app.data.call(job))

    def _section_counts(self, db: Any, now: datetime) -> list[str]:
        """Each tab's figure: open tickets for "All" and a function's tab (one scan for them
        all), the tickets its query selects for any other ("SLA breached", saved sections),
        counted up to `tickets.COUNT_CAP` ("1,000+")."""
        open_now = tickets.open_counts(db)
        by_function = {"": ""} | {f"fn:{f}": f for f in FUNCTIONS}
        figures = []
        for section in self.app.settings.sections:
            if section.query in by_function:
                figures.append(count_figure(open_now.get(by_function[section.query], 0), False))
                continue
            parsed = search.parse(section.query, self.app.settings.agent)
            where = search.where(parsed, now, db, hide_merged=True)
            found = tickets.count(db, *where, tickets.COUNT_CAP)
            figures.append(count_figure(found, found == tickets.COUNT_CAP))
        return figures

    def on_overview(self, message: Overview) -> None:
        data, zone = message.data, self.app.settings.zone
        for i, section in enumerate(self.app.settings.sections if data["counts"] else ()):
            label = Text(section.name)
            label.append(f" {data['counts'][i]}", "bold")
            self.query_one(f"#section-{i}", Tab).label = label
        win = data["windows"]
        self.query_one(Banner).show(win, zone)
        can_send = self.app.config.mail.smtp is not None
        self.sources = data["sources"]
        health_key = keys.shown_keys(keys.binding("health"), self.app.settings.keys).split(",")[0]
        self.query_one(StatusLine).show(data["sources"], data["outbox"], can_send, health_key)
        self.query_one(Volume).show(data["volume"], win["hours"])
        self.query_one(DiscrepancyPanel).show(data["reports"], win["titles"], win["impact"])
        self.list.refresh()
