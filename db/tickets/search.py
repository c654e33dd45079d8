"""The desk's query language: filters and free text turned into a safe SQL condition on tickets.

`fn:technical status:open assignee:me is:unassigned is:discrepancy is:during-window is:via-list
is:breached is:merged window:7 age:>2h from:ann@example.com #42 printer jam` — filters narrow,
the rest is searched in the FTS5 index: words of scripts written without spaces (Chinese,
Japanese, Thai…) in the trigram index, so they are found inside a sentence. Nothing a user types
can raise: every free-text word is quoted for FTS5 (sqlite-utils' `quote_fts` idea), and a
filter that makes no sense is reported in `Query.problems` and ignored, never sent to SQLite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from db.core import clock, sla
from db.core.errors import DeskError
from db.core.migrations import FUNCTIONS, PRIORITIES, STATUSES, UNSEGMENTED
from db.maintenance.window_model import ref

OPEN_STATUSES = ("new", "open", "pending")
# is:NAME sets Query.NAME
_IS = ("unassigned", "discrepancy", "during-window", "via-list", "breached", "merged")
MAX_AGE = timedelta(days=36500)  # older than any mail; beyond it the date arithmetic overflows
_AGE = re.compile(r"^([<>]=?)?(\d{1,6})([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_NUMBER = re.compile(r"^#(\d{1,12})$")
# Words of scripts written without spaces (`migrations.UNSEGMENTED`: Thai, Lao, Myanmar, Khmer,
# kana, the CJK ideographs) are looked for in the trigram index; Korean is written with spaces
# and stays with `unicode61`.
TRIGRAM = 3  # FTS5's trigram tokenizer finds no string shorter than this
SHORT_SCAN = 50_000  # the newest messages a 1-2 character word of those scripts is looked for in
# From this many matching messages (of any number of tickets) on, the list's first page is found
# by walking the tickets in list order and checking each against the matches, rather than by
# sorting every matching ticket: a common word then costs as little as a rare one.
DENSE = 5_000

# The sort orders the list offers: the key columns (with direction) decide both ORDER BY and the
# keyset comparison that finds a ticket's row number; the default is newest activity first.
SORTS: dict[str, tuple[tuple[str, str], ...]] = {
    "newest": (("t.last_message_at", "DESC"), ("t.id", "DESC")),
    "oldest": (("t.last_message_at", "ASC"), ("t.id", "ASC")),
    "number": (("t.id", "DESC"),),
    # The CASE is the one `ticket_priority_sort` indexes (db/core/migrations.py), to the word.
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
    merged: bool = False  # merged into another ticket (db/tickets/merge.py): a closed pointer
    window_id: int | None = None
    numbers: list[int] = field(default_factory=list)
    age: tuple[str, timedelta] | None = None
    senders: list[str] = field(default_factory=list)  # from:ADDRESS, whole or in part
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
    elif key == "from" and re.search(r"\w", value):
        q.senders.append(value)
    elif key == "from":
        q.problems.append(f"from:{value} ignored: give an address or part of one, e.g. from:ann")
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
    for word in q.words:
        if UNSEGMENTED.search(word) and len(word) < TRIGRAM:
            q.problems.append(
                f"{word} is looked for in the newest {SHORT_SCAN:,} messages only: "
                f"words under {TRIGRAM} characters are not in the index"
            )
    return q


def fts_expression(words: list[str]) -> str:
    """Each word as an FTS5 string (so AND, OR, NEAR, `*`, `"` and `-` are plain text); the last
    word also matches as a prefix, so a query finds while it is being typed."""
    # SQLite reads the expression as a C string: a NUL would end it mid-quote.
    quoted = ['"' + w.replace("\x00", "").replace('"', '""') + '"' for w in words]
    if quoted:
        quoted[-1] += "*"
    return " ".join(quoted)


def _text(words: list[str]) -> tuple[list[str], list[object], list[tuple[str, str]]]:
    """Conditions on `message m` that the words make, their parameters, and the (index, FTS5
    expression) pairs used, for judging how many messages match."""
    plain = [w for w in words if not UNSEGMENTED.search(w)]
    grams = [w.replace("\x00", "") for w in words if UNSEGMENTED.search(w)]
    longer = [w for w in grams if len(w) >= TRIGRAM]
    short = [w for w in grams if len(w) < TRIGRAM]
    indexed: list[tuple[str, str]] = []
    if plain:
        indexed.append(("message_fts", fts_expression(plain)))
    if longer:
        # A trigram phrase matches the string anywhere, so no prefix mark is needed.
        indexed.append(
            ("message_trigram", " ".join('"' + w.replace('"', '""') + '"' for w in longer))
        )
    parts = [f"m.id IN (SELECT rowid FROM {table} WHERE {table} MATCH ?)" for table, _ in indexed]
    params: list[object] = [expression for _, expression in indexed]
    for word in short:
        pattern = "%" + re.sub(r"([%_\\])", r"\\\1", word) + "%"
        parts.append(
            "(m.subject LIKE ? ESCAPE '\\' OR m.from_name LIKE ? ESCAPE '\\' "
            "OR m.body_text LIKE ? ESCAPE '\\')"
        )
        params += [pattern, pattern, pattern]
    if short:
        # Without an index the scan is bounded: the newest messages, by their ids.
        parts.append("m.id > (SELECT coalesce(max(id), 0) FROM message) - ?")
        params.append(SHORT_SCAN)
    return parts, params, indexed if not short else []


def _dense(db: Any, indexed: list[tuple[str, str]]) -> bool:
    """Whether every index lookup matches at least DENSE messages (counted up to DENSE only)."""
    if not indexed:
        return False
    for table, expression in indexed:
        # Without its prefix mark: FTS5 gathers a prefix's whole match list before the first
        # row, and a word is no commoner than the prefix it is.
        found = db.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {table} MATCH ? LIMIT ?)",
            [expression.removesuffix("*"), DENSE],
        ).fetchone()[0]
        if found < DENSE:
            return False
    return True


def sender_expression(address: str) -> str:
    """An FTS5 expression for messages whose sender holds `address` as a run of words of its
    address or name: the index splits `ann@example.com` into `ann`, `example`, `com`, so
    `from:ann`, `from:example.com` and the whole address all find it, and the last word matches
    as a prefix (`from:ann@exa`)."""
    return "{from_addr from_name} : " + fts_expression([address])


def _in(column: str, values: list[str], params: list) -> str:
    params.extend(values)
    return f"{column} IN ({', '.join('?' for _ in values)})"


def where(
    q: Query, now: datetime | None = None, db: Any = None, hide_merged: bool = False
) -> tuple[str, list[object]]:
    """A condition on `ticket t` and its parameters; `1` when nothing narrows.

    With the database `db` (anything with `execute`), free text or a `from:` that matches many
    messages is written so that SQLite walks the list's index and stops at the page (see DENSE);
    without it, or for rarer text, the matching tickets are collected first, which is then the
    fast way. With `hide_merged`, tickets merged into another are left out unless the query asks
    for them (`is:merged`, or by number): the desk's list shows the case once, where it goes on."""
    parts: list[str] = []
    params: list[object] = []
    if q.merged:
        parts.append("t.merged_into IS NOT NULL")
    elif hide_merged and not q.numbers:
        parts.append("t.merged_into IS NULL")
    if q.functions:
        # `+` keeps SQLite from listing the function's tickets and sorting them all: it walks
        # the list's order and looks each ticket up in the set, stopping at the page.
        parts.append(
            "+t.id IN (SELECT ticket_id FROM ticket_function WHERE "
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
    for address in q.senders:
        # Each sender on a message of its own: from:ann from:bob finds a ticket both wrote to.
        expression = sender_expression(address)
        on_message = "m.id IN (SELECT rowid FROM message_fts WHERE message_fts MATCH ?)"
        parts.append(_having_message(db, on_message, [("message_fts", expression)]))
        params.append(expression)
    if q.words:
        text, values, indexed = _text(q.words)
        parts.append(_having_message(db, " AND ".join(text), indexed))
        params += values
    return (" AND ".join(parts) or "1"), params


def _having_message(db: Any, on_message: str, indexed: list[tuple[str, str]]) -> str:
    """A condition on `ticket t`: one of its messages `m` meets `on_message`. When the index
    lookups match many messages (DENSE, judged with `db`), written so that SQLite walks the list's
    order and stops at the page; otherwise the matching tickets are gathered first."""
    if db is not None and _dense(db, indexed):
        return f"EXISTS (SELECT 1 FROM message m WHERE m.ticket_id = t.id AND {on_message})"
    return f"t.id IN (SELECT m.ticket_id FROM message m WHERE {on_message})"


def order_by(sort: str) -> str:
    return ", ".join(f"{expr} {direction}" for expr, direction in SORTS[sort])


def before(sort: str) -> str:
    """A condition true for the rows that sort before the row whose sort values are bound
    (`bound(sort, keys)` gives the parameters)."""
    return _compare(sort, "<" if SORTS[sort][0][1] == "ASC" else ">")


def from_row(sort: str) -> str:
    """A condition true for the row whose sort values are bound and the rows after it."""
    return _compare(sort, ">=" if SORTS[sort][0][1] == "ASC" else "<=")


def _expression(sort: str) -> bool:
    """Whether the sort's first key is an expression (priority's CASE), not a column."""
    return not re.fullmatch(r"t\.\w+", SORTS[sort][0][0])


def _compare(sort: str, op: str) -> str:
    # Row values compare lexicographically; all keys of one sort share a direction.
    columns = [e for e, _ in SORTS[sort]]
    if len(columns) == 1 or not _expression(sort):
        return f"({', '.join(columns)}) {op} ({', '.join('?' for _ in columns)})"
    # SQLite seeks an expression index for `expr > ?` and `expr = ? AND ...`, but not for a
    # row value that starts with the expression (a scan of every ticket: 120 ms at 100,000).
    first, rest = columns[0], columns[1:]
    return (
        f"({first} {op[0]} ? OR ({first} = ? AND "
        f"({', '.join(rest)}) {op} ({', '.join('?' for _ in rest)})))"
    )


def bound(sort: str, keys: tuple[object, ...]) -> list[object]:
    """The parameters of `before(sort)` or `from_row(sort)` for a row with sort values `keys`."""
    return [keys[0], *keys] if len(keys) > 1 and _expression(sort) else list(keys)


def key_values(sort: str) -> str:
    return ", ".join(e for e, _ in SORTS[sort])
