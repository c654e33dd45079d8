"""One ticket: its thread oldest first (the mails we sent with where each stands), headers on a
key, attachments, the audit trail, replying, the same actions as the list, the customer's other
tickets beside it, and merging, unmerging and splitting.

A merged ticket is shown as the ticket it was merged into."""

from __future__ import annotations

import bisect
import json
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from db.core import clock, sla
from db.core.errors import DeskError
from db.mailin import invitation, reparse, threads
from db.mailout import outbox
from db.tickets import customer, merge, tickets
from tui import files, keys, safe, windows
from tui.actions import TicketActions
from tui.dialogs.audit import AuditDialog
from tui.dialogs.choice import ChoiceDialog
from tui.dialogs.save_attachment import SaveAttachmentDialog
from tui.format import local, mail_text
from tui.merging import MergeActions
from tui.messages import ActionDone, ActionFailed, DbChanged, TicketLoaded
from tui.screens.reply import ReplyScreen
from tui.widgets.customer import CustomerTickets, summary, ticket_line
from tui.widgets.footer import DeskFooter
from tui.widgets.preview import body_of, facts, requester

CUSTOMER_MIN_WIDTH = 100  # below this many columns the customer's tickets are a dialog (`c`)
MAX_BODY = 200_000  # a pathological body is cut on screen; the stored message keeps it all
# How the thread names a message's kind (db/core/migrations.py MESSAGE_KINDS); a person's has none.
KIND_LABELS = {
    "list": "via list",
    "auto-reply": "auto-reply",
    "bounce": "bounce",
    "delay": "delay notice",
    "read-receipt": "read receipt",
}


def delivery(message: dict[str, Any], zone: Any) -> Text:
    """Where a mail we sent stands: waiting (and why), sent, failed in the server's words, or
    cancelled."""
    status, error = message["mail_status"], message["mail_error"]
    if status == "sent":
        return Text(f"✓ sent {local(message['mail_sent_at'], zone)}", "green")
    if status == "failed":
        line = Text("✗ failed: ", "bold red")
        line.append_text(safe.text(error or "no reason given", "red"))
        return line
    if status == "cancelled":
        return safe.text(error or "cancelled", "yellow")
    if status == "sending":
        return Text("being handed to the mail server", "yellow")
    line = Text("queued", "yellow")
    tries = message["mail_attempts"]
    if tries:
        line.append(f" · tried {tries} time{'s' if tries > 1 else ''}", "dim")
    # A queued mail has an error only while it waits to be tried again (deferred, the server out
    # of reach, a hand-over interrupted); a retried one starts afresh, without its old failure.
    if error:
        line.append(f" · next try {local(message['mail_next_attempt_at'], zone)}", "dim")
        line.append(" · waiting: ", "dim")
        line.append_text(safe.text(error, "dim"))
    return line


def _head(message: dict[str, Any], zone: Any) -> Text:
    head = Text()
    if message["direction"] == "out":
        head.append("→ to ", "bold")
        head.append_text(safe.text(message["mail_to"] or message["to_addrs"], "bold"))
        if message["auto"]:
            head.append(" · acknowledgement, sent automatically")
        else:
            head.append(" · sent by ")
            head.append_text(safe.text(message["mail_by"] or "?"))
        head.append("  from ", "dim")
        head.append_text(safe.text(message["from_addr"], "dim"))
        head.append(f"  {local(message['received_at'], zone)}", "dim")
        return head
    head.append_text(safe.text(message["from_name"] or message["from_addr"], "bold"))
    if not message["from_addr"]:
        head.append(" (no usable sender)", "red")
    elif message["from_name"]:
        head.append(" <")
        head.append_text(safe.text(message["from_addr"]))
        head.append(">")
    if message.get("reply_to"):
        head.append("  reply-to ", "dim")
        head.append_text(safe.text(message["reply_to"]))
    head.append(f"  {local(message['received_at'], zone)}", "dim")
    head.append(f"  joined by: {message['thread_rule'] or '?'}", "dim italic")
    label = KIND_LABELS.get(message["kind"] or message["auto"])
    if label:
        head.append(f"  [{label}]", "cyan" if message["kind"] == "list" else "yellow")
    return head


