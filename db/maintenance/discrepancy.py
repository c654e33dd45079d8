"""Tickets and windows: "during W12" links and discrepancy reports after a window.

A ticket whose first message arrives while a window is active is linked to it. A customer
message that arrives in a window's verification period (after it ends; 72 hours unless
configured) and says data or transactions differ makes its ticket a discrepancy report: kind
`discrepancy`, linked to the window, high priority. What an agent decides by hand
(`kind_set_by = 'agent'`) wins over the rule. The verdict for a ticket is always computed
from scratch, so ingest and a moved or cancelled window reach the same answer.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from functools import lru_cache
from typing import Any

import sqlite_utils

from db.core import clock, sla
from db.core.connect import write
from db.core.errors import DeskError, NotFoundError
from db.core.events import record_event
from db.maintenance import notices, rule_settings, window_model

RULE_ACTOR = "discrepancy-rule"
_RANK = {"low": 0, "normal": 1, "high": 2, "urgent": 3}

# Words between two halves of a phrase ("wrong account balance"), never a negation.
_GAP = r"(?:(?!(?:not|no|never)\b)[\w'-]+\s+)?"
# The rest of a subject between a noun and its verb ("deposits from 3 June are missing").
_SUBJECT = r"(?:[\w'-]+\s+){0,4}?"
_THINGS = (
    r"(?:transactions?|payments?|deposits?|withdrawals?|transfers?|trades?|orders?|entries|funds)"
)
_FIGURES = (
    r"(?:balances?|amounts?|totals?|figures?|numbers?|positions?|holdings?|statements?|"
    r"valuations?|values?)"
)
_BAD = r"(?:wrong|incorrect|off|different|inaccurate|too (?:low|high)|lower|higher|missing)"
DEFAULT_VOCABULARY = (
    r"\bdiscrepanc(?:y|ies)\b",
    r"\bmismatch(?:es|ed)?\b",
    r"\b(?:don'?t|doesn'?t|do not|does not|didn'?t|did not)\s+(?:match|add up|tally|reconcile)\b",
    rf"\b(?:wrong|incorrect|inaccurate)\s+{_GAP}{_FIGURES}\b",
    rf"\b{_FIGURES}\s+(?:is|are|was|were|looks?|seems?|appears?)\s+{_GAP}{_BAD}\b",
    rf"\bmissing\s+{_GAP}{_THINGS}\b",
    rf"\b{_THINGS}\s+{_SUBJECT}(?:is|are|was|were|has|have)\s+{_GAP}"
    r"(?:missing|gone|disappeared|vanished)\b",
    rf"\bduplicat(?:e|ed|es)\s+{_GAP}(?:{_THINGS}|charges?)\b",
    rf"\b(?:{_THINGS}|charges?)\s+{_GAP}(?:twice|duplicated|doubled)\b",
    r"\b(?:charged|debited|billed|booked)\s+twice\b",
    r"\bdouble[- ](?:charged|charges?|booked|bookings?|payments?|entry|entries)\b",
    rf"\b(?:can'?t|cannot|can not)\s+(?:find|see|locate)\s+(?:any of\s+)?(?:my|the|our)\s+"
    rf"{_GAP}(?:{_THINGS}|positions?|holdings?)\b",
)
# A match after one of these in its clause is denied or hypothetical: "no discrepancies",
# "I don't see any missing payments", "if your balance is wrong".
_NEGATORS = {"no", "not", "never", "without", "none", "nothing", "neither", "nor", "if", "any"}
_CLAUSE_END = re.compile(r"[.!?;:\n]|\bbut\b|\bhowever\b|\balthough\b", re.IGNORECASE)
_WORD = re.compile(r"[\w']+")
_REPLY_HEADER = re.compile(
    r"^\s*(?:-{2,}\s*original message\s*-{2,}|_{10,}|on\b.{4,200}\bwrote:|"
    r"from:\s.+\n\s*(?:sent|date):)",
    re.IGNORECASE | re.MULTILINE,
)
_SPACE = re.compile(r"\s+")


@lru_cache(maxsize=8)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


def vocabulary(settings: rule_settings.Settings) -> tuple[re.Pattern[str], ...]:
    base = DEFAULT_VOCABULARY if settings.vocabulary is None else settings.vocabulary
    return _compiled((*base, *settings.vocabulary_extra))


def _normalise(text: str) -> str:
    return _SPACE.sub(" ", text).strip().lower()


_OURS = tuple(_normalise(s) for s in notices.BOILERPLATE)


def own_words(text: str) -> str:
    """`text` without what the writer quoted: '>' lines, everything after a reply header
    ("On … wrote:", "-----Original Message-----", an Outlook "From:/Sent:" block), and lines
    carrying our notices' sentences."""
    header = _REPLY_HEADER.search(text)
    if header:
        text = text[: header.start()]
    kept = []
    for line in text.splitlines():
        if line.lstrip().startswith(">"):
            continue
        if any(ours in _normalise(line) for ours in _OURS):
            continue
        kept.append(line)
    return "\n".join(kept)


