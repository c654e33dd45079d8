"""Tickets and windows: "during W12" links and discrepancy reports after a window.

A ticket whose first message arrives while a window is active is linked to it. A customer
message that arrives in a window's verification period (after it ends; 72 hours unless
configured) and says data or transactions differ makes its ticket a discrepancy report: kind
`discrepancy`, linked to the window, high priority, with the words that said so and their
language (`kind_reason`; the rules are in `db.maintenance.wording`). What an agent decides by hand
(`kind_set_by = 'agent'`) wins over the rule. The verdict for a ticket is always computed
from scratch, so ingest and a moved or cancelled window reach the same answer.
"""

from __future__ import annotations

import json
from datetime import timedelta
from functools import lru_cache
from typing import Any

import sqlite_utils

from db.core import clock, sla
from db.core.connect import write
from db.core.errors import DeskError, NotFoundError
from db.core.events import record_event
from db.maintenance import notices, rule_settings, window_model
from db.maintenance.wording import find as wording
from db.maintenance.wording import language
from db.maintenance.wording.judge import judge

RULE_ACTOR = "discrepancy-rule"
_RANK = {"low": 0, "normal": 1, "high": 2, "urgent": 3}


@lru_cache(maxsize=8)
def _rules(replace: tuple[str, ...] | None, extra: tuple[tuple[str, str], ...]) -> wording.Rules:
    extras = tuple(("", p) for p in replace or ()) + extra
    return wording.rules(extras, notices.BOILERPLATE, replace=replace is not None)


def vocabulary(settings: rule_settings.Settings) -> wording.Rules:
    """The rules of every language (`db/maintenance/wording/*.toml`) with the configured
    patterns: `vocabulary` instead of the built-in patterns, `vocabulary_extra` besides them
    (for every language, or per language). Raises RulesError for a pattern that cannot be used."""
    extra = tuple(("", p) for p in settings.vocabulary_extra) + tuple(
        (code, p) for code, patterns in settings.vocabulary_by_language for p in patterns
    )
    return _rules(settings.vocabulary, extra)


def reports_discrepancy(text: str, rules: wording.Rules, subject: str = "") -> bool:
    """Whether the writer's own words in `text` say data or transactions differ (the rules,
    then the classifier: `wording.judge`)."""
    return judge(rules, subject, text) is not None


def reason(kind_reason: str | None) -> str:
    """A ticket's stored reason as one line for the agent: 'German: "Kontostand stimmt nicht"'
    (with ", in the subject" when only the subject said it, ' (model, p=0.93)' when the
    classifier found it: the sentence it scored highest, in the language the mail seems to be
    in); "" when there is none (an agent decided, or the ticket is no report)."""
    if not kind_reason:
        return ""
    data = json.loads(kind_reason)
    code = data.get("language", "")
    name = language.load(code).name if code in language.CODES else "configured pattern"
    where = ", in the subject" if data.get("where") == "subject" else ""
    model = f" (model, p={data['probability']:.2f})" if data.get("probability") else ""
    return f'{name}: "{data.get("phrase", "")}"{where}{model}'


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
) -> tuple[int, int, wording.Finding] | None:
    """(window, message, finding) of the first message reporting a discrepancy in a
    verification period, or None."""
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
    rules = vocabulary(settings)
    for message_id, received, subject, body in db.execute(
        "SELECT id, received_at, subject, body_text FROM message WHERE ticket_id = ? "
        "AND auto = '' AND direction = 'in' AND received_at >= ? ORDER BY received_at, id",
        [ticket["id"], min(end for _, end, _ in ends)],
    ):
        # The latest window whose period holds the message: the one the writer just lived.
        window = next((wid for wid, end, until in ends if end <= received < until), None)
        found = judge(rules, subject, body) if window is not None else None
        if found is not None:
            return window, message_id, found
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
        _update(
            db,
            ticket_id,
            {**changes, "priority": _at_least_high(t["priority"]), "kind_reason": None},
        )
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
        _update(db, ticket_id, {**changes, "kind_reason": None})
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
            "window_id, kind_set_by, kind_reason, created_at, last_message_at FROM ticket "
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
        window, message, found = verdict
        said: dict[str, Any] = {
            "phrase": found.phrase, "language": found.language, "where": found.where
        }  # fmt: skip
        if found.probability is not None:
            said["probability"] = found.probability
        reason = json.dumps({**said, "message": message}, ensure_ascii=False)
        if (t["kind"], t["window_id"], t["kind_set_by"], t["kind_reason"]) == (
            "discrepancy", window, "rule", reason
        ):  # fmt: skip
            return
        changes: dict[str, Any] = {
            "kind": "discrepancy", "kind_set_by": "rule", "window_id": window, "kind_reason": reason
        }  # fmt: skip
        detail = {
            "to": "discrepancy",
            "window": window,
            "message": message,
            "reason": json.loads(reason),
        }
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
            {
                "kind": "normal",
                "kind_set_by": None,
                "window_id": None,
                "priority": priority,
                "kind_reason": None,
            },  # fmt: skip
        )
        record_event(db, t["id"], RULE_ACTOR, "kind", {"to": "normal", "priority": priority})
