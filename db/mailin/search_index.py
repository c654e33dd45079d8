"""Putting stored messages into the search indexes, a batch in one statement per index.

The word index (`message_fts`, FTS5 `unicode61`) holds every message; the trigram index
(`message_trigram`) only those with text in a script written without spaces (`migrations.
unsegmented`). Both are external-content FTS5 tables over `message`: triggers take a message
out on delete and follow an update of its indexed columns, but an insert is indexed here, by
whoever inserted it (`db.mailin.store`, the only writer of new messages), in the same
transaction, so search finds a message as soon as it is committed. One `INSERT ... SELECT` per
batch instead of a trigger per message: FTS5 writes out what it gathered at each statement, and
a statement per message cost three times the CPU (issue 16, `migrations._v14_search_per_batch`).

Every message inserted must come here exactly once before its transaction commits: FTS5
trusts its deletes, and the delete trigger of a message it was never given corrupts the index.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlite_utils

from db.core.migrations import FTS_COLUMNS, TRIGRAM_COLUMNS, unsegmented
from db.mailin.model import Incoming


def add(db: sqlite_utils.Database, messages: Sequence[tuple[int, Incoming]]) -> None:
    """Index the stored messages `messages` ((message.id, the Incoming stored as it), inside
    the caller's transaction); the trigram index takes those whose text needs it."""
    if not messages:
        return
    _fill(db, "message_fts", FTS_COLUMNS, [message_id for message_id, _ in messages])
    grams = [
        message_id
        for message_id, msg in messages
        if unsegmented(msg.subject, msg.from_name, msg.body_text)
    ]
    if grams:
        _fill(db, "message_trigram", TRIGRAM_COLUMNS, grams)


def catch_up(db: sqlite_utils.Database) -> int:
    """Index every message the word index does not hold (inside the caller's transaction); how
    many. Those are mail an older `desk-ingest` stored after a newer `desk` had upgraded the
    schema under it (`_v14_search_per_batch` took the insert triggers it relied on away). The
    daemon calls this at start, before anything updates such a message: the update trigger's
    delete of a message never indexed corrupts the index. Reads only the message ids when
    nothing is missing: a covering-index scan, 0.05 s at a million messages with a warm cache."""
    missing = [
        row[0]
        for row in db.execute(
            "SELECT id FROM message WHERE id NOT IN (SELECT id FROM message_fts_docsize)"
        )
    ]
    if not missing:
        return 0
    _fill(db, "message_fts", FTS_COLUMNS, missing)
    rows = db.execute(
        "SELECT id, subject, from_name, body_text FROM message "
        "WHERE id IN (SELECT value FROM json_each(?))",
        [_json_ids(missing)],
    )
    grams = [row[0] for row in rows if unsegmented(*row[1:])]
    if grams:
        _fill(db, "message_trigram", TRIGRAM_COLUMNS, grams)
    return len(missing)


def _json_ids(ids: list[int]) -> str:
    return f"[{','.join(map(str, ids))}]"


def _fill(db: sqlite_utils.Database, table: str, columns: tuple[str, ...], ids: list[int]) -> None:
    names = ", ".join(columns)
    db.execute(
        f"INSERT INTO {table} (rowid, {names}) SELECT id, {names} FROM message "
        "WHERE id IN (SELECT value FROM json_each(?))",
        [_json_ids(ids)],
    )