def _denied(text: str, start: int) -> bool:
    clause = _CLAUSE_END.split(text[:start])[-1]
    words = _WORD.findall(clause.lower())[-4:]
    return any(w in _NEGATORS or w.endswith("n't") for w in words)


def reports_discrepancy(text: str, patterns: tuple[re.Pattern[str], ...]) -> bool:
    """Whether the writer's own words say data or transactions differ (not denied)."""
    mine = own_words(text)
    return any(not _denied(mine, m.start()) for pattern in patterns for m in pattern.finditer(mine))


def _during(db: sqlite_utils.Database, at: str) -> int | None:
    row = db.execute(
        "SELECT id FROM window WHERE cancelled_at IS NULL AND start_at <= ? "
        f"AND (ends_at > ? OR {window_model.OPEN_EMERGENCY}) ORDER BY start_at DESC, id DESC "
        "LIMIT 1",
        [at, at],
    ).fetchone()
    return row[0] if row else None


def _verdict(
    db: sqlite_utils.Database, ticket: dict[str, Any], settings: rule_settings.Settings
) -> tuple[int, int] | None:
    """(window, message) of the first message reporting a discrepancy in a verification
    period, or None."""
    period = timedelta(hours=settings.verification_hours)
    earliest = clock.iso(clock.parse(ticket["created_at"]) - period)
    windows = db.execute(
        "SELECT id, ends_at FROM window WHERE cancelled_at IS NULL AND ends_at > ? "
        f"AND ends_at <= ? AND NOT {window_model.OPEN_EMERGENCY} ORDER BY ends_at DESC, id DESC",
        [earliest, ticket["last_message_at"]],
    ).fetchall()
    if not windows:
        return None
    ends = [(wid, end, clock.iso(clock.parse(end) + period)) for wid, end in windows]
    patterns = vocabulary(settings)
    for message_id, received, subject, body in db.execute(
        "SELECT id, received_at, subject, body_text FROM message WHERE ticket_id = ? "
        "AND auto = '' AND direction = 'in' AND received_at >= ? ORDER BY received_at, id",
        [ticket["id"], min(end for _, end, _ in ends)],
    ):
        # The latest window whose period holds the message: the one the writer just lived.
        window = next((wid for wid, end, until in ends if end <= received < until), None)
        if window is not None and reports_discrepancy(f"{subject}\n{body}", patterns):
            return window, message_id
    return None


def _at_least_high(priority: str) -> str:
    return max(priority, "high", key=_RANK.__getitem__)


def _update(db: sqlite_utils.Database, ticket_id: int, changes: dict[str, Any]) -> None:
    sets = ", ".join(f"{column} = ?" for column in changes)
    db.execute(
        f"UPDATE ticket SET {sets}, updated_at = ?, version = version + 1 WHERE id = ?",
        [*changes.values(), clock.now_iso(), ticket_id],
    )
    if "priority" in changes:  # a report raised to high is due sooner
        sla.refresh(db, ticket_id)


def _raised_from(db: sqlite_utils.Database, ticket_id: int) -> str | None:
    """The priority the ticket had before it was last made a discrepancy report."""
    row = db.execute(
        "SELECT detail FROM ticket_event WHERE ticket_id = ? AND action = 'kind' "
        "AND json_extract(detail, '$.priority_from') IS NOT NULL ORDER BY id DESC LIMIT 1",
        [ticket_id],
    ).fetchone()
    return json.loads(row[0]).get("priority_from") if row else None


def _restored(db: sqlite_utils.Database, t: dict[str, Any]) -> str:
    """The priority a discrepancy report goes back to when it stops being one: the one from
    before it was raised, if it is still at the raised "high"; else as it is now."""
    before = _raised_from(db, t["id"])
    return before if before and t["priority"] == "high" else t["priority"]


def reevaluate(db: sqlite_utils.Database, ticket_ids: list[int]) -> None:
    """Apply the rule to each ticket (inside the caller's transaction)."""
    if not ticket_ids:
        return
    settings = rule_settings.load(db)
    for ticket_id in ticket_ids:
        for ticket in db.query("SELECT * FROM ticket WHERE id = ?", [ticket_id]):
            _apply(db, ticket, settings)


def reevaluate_span(db: sqlite_utils.Database, start: str, end: str) -> None:
    """Re-judge every ticket a window from `start` to `end` may touch: opened during it,
    written to in its verification period, or linked to a window there now."""
    hours = rule_settings.load(db).verification_hours
    until = clock.iso(clock.parse(end) + timedelta(hours=hours))
    ids = [
        row[0]
        for row in db.execute(
            "SELECT id FROM ticket WHERE created_at >= ? AND created_at < ? "
            "UNION SELECT DISTINCT ticket_id FROM message WHERE ticket_id IS NOT NULL "
            "AND received_at >= ? AND received_at < ? "
            "UNION SELECT t.id FROM ticket t JOIN window w "
            "ON w.id = t.window_id OR w.id = t.during_window_id "
            "WHERE w.start_at < ? AND w.ends_at >= ?",
            [start, end, end, until, until, start],
        )
    ]
    reevaluate(db, ids)


