"""Merging one ticket into another, undoing it, and splitting messages out into a new ticket.

Merge B into A, in one transaction: B's messages (their attachments with them), its notes, its
mail in the outbox, and the participants, functions and tags A lacks go to A; B is closed and
points at A (`merged_into`), so mail that threads to B by any rule lands in A
(`db.mailin.threads.follow`) and the desk shows A when B is opened. Both audit trails say so.
`ticket_merge` keeps what moved, and `unmerge` puts it back: whatever of it is still on A
returns to B, what the merge added to A goes unless later mail of A needs it, and both tickets
get the status they had.

Split: a message, or it and every later one, leave their ticket for a new one with the same
function, priority and assignee; its requester is the first moved mail's sender (the person
who wrote it), else the old ticket's. Replies to the moved mails follow them, since threading
finds a ticket by the mail a reply answers first.
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from db.core import clock, sla
from db.core.connect import write
from db.core.errors import ConflictError, DeskError, NotFoundError
from db.core.events import record_event
from db.mailin import threads
from db.mailout import outbox
from db.maintenance import discrepancy
from db.tickets import customer, search

_SETTLED = ("resolved", "closed")


def _ticket(db: sqlite_utils.Database, ticket_id: int) -> dict[str, Any]:
    row = next(db.query("SELECT * FROM ticket WHERE id = ?", [ticket_id]), None)
    if row is None:
        raise NotFoundError(f"ticket #{ticket_id} does not exist")
    return row


def _ids(db: sqlite_utils.Database, sql: str, params: list[object]) -> list[Any]:
    return [row[0] for row in db.execute(sql, params)]


def _marks(values: list[Any]) -> str:
    return ", ".join("?" for _ in values)


def _refresh(db: sqlite_utils.Database, ticket_id: int, now: str) -> None:
    """Count a ticket's messages again after some came or went, as ingest counts them: its
    last activity is its newest incoming mail (kept as it was when none is left)."""
    db.execute(
        "UPDATE ticket SET "
        "message_count = (SELECT count(*) FROM message WHERE ticket_id = ?1), "
        "last_message_at = coalesce((SELECT max(received_at) FROM message "
        "WHERE ticket_id = ?1 AND direction = 'in'), last_message_at), "
        "unparsed = EXISTS (SELECT 1 FROM message WHERE ticket_id = ?1 "
        "AND parse_error IS NOT NULL), "
        "updated_at = ?2, version = version + 1 WHERE id = ?1",
        [ticket_id, now],
    )
    outbox.first_response(db, ticket_id)


def _check_version(ticket: dict[str, Any], version: int | None) -> None:
    if version is not None and ticket["version"] != version:
        raise ConflictError(
            f"Ticket #{ticket['id']} was changed by someone else meanwhile; "
            "its fresh state is shown, do it again if it is still needed."
        )


def merge(
    db: sqlite_utils.Database,
    source_id: int,
    target_id: int,
    actor: str,
    *,
    version: int | None = None,
) -> int:
    """Merge ticket `source_id` (B) into `target_id` (A); return the merge's record id.

    `version` is B as the agent saw it (ConflictError when B changed since, writing nothing).
    A settled A (resolved, closed) is opened again when B was still open. Raises DeskError when
    B is A, B is already merged, or A was merged elsewhere (naming the ticket to use instead).
    """
    if source_id == target_id:
        raise DeskError(f"#{source_id} cannot be merged into itself; choose another ticket.")
    now = clock.now_iso()
    with write(db):
        source, target = _ticket(db, source_id), _ticket(db, target_id)
        _check_version(source, version)
        if source["merged_into"] is not None:
            raise DeskError(
                f"#{source_id} is already merged into #{source['merged_into']}; "
                f"unmerge it first (desk ticket unmerge {source_id})."
            )
        if target["merged_into"] is not None:
            into = threads.follow(db, target_id)
            raise DeskError(
                f"#{target_id} was merged into #{into}; merge #{source_id} into #{into} instead."
            )
        tags = json.loads(target["tags"] or "[]")
        moved = {
            "messages": _ids(
                db, "SELECT id FROM message WHERE ticket_id = ? ORDER BY id", [source_id]
            ),
            "notes": _ids(
                db,
                "SELECT id FROM ticket_event WHERE ticket_id = ? AND action = 'note' ORDER BY id",
                [source_id],
            ),
            "outbox": _ids(
                db, "SELECT id FROM outbox WHERE ticket_id = ? ORDER BY id", [source_id]
            ),
            "participants": _ids(
                db,
                "SELECT addr FROM ticket_participant WHERE ticket_id = ? EXCEPT "
                "SELECT addr FROM ticket_participant WHERE ticket_id = ? ORDER BY 1",
                [source_id, target_id],
            ),
            "functions": _ids(
                db,
                "SELECT function FROM ticket_function WHERE ticket_id = ? EXCEPT "
                "SELECT function FROM ticket_function WHERE ticket_id = ? ORDER BY 1",
                [source_id, target_id],
            ),
            "tags": [t for t in json.loads(source["tags"] or "[]") if t not in tags],
            "status": source["status"],
            "target_status": None,
            # Mail numbered above this came after the merge.
            "last_message": db.execute("SELECT max(id) FROM message").fetchone()[0],
        }
        db.execute("UPDATE message SET ticket_id = ? WHERE ticket_id = ?", [target_id, source_id])
        db.execute(
            "UPDATE ticket_event SET ticket_id = ? WHERE ticket_id = ? AND action = 'note'",
            [target_id, source_id],
        )
        db.execute("UPDATE outbox SET ticket_id = ? WHERE ticket_id = ?", [target_id, source_id])
        db.conn.executemany(
            "INSERT INTO ticket_participant (ticket_id, addr) VALUES (?, ?)",
            [(target_id, a) for a in moved["participants"]],
        )
        db.conn.executemany(
            "INSERT INTO ticket_function (ticket_id, function) VALUES (?, ?)",
            [(target_id, f) for f in moved["functions"]],
        )
        status = target["status"]
        if status in _SETTLED and source["status"] in search.OPEN_STATUSES:
            moved["target_status"], status = status, "open"
        db.execute(
            "UPDATE ticket SET tags = ?, status = ? WHERE id = ?",
            [json.dumps(sorted([*tags, *moved["tags"]]), ensure_ascii=False), status, target_id],
        )
        # B keeps its participants: a reply carrying B's `[#B]` token is still recognised as
        # theirs, and threading passes it on to A.
        db.execute(
            "UPDATE ticket SET status = 'closed', merged_into = ? WHERE id = ?",
            [target_id, source_id],
        )
        # The SLA clocks follow both changes: B's stop, a reopened A's run again.
        sla.status_changed(db, target_id, target["status"], status, now)
        sla.status_changed(db, source_id, source["status"], "closed", now)
        _refresh(db, target_id, now)
        _refresh(db, source_id, now)
        discrepancy.reevaluate(db, [target_id])
        merge_id = db.execute(
            "INSERT INTO ticket_merge (source_id, target_id, moved, merged_at, merged_by) "
            "VALUES (?, ?, ?, ?, ?)",
            [source_id, target_id, json.dumps(moved, ensure_ascii=False), now, actor],
        ).lastrowid
        detail = {
            "from": f"#{source_id}",
            "to": f"#{target_id}",
            "messages": len(moved["messages"]),
        }
        record_event(db, target_id, actor, "merge", detail, at=now)
        record_event(db, source_id, actor, "merge", detail, at=now)
        if moved["target_status"]:
            change = {"from": moved["target_status"], "to": "open"}
            record_event(db, target_id, actor, "status", change, at=now)
    return merge_id


def unmerge(db: sqlite_utils.Database, source_id: int, actor: str) -> int:
    """Undo the merge of `source_id` (B); return the ticket it had been merged into (A).

    What the merge moved and is still on A returns to B; mail that came to A since stays there.
    A participant or function the merge added to A goes unless a message left on A has it. A
    that the merge opened again is settled again, unless mail came to it since.
    Raises DeskError when B is not merged, or when A has since been merged itself (undo that
    first).
    """
    now = clock.now_iso()
    with write(db):
        _ticket(db, source_id)
        row = db.execute(
            "SELECT id, target_id, moved FROM ticket_merge WHERE source_id = ? "
            "AND undone_at IS NULL ORDER BY id DESC LIMIT 1",
            [source_id],
        ).fetchone()
        if row is None:
            raise DeskError(f"#{source_id} is not merged into another ticket; nothing to undo.")
        merge_id, target_id, moved = row[0], row[1], json.loads(row[2])
        target = _ticket(db, target_id)
        if target["merged_into"] is not None:
            raise DeskError(
                f"#{target_id} has since been merged into #{target['merged_into']}; "
                f"unmerge #{target_id} first."
            )
        back = {
            "message": moved["messages"],
            "ticket_event": moved["notes"],
            "outbox": moved["outbox"],
        }
        for table, ids in back.items():
            if ids:
                db.execute(
                    f"UPDATE {table} SET ticket_id = ? WHERE ticket_id = ? "
                    f"AND id IN ({_marks(ids)})",
                    [source_id, target_id, *ids],
                )
        if moved["participants"]:
            db.execute(
                "DELETE FROM ticket_participant WHERE ticket_id = ?1 "
                f"AND addr IN ({_marks(moved['participants'])}) AND addr NOT IN "
                "(SELECT lower(from_addr) FROM message WHERE ticket_id = ?1)",
                [target_id, *moved["participants"]],
            )
        if moved["functions"]:
            db.execute(
                "DELETE FROM ticket_function WHERE ticket_id = ?1 AND function != ?2 "
                f"AND function IN ({_marks(moved['functions'])}) AND function NOT IN "
                "(SELECT j.value FROM message m, json_each(m.functions) j WHERE m.ticket_id = ?1)",
                [target_id, target["function"], *moved["functions"]],
            )
        tags = [t for t in json.loads(target["tags"] or "[]") if t not in moved["tags"]]
        status = target["status"]
        came_since = db.execute(
            "SELECT 1 FROM message WHERE ticket_id = ? AND id > ?",
            [target_id, moved["last_message"]],
        ).fetchone()
        if moved["target_status"] and status == "open" and not came_since:
            status = moved["target_status"]
        db.execute(
            "UPDATE ticket SET tags = ?, status = ? WHERE id = ?",
            [json.dumps(tags, ensure_ascii=False), status, target_id],
        )
        db.execute(
            "UPDATE ticket SET status = ?, merged_into = NULL WHERE id = ?",
            [moved["status"], source_id],
        )
        sla.status_changed(db, target_id, target["status"], status, now)
        sla.status_changed(db, source_id, "closed", moved["status"], now)
        _refresh(db, target_id, now)
        _refresh(db, source_id, now)
        discrepancy.reevaluate(db, [target_id, source_id])
        db.execute(
            "UPDATE ticket_merge SET undone_at = ?, undone_by = ? WHERE id = ?",
            [now, actor, merge_id],
        )
        returned = db.execute(
            "SELECT count(*) FROM message WHERE ticket_id = ?", [source_id]
        ).fetchone()[0]
        detail = {"from": f"#{target_id}", "to": f"#{source_id}", "messages": returned}
        record_event(db, target_id, actor, "unmerge", detail, at=now)
        record_event(db, source_id, actor, "unmerge", detail, at=now)
        if status != target["status"]:
            change = {"from": target["status"], "to": status}
            record_event(db, target_id, actor, "status", change, at=now)
    return target_id


def merged_here(db: sqlite_utils.Database, ticket_id: int) -> list[dict[str, Any]]:
    """The tickets merged into `ticket_id` and not unmerged, oldest merge first: `source_id`,
    `subject`, `merged_at`, `merged_by`."""
    return list(
        db.query(
            "SELECT m.source_id, t.subject, m.merged_at, m.merged_by FROM ticket_merge m "
            "JOIN ticket t ON t.id = m.source_id WHERE m.target_id = ? AND m.undone_at IS NULL "
            "AND t.merged_into = m.target_id ORDER BY m.id",
            [ticket_id],
        )
    )


def split(
    db: sqlite_utils.Database, message_id: int, actor: str, *, following: bool = False
) -> int:
    """Move message `message_id`, and with `following` every message after it in the thread,
    into a new ticket; return the new ticket's number.

    Raises NotFoundError for an unknown message, DeskError when it belongs to no ticket or
    the move would leave its ticket without messages (merge the tickets instead).
    """
    now = clock.now_iso()
    with write(db):
        first = next(db.query("SELECT * FROM message WHERE id = ?", [message_id]), None)
        if first is None:
            raise NotFoundError(f"message {message_id} does not exist")
        if first["ticket_id"] is None:
            raise DeskError(
                f"message {message_id} belongs to no ticket; there is nothing to split."
            )
        old = _ticket(db, first["ticket_id"])
        if following:
            ids = _ids(
                db,
                "SELECT id FROM message WHERE ticket_id = ? AND (received_at, id) >= (?, ?) "
                "ORDER BY received_at, id",
                [old["id"], first["received_at"], message_id],
            )
        else:
            ids = [message_id]
        if len(ids) == old["message_count"]:
            raise DeskError(
                f"that is every message of #{old['id']}, which would be left empty; "
                "split from a later message."
            )
        by_person = first["direction"] == "in" and first["auto"] == "" and first["from_addr"]
        addr = first["from_addr"] if by_person else old["requester_addr"]
        name = first["from_name"] if by_person else old["requester_name"]
        created = first["received_at"]
        new_id = db.execute(
            "INSERT INTO ticket (subject, requester_addr, requester_name, function, status, "
            "priority, assignee, created_at, updated_at, last_message_at) "
            "VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?, ?)",
            [
                threads.ticket_subject(first["subject"]),
                addr,
                name,
                old["function"],
                old["priority"],
                old["assignee"],
                created,
                now,
                created,
            ],
        ).lastrowid
        sla.refresh(db, new_id)  # its targets, from its function and priority, as ingest's
        marks = _marks(ids)
        db.execute(f"UPDATE message SET ticket_id = ? WHERE id IN ({marks})", [new_id, *ids])
        db.execute(
            f"UPDATE outbox SET ticket_id = ? WHERE id IN (SELECT outbox_id FROM message "
            f"WHERE id IN ({marks}))",
            [new_id, *ids],
        )
        db.execute(
            "INSERT INTO ticket_function (ticket_id, function) SELECT DISTINCT ?, j.value "
            f"FROM message m, json_each(m.functions) j WHERE m.id IN ({marks}) "
            "UNION SELECT ?, ?",
            [new_id, *ids, new_id, old["function"]],
        )
        # The old ticket's people, and whoever wrote a moved mail: their `[#N]` token threads.
        db.execute(
            "INSERT OR IGNORE INTO ticket_participant (ticket_id, addr) "
            "SELECT ?, addr FROM ticket_participant WHERE ticket_id = ? "
            f"UNION SELECT ?, lower(from_addr) FROM message WHERE id IN ({marks}) "
            "AND from_addr != ''",
            [new_id, old["id"], new_id, *ids],
        )
        _refresh(db, new_id, now)
        _refresh(db, old["id"], now)
        discrepancy.reevaluate(db, [old["id"], new_id])
        detail = {"from": f"#{old['id']}", "to": f"#{new_id}", "messages": ids}
        record_event(db, old["id"], actor, "split", detail, at=now)
        record_event(db, new_id, actor, "split", detail, at=now)
    return new_id


def candidates(
    db: sqlite_utils.Database, ticket_id: int, text: str, agent: str, limit: int = 30
) -> list[dict[str, Any]]:
    """Tickets `ticket_id` could be merged into, for a picker: those `text` finds (the desk's
    query language, `db.tickets.search`), newest activity first; with no text, the requester's
    other tickets, open ones first. Never the ticket itself nor a merged one."""
    if not text.strip():
        return customer.other_tickets(db, _ticket(db, ticket_id), limit)["tickets"]
    condition, params = search.where(search.parse(text, agent))
    return list(
        db.query(
            "SELECT t.id, t.subject, t.status, t.priority, t.last_message_at, t.message_count "
            f"FROM ticket t WHERE ({condition}) AND t.id != ? AND t.merged_into IS NULL "
            f"ORDER BY {search.order_by('newest')} LIMIT ?",
            [*params, ticket_id, limit],
        )
    )