def invitations(calendars: list[bytes], zone: Any) -> list[tuple[str, str]]:
    """Each calendar's invitation as ingest stored it in the body (UTC) and in the agent's zone."""
    return [(invitation.render(data, UTC), invitation.render(data, zone)) for data in calendars]


def _cut(text: str) -> str:
    if len(text) <= MAX_BODY:
        return text
    return text[:MAX_BODY] + f"\n… {len(text) - MAX_BODY} more characters not shown"


def _forwarded(mail: dict[str, Any]) -> list[Any]:
    """A mail forwarded as an attachment, as a block in the thread."""
    block: list[Any] = [Text("── Forwarded message ──", "bold cyan")]
    for label, key in (("From", "from_"), ("Date", "date"), ("Subject", "subject")):
        if mail.get(key):
            line = Text(f"{label}: ", "cyan")
            line.append_text(safe.text(mail[key]))
            block.append(line)
    block.append(safe.text(_cut(mail.get("text") or ""), multiline=True))
    return block


def _inline(title: str, text: str) -> list[Any]:
    """A part shown after the body: another inline text part, a delivery report's fields."""
    head = Text("── ", "bold cyan")
    head.append_text(safe.text(title, "bold cyan"))
    head.append(" ──", "bold cyan")
    return [head, safe.text(_cut(text.rstrip()), multiline=True)]


def message_view(
    message: dict[str, Any],
    attachments: list[dict[str, Any]],
    zone: Any,
    headers: bool,
    invites: Sequence[tuple[str, str]] = (),
    inline: Sequence[tuple[str, str]] = (),
) -> Group:
    """One message of the thread; `invites` are its calendars as `invitations` gives them,
    `inline` the parts it shows after its body as `tickets.inline_parts` gives them."""
    parts: list[Any] = [_head(message, zone)]
    if message["mail_status"]:
        parts.append(delivery(message, zone))
    if message["read_at"]:
        parts.append(Text(f"✓ read by the customer at {local(message['read_at'], zone)}", "green"))
    if message["parse_error"]:
        parts.append(safe.text(f"could not be parsed: {message['parse_error']}", "bold red"))
    if headers:
        parts.append(safe.text(message["headers"], "dim", multiline=True))
        if message["direction"] != "out":
            parts.append(
                safe.text(
                    f"charset declared: {message['charset_declared'] or '(none)'} · "
                    f"read as: {message['charset_used'] or '(no text part)'}",
                    "dim italic",
                )
            )
    body = body_of(message)
    for utc, zoned in invites:
        # A calendar-only mail's body is the invitation in UTC: show it in the agent's zone.
        if utc and utc in body:
            body = body.replace(utc, zoned)
        elif zoned:
            parts.append(safe.text(zoned, "magenta", multiline=True))
    # The sender's own line breaks (format=flowed was reflowed at ingest, RFC 3676).
    parts.append(mail_text(_cut(body)))
    for title, text in inline:
        parts.extend(_inline(title, text))
    for mail in json.loads(message.get("forwarded") or "[]"):
        parts.extend(_forwarded(mail))
    for a in attachments:
        line = Text("📎 ", "cyan")
        line.append_text(safe.text(a["display_name"], "cyan"))
        line.append(f"  {a['content_type']}, {a['size']} bytes", "dim")
        parts.append(line)
    return Group(*parts)


def note_view(note: dict[str, Any], zone: Any) -> Group:
    """An internal note in the thread, marked so that no one takes it for a mail."""
    head = Text("INTERNAL NOTE", "bold black on yellow")
    head.append(" by ", "bold")
    head.append_text(safe.text(note["actor"], "bold"))
    head.append(f"  {local(note['at'], zone)}", "dim")
    head.append("  only agents see it; never sent", "dim italic")
    return Group(head, safe.text(note["text"], multiline=True))