def _ticket(db: sqlite_utils.Database, ticket_id: int) -> dict[str, Any]:
    for ticket in db.query("SELECT * FROM ticket WHERE id = ?", [ticket_id]):
        return ticket
    raise NotFoundError(f"There is no ticket #{ticket_id}.")


def mark(
    db: sqlite_utils.Database, ticket_id: int, actor: str, *, window_id: int | None = None
) -> None:
    """An agent says the ticket is a discrepancy report (about `window_id`, or the window the
    rule found, or none); the rule leaves it alone from now on."""
    with write(db):
        t = _ticket(db, ticket_id)
        if window_id is not None:
            window_model.get(db, window_id)  # raises NotFoundError for a window never made
        else:
            found = _verdict(db, t, rule_settings.load(db))
            window_id = t["window_id"] or (found[0] if found else None)
        changes = {"kind": "discrepancy", "kind_set_by": "agent", "window_id": window_id}
        _update(db, ticket_id, {**changes, "priority": _at_least_high(t["priority"])})
        # Already a report (the rule made it one): its priority from before stays on record.
        raised = {} if t["kind"] == "discrepancy" else {"priority_from": t["priority"]}
        record_event(db, ticket_id, actor, "kind", {**changes, **raised})


def unmark(db: sqlite_utils.Database, ticket_id: int, actor: str) -> None:
    """An agent says the ticket is not a discrepancy report; the rule leaves it alone. The
    priority it had before it was made one comes back, unless someone changed it since."""
    with write(db):
        t = _ticket(db, ticket_id)
        changes = {"kind": "normal", "kind_set_by": "agent", "window_id": None}
        if t["kind"] == "discrepancy":
            changes["priority"] = _restored(db, t)
        _update(db, ticket_id, changes)
        record_event(db, ticket_id, actor, "kind", changes)


def release(db: sqlite_utils.Database, ticket_id: int, actor: str) -> None:
    """Hand the ticket back to the rule, which judges it again at once."""
    with write(db):
        if _ticket(db, ticket_id)["kind_set_by"] != "agent":
            raise DeskError(
                f"Ticket #{ticket_id} was not marked by hand; the rule already decides it."
            )
        _update(db, ticket_id, {"kind_set_by": None})
        record_event(db, ticket_id, actor, "kind", {"kind_set_by": "rule"})
        reevaluate(db, [ticket_id])


def listing(
    db: sqlite_utils.Database, *, window_id: int | None = None, open_only: bool = False
) -> list[dict[str, Any]]:
    """Discrepancy reports, newest first: ticket, its window, who decided, its state."""
    where = ["kind = 'discrepancy'"]
    params: list[Any] = []
    if window_id is not None:
        where.append("window_id = ?")
        params.append(window_id)
    if open_only:
        where.append("status NOT IN ('resolved', 'closed')")
    return list(
        db.query(
            "SELECT id AS ticket, subject, requester_addr, function, status, priority, "
            "window_id, kind_set_by, created_at, last_message_at FROM ticket "
            f"WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC",
            params,
        )
    )


def _apply(db: sqlite_utils.Database, t: dict[str, Any], settings: rule_settings.Settings) -> None:
    during = _during(db, t["created_at"])
    if during != t["during_window_id"]:
        _update(db, t["id"], {"during_window_id": during})
        record_event(db, t["id"], RULE_ACTOR, "window", {"during": during})
    if t["kind_set_by"] == "agent":
        return
    verdict = _verdict(db, t, settings)
    if verdict is not None:
        window, message = verdict
        if (t["kind"], t["window_id"], t["kind_set_by"]) == ("discrepancy", window, "rule"):
            return
        changes = {"kind": "discrepancy", "kind_set_by": "rule", "window_id": window}
        detail = {"to": "discrepancy", "window": window, "message": message}
        if t["kind"] != "discrepancy":  # raising it now: remember from what, to undo it
            changes["priority"] = _at_least_high(t["priority"])
            detail["priority_from"] = t["priority"]
        _update(db, t["id"], changes)
        record_event(db, t["id"], RULE_ACTOR, "kind", detail)
    elif t["kind"] == "discrepancy":
        # The window moved or was cancelled: undo what the rule did, priority included unless
        # someone has changed it since.
        priority = _restored(db, t)
        _update(
            db,
            t["id"],
            {"kind": "normal", "kind_set_by": None, "window_id": None, "priority": priority},
        )
        record_event(db, t["id"], RULE_ACTOR, "kind", {"to": "normal", "priority": priority})
