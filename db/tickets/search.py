"""The desk's query language: filters and free text turned into a safe SQL condition on tickets.

`fn:technical status:open assignee:me is:unassigned is:discrepancy is:during-window is:via-list
is:breached window:7 age:>2h #42 printer jam` — filters narrow, the rest is searched in the FTS5
index.
Nothing a user types can raise: every free-text word is quoted for FTS5 (sqlite-utils'
`quote_fts` idea), and a filter that makes no sense is reported in `Query.problems` and ignored,
never sent to SQLite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from db.core import clock, sla
from db.core.errors import DeskError
from db.core.migrations import FUNCTIONS, PRIORITIES, STATUSES
from db.maintenance.window_model import ref

OPEN_STATUSES = ("new", "open", "pending")
_IS = ("unassigned", "discrepancy", "during-window", "via-list", "breached")  # sets Query.NAME
MAX_AGE = timedelta(days=36500)  # older than any mail; beyond it the date arithmetic overflows
_AGE = re.compile(r"^([<>]=?)?(\d{1,6})([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_NUMBER = re.compile(r"^#(\d{1,12})$")

# The sort orders the list offers: the key columns (with direction) decide both ORDER BY and the
# keyset comparison that finds a ticket's row number; the default is newest activity first.
SORTS: dict[str, tuple[tuple[str, str], ...]] = {
    "newest": (("t.last_message_at", "DESC"), ("t.id", "DESC")),
    "oldest": (("t.last_message_at", "ASC"), ("t.id", "ASC")),
    "number": (("t.id", "DESC"),),
    "priority": (
        (
            "CASE t.priority WHEN 'urgent' THEN 3 WHEN 'high' THEN 2 "
            "WHEN 'normal' THEN 1 ELSE 0 END",
            "DESC",
        ),
        ("t.last_message_at", "DESC"),
        ("t.id", "DESC"),
    ),
}


@dataclass
class Query:
    """A parsed query; `problems` holds one sentence per term that was ignored."""

    words: list[str] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    priorities: list[str] = field(default_factory=list)
    assignee: str | None = None
    unassigned: bool = False
    discrepancy: bool = False
    during_window: bool = False
    via_list: bool = False
    breached: bool = False  # an SLA target missed (`db.core.sla.breached`)
    window_id: int | None = None
    numbers: list[int] = field(default_factory=list)
    age: tuple[str, timedelta] | None = None
    problems: list[str] = field(default_factory=list)


def _choices(value: str, allowed: tuple[str, ...], name: str, q: Query) -> list[str]:
    picked = [v for v in value.lower().split(",") if v]
    bad = [v for v in picked if v not in allowed]
    if bad or not picked:
        q.problems.append(f"{name}:{value} ignored: use one of {', '.join(allowed)}")
        return []
    return picked


def _term(term: str, q: Query, agent: str) -> None:
    key, _, value = term.partition(":")
    key = key.lower()
    if key == "fn":
        q.functions += _choices(value, FUNCTIONS, "fn", q)
    elif key == "status":
        wanted = "new,open,pending" if value.lower() == "open*" else value
        q.statuses += _choices(wanted, STATUSES, "status", q)
    elif key == "priority":
        q.priorities += _choices(value, PRIORITIES, "priority", q)
    elif key == "assignee" and value:
        q.assignee = agent if value.lower() == "me" else value
    elif key == "is" and value.lower() in _IS:
        setattr(q, value.lower().replace("-", "_"), True)
    elif key == "is":
        q.problems.append(f"is:{value} ignored: use {', '.join(f'is:{v}' for v in _IS)}")
    elif key == "window":
        try:
            q.window_id = ref(value)
        except DeskError:
            q.problems.append(f"window:{value} ignored: give a window number, e.g. window:3")
    elif key == "age":
        match = _AGE.match(value.lower())
        span = timedelta(**{_UNITS[match.group(3)]: int(match.group(2))}) if match else None
        if span is not None and span <= MAX_AGE:
            q.age = (match.group(1) or ">", span)
        else:
            q.problems.append(f"age:{value} ignored: write e.g. age:>2h, age:<30m, age:>3d")
    else:
        # Not one of ours (a URL, "re:", a time like 10:30): the user meant the words.
        q.words.append(term)


def parse(text: str, agent: str = "") -> Query:
    """Parse what the user typed; never raises."""
    q = Query()
    for term in text.split():
        number = _NUMBER.match(term)
        if number:
            q.numbers.append(int(number.group(1)))
        elif ":" in term.strip(":"):
            _term(term, q, agent)
        else:
            q.words.append(term)
    return q


def fts_expression(words: list[str]) -> str:
    """Each word as an FTS5 string (so AND, OR, NEAR, `*`, `"` and `-` are plain text); the last
    word also matches as a prefix, so a query finds while it is being typed."""
    # SQLite reads the expression as a C string: a NUL would end it mid-quote.
    quoted = ['"' + w.replace("\x00", "").replace('"', '""') + '"' for w in words]
    if quoted:
        quoted[-1] += "*"
    return " ".join(quoted)


def _in(column: str, values: list[str], params: list) -> str:
    params.extend(values)
    return f"{column} IN ({', '.join('?' for _ in values)})"


def where(q: Query, now: datetime | None = None) -> tuple[str, list[object]]:
    """A condition on `ticket t` and its parameters; `1` when nothing narrows."""
    parts: list[str] = []
    params: list[object] = []
    if q.functions:
        parts.append(
            "t.id IN (SELECT ticket_id FROM ticket_function WHERE "
            + _in("function", q.functions, params)
            + ")"
        )
    if q.statuses:
        parts.append(_in("t.status", q.statuses, params))
    if q.priorities:
        parts.append(_in("t.priority", q.priorities, params))
    if q.assignee:
        parts.append("t.assignee = ?")
        params.append(q.assignee)
    if q.unassigned:
        parts.append("(t.assignee IS NULL OR t.assignee = '')")
    if q.discrepancy:
        parts.append("t.kind = 'discrepancy'")
    if q.numbers:
        parts.append(f"t.id IN ({', '.join('?' for _ in q.numbers)})")
        params.extend(q.numbers)
    if q.during_window:
        parts.append("t.during_window_id IS NOT NULL")
    if q.via_list:
        parts.append("t.via_list = 1")
    if q.breached:
        condition, values = sla.breached(clock.iso(now or clock.now()))
        parts.append(condition)
        params += values
    if q.window_id is not None:
        # About the window (a linked report) or received while it was in force.
        parts.append("(t.window_id = ? OR t.during_window_id = ?)")
        params += [q.window_id, q.window_id]
    if q.age:
        op, span = q.age
        cutoff = clock.iso((now or clock.now()) - span)
        # Older than the span means created before the cutoff.
        flipped = {">": "<", ">=": "<=", "<": ">", "<=": ">="}[op]
        parts.append(f"t.created_at {flipped} ?")
        params.append(cutoff)
    if q.words:
        parts.append(
            "t.id IN (SELECT m.ticket_id FROM message m WHERE m.id IN "
            "(SELECT rowid FROM message_fts WHERE message_fts MATCH ?))"
        )
        params.append(fts_expression(q.words))
    return (" AND ".join(parts) or "1"), params


def order_by(sort: str) -> str:
    return ", ".join(f"{expr} {direction}" for expr, direction in SORTS[sort])


def before(sort: str) -> str:
    """A condition true for the rows that sort before the row whose keys are bound as `?`s."""
    keys = SORTS[sort]
    # Row values compare lexicographically; all keys of one sort share a direction.
    op = "<" if keys[0][1] == "ASC" else ">"
    return f"({', '.join(e for e, _ in keys)}) {op} ({', '.join('?' for _ in keys)})"


def key_values(sort: str) -> str:
    return ", ".join(e for e, _ in SORTS[sort])