def sla_clocks(ticket: dict[str, Any], zone: Any) -> Text:
    """The SLA clocks still running and when each is due, in red once past (`db.core.sla`)."""
    out = Text()
    if ticket["status"] in sla.DONE:
        return out
    now = clock.now_iso()
    due = ticket["first_response_due"]
    if not ticket["first_response_at"] and due:
        out.append(f" · first reply due {local(due, zone)}", "bold red" if due < now else "")
    due = ticket["resolution_due"]
    if due and ticket["sla_paused_at"]:
        out.append(" · resolution clock paused while pending", "dim")
    elif due:
        out.append(f" · resolve by {local(due, zone)}", "bold red" if due < now else "")
    return out


class TicketScreen(TicketActions, MergeActions, Screen):
    BINDINGS = keys.TICKET

    def __init__(self, ticket_id: int) -> None:
        super().__init__()
        self.ticket_id = ticket_id
        self.data: dict[str, Any] | None = None
        self.headers = False
        self.shown: list[int] = []  # message ids of the thread's views, in order

    def compose(self) -> ComposeResult:
        yield Static(Text(f"#{self.ticket_id}  loading…"), id="ticket-head")
        with Horizontal(id="ticket-body"):
            yield VerticalScroll(id="thread")
            yield CustomerTickets(id="customer")
        yield DeskFooter()

    def on_mount(self) -> None:
        self.query_one(CustomerTickets).display = False
        self.query_one("#thread").focus()
        self.reload()

    def current_ticket(self) -> dict[str, Any] | None:
        return self.data["ticket"] if self.data else None

    def on_db_changed(self, message: DbChanged) -> None:
        # Every change, not only the ticket's events: a mail's outbox state (deferred, retried)
        # changes without one. One ticket's thread is cheap to read, and unchanged is not redrawn.
        self.reload()

    @work(thread=True, group="ticket", exclusive=True, exit_on_error=False)
    def reload(self) -> None:
        def job(db: Any) -> dict[str, Any]:
            # A merged ticket stands for the one it was merged into: show that one.
            number = threads.follow(db, self.ticket_id)
            ticket = tickets.get(db, number)
            return {
                "ticket": windows.with_followups(db, ticket),
                "thread": tickets.thread(db, number),
                "attachments": tickets.attachments(db, number),
                "calendars": tickets.calendars(db, number),
                "inline": tickets.inline_parts(db, number),
                "notes": tickets.notes(db, number),
                "customer": customer.other_tickets(db, ticket),
                "merged_here": merge.merged_here(db, number),
            }

        try:
            data = self.app.data.call(job)
            zone = self.app.settings.zone
            data["invitations"] = {
                m: invitations(found, zone) for m, found in data.pop("calendars").items()
            }
            self.post_message(TicketLoaded(data))
        except DeskError as exc:
            self.post_message(ActionFailed(exc.message))

    def on_ticket_loaded(self, message: TicketLoaded) -> None:
        if message.data == self.data:
            return  # a commit elsewhere: nothing here changed, keep the thread as it is
        shown = message.data["ticket"]["id"]
        if shown != self.ticket_id:
            self.notify(f"#{self.ticket_id} was merged into #{shown}: this is #{shown}.")
            self.ticket_id = shown
        first = self.data is None or self.data["ticket"]["id"] != shown
        self.data = message.data
        self.render_ticket()
        if first:
            self.query_one("#thread", VerticalScroll).scroll_end(animate=False)

    def render_ticket(self) -> None:
        if self.data is None:
            return
        ticket, zone = self.data["ticket"], self.app.settings.zone
        head = Text(f"#{ticket['id']}  ", "bold")
        head.append_text(safe.text(ticket["subject"], "bold"))
        meta = Text(f"{', '.join(ticket['functions']) or ticket['function']} · from ")
        addr = ticket["requester_addr"]
        meta.append_text(safe.text(addr) if addr else requester(ticket))
        meta.append(f" · opened {local(ticket['created_at'], zone)} · ")
        meta.append_text(facts(ticket))
        failed = sum(m["mail_status"] == "failed" for m in self.data["thread"])
        if failed:
            meta.append(f" · {failed} mail{'s' if failed > 1 else ''} failed", "bold red")
        if ticket["first_response_at"]:
            meta.append(f" · first reply {local(ticket['first_response_at'], zone)}", "dim")
        others = summary(self.data["customer"])
        if others:
            meta.append(f" · {others} (c)", "cyan")
        merged = self.data["merged_here"]
        if merged:
            numbers = ", ".join(f"#{m['source_id']}" for m in merged)
            meta.append(f" · merged in: {numbers} (U undoes)", "magenta")
        meta.append_text(sla_clocks(ticket, zone))
        self.query_one("#ticket-head", Static).update(Group(head, meta))
        self.show_customer()
        thread = self.query_one("#thread", VerticalScroll)
        by_message: dict[int, list[dict[str, Any]]] = {}
        for a in self.data["attachments"]:
            by_message.setdefault(a["message_id"], []).append(a)
        views = [
            Static(
                message_view(
                    m,
                    by_message.get(m["id"], []),
                    zone,
                    self.headers,
                    self.data["invitations"].get(m["id"], []),
                    self.data["inline"].get(m["id"], []),
                ),
                classes=f"message {m['direction']} {m['mail_status'] or ''}",
            )
            for m in self.data["thread"]
        ]
        # Notes go between the messages by time; a note and a mail of the same second, mail first.
        moments = [m["received_at"] for m in self.data["thread"]]
        for note in reversed(self.data["notes"]):
            spot = bisect.bisect_right(moments, note["at"])
            views.insert(spot, Static(note_view(note, zone), classes="note"))
        self.shown = [m["id"] for m in self.data["thread"]]
        with self.app.batch_update():
            thread.remove_children()
            thread.mount_all(views)

    def message_under_cursor(self) -> int | None:
        """The message at the top of the thread's view: the one being read."""
        thread = self.query_one("#thread", VerticalScroll)
        views = list(thread.query(".message"))
        for message_id, view in zip(self.shown, views, strict=False):
            if view.virtual_region.bottom > thread.scroll_y:
                return message_id
        return self.shown[-1] if self.shown else None

    def action_reparse(self) -> None:
        """Ask desk-ingest to read the message under the cursor again with today's parser; the
        thread shows the new reading once it is written, through the live refresh."""
        message_id = self.message_under_cursor()
        if message_id is not None:
            self.request_reparse(message_id)

    @work(thread=True, group="action", exit_on_error=False)
    def request_reparse(self, message_id: int) -> None:
        try:
            self.app.data.call(reparse.request, message_id)
        except DeskError as exc:
            self.post_message(ActionFailed(exc.message))
            return
        self.post_message(ActionDone(f"desk-ingest will read message {message_id} again"))

    def action_back(self) -> None:
        if self.query_one(CustomerTickets).has_focus:
            self.query_one("#thread").focus()
        else:
            self.app.pop_screen()

    # -- the customer --------------------------------------------------------------------------

    def on_resize(self) -> None:
        self.show_customer()

    def show_customer(self) -> None:
        """The customer's other tickets beside the thread, when there are some and room."""
        if self.data is None:
            return
        panel = self.query_one(CustomerTickets)
        info = self.data["customer"]
        panel.show(info)
        panel.display = bool(info["count"]) and self.size.width >= CUSTOMER_MIN_WIDTH
        if not panel.display and panel.has_focus:
            self.query_one("#thread").focus()

    def action_customer(self) -> None:
        """Go to the customer's other tickets: the list beside the thread, or a dialog when
        the terminal is too narrow for it."""
        if self.data is None:
            return
        info = self.data["customer"]
        if not info["count"]:
            self.notify("The customer has no other tickets.")
            return
        panel = self.query_one(CustomerTickets)
        if panel.display:
            panel.focus()
            return
        choices = [(str(row["id"]), ticket_line(row).plain) for row in info["tickets"]]

        def chosen(value: str | None) -> None:
            if value is not None:
                self.app.push_screen(TicketScreen(int(value)))

        self.app.push_screen(ChoiceDialog(summary(info).capitalize(), choices, None), chosen)

    def on_customer_tickets_opened(self, message: CustomerTickets.Opened) -> None:
        self.app.push_screen(TicketScreen(message.ticket_id))

    def action_refresh(self) -> None:
        self.reload()

    def action_reply(self) -> None:
        if self.data is not None:
            self.app.push_screen(ReplyScreen(self.data["ticket"]))

    def action_mail(self) -> None:
        """Retry a failed (or cancelled) mail of the ticket, or cancel a queued one."""
        choices = []
        for m in self.data["thread"] if self.data else []:
            verb = {"failed": "retry", "cancelled": "retry", "queued": "cancel"}.get(
                m["mail_status"] or ""
            )
            if verb:
                why = f": {m['mail_error'][:60]}" if m["mail_error"] else ""
                label = f"{verb} mail {m['outbox_id']} to {m['mail_to']} ({m['mail_status']}{why})"
                choices.append((f"{verb}:{m['outbox_id']}", safe.visible(label)))
        if not choices:
            self.notify("No mail of this ticket is queued, failed or cancelled.")
            return

        def chosen(value: str | None) -> None:
            if value is not None:
                verb, outbox_id = value.split(":")
                self.change_mail(verb, int(outbox_id))

        self.app.push_screen(ChoiceDialog(f"Mail of #{self.ticket_id}", choices, None), chosen)

    @work(thread=True, group="action", exit_on_error=False)
    def change_mail(self, verb: str, outbox_id: int) -> None:
        change = outbox.retry if verb == "retry" else outbox.cancel
        agent = self.app.settings.agent

        try:
            self.app.data.call(change, outbox_id, agent)
        except DeskError as exc:
            self.post_message(ActionFailed(exc.message))
            return
        said = "queued again" if verb == "retry" else "cancelled"
        self.post_message(ActionDone(f"Mail {outbox_id} {said}"))

    def action_headers(self) -> None:
        self.headers = not self.headers
        self.render_ticket()

    def action_scroll_down(self) -> None:
        self.query_one("#thread", VerticalScroll).scroll_down(animate=False)

    def action_scroll_up(self) -> None:
        self.query_one("#thread", VerticalScroll).scroll_up(animate=False)

    def action_scroll_home(self) -> None:
        self.query_one("#thread", VerticalScroll).scroll_home(animate=False)

    def action_scroll_end(self) -> None:
        self.query_one("#thread", VerticalScroll).scroll_end(animate=False)

    @work(thread=True, group="audit", exit_on_error=False)
    def action_audit(self) -> None:
        trail = self.app.data.call(tickets.events, self.ticket_id)
        self.app.call_from_thread(
            self.app.push_screen, AuditDialog(self.ticket_id, trail, self.app.settings.zone)
        )

    def action_save_attachment(self) -> None:
        if not self.data or not self.data["attachments"]:
            self.notify("This ticket has no attachments.", severity="warning")
            return

        def chosen(choice: tuple[int, Path] | None) -> None:
            if choice is not None:
                self.save_attachment(*choice)

        self.app.push_screen(
            SaveAttachmentDialog(self.data["attachments"], self.app.save_folder), chosen
        )

    @work(thread=True, group="save", exit_on_error=False)
    def save_attachment(self, attachment_id: int, folder: Path) -> None:
        try:
            name, data = self.app.data.call(tickets.attachment_data, attachment_id)
            path = files.save(folder, name, data)
        except DeskError as exc:
            self.post_message(ActionFailed(exc.message))
            return
        self.app.save_folder = folder
        self.post_message(ActionDone(f"saved {path}"))
