"""Schema and its migrations: one function per change, numbered by `PRAGMA user_version`.

`migrate()` is safe on every start and from several processes at once: it takes the write
lock, re-reads the version under it, and applies only what is missing, all in one transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import sqlite_utils

from db.core import clock, sla

FUNCTIONS = ("technical", "sales", "compliance", "general", "marketing")
STATUSES = ("new", "open", "pending", "resolved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
KINDS = ("normal", "discrepancy")
WINDOW_KINDS = ("monthly", "quarterly", "emergency", "adhoc")
UPDATE_TYPES = ("feature", "security", "performance")
NOTICE_KINDS = (
    "announcement", "reminder", "change", "start", "completion", "cancellation", "report",
)  # fmt: skip
OUTBOX_KINDS = ("reply", "ack", "notice")
OUTBOX_STATUSES = ("queued", "sending", "sent", "failed", "cancelled")
NOTICE_CHANNELS = ("email", "banner")
# A message's kind: written by a person (directly, or through a mailing list), or by a machine.
MESSAGE_KINDS = ("", "list", "auto-reply", "bounce", "delay", "read-receipt")


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


# The notice kinds of schema v2; v3 added "change" and "report".
_V2_NOTICE_KINDS = ("announcement", "reminder", "start", "completion", "cancellation")


def _notice_table(name: str, kinds: tuple[str, ...]) -> str:
    """The notice ledger's table: SQLite cannot change a CHECK, so v3 rebuilds it."""
    return f"""CREATE TABLE {name} (
            id INTEGER PRIMARY KEY,
            window_id INTEGER NOT NULL REFERENCES window (id) ON DELETE CASCADE,
            revision INTEGER NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN {_in(kinds)}),
            channel TEXT NOT NULL CHECK (channel IN {_in(NOTICE_CHANNELS)}),
            subject TEXT NOT NULL DEFAULT '',
            body TEXT NOT NULL,
            rendered_at TEXT NOT NULL,
            issued_by TEXT NOT NULL,
            superseded INTEGER NOT NULL DEFAULT 0,
            UNIQUE (window_id, revision, kind, channel)
        )"""


def _v1_core(db: sqlite_utils.Database) -> None:
    """Tickets, messages, attachments, audit trail, source checkpoints and the search index."""
    db.executescript(
        f"""
        CREATE TABLE ticket (
            id INTEGER PRIMARY KEY,
            subject TEXT NOT NULL DEFAULT '',
            requester_addr TEXT NOT NULL DEFAULT '',
            requester_name TEXT NOT NULL DEFAULT '',
            function TEXT NOT NULL CHECK (function IN {_in(FUNCTIONS)}),
            status TEXT NOT NULL DEFAULT 'new' CHECK (status IN {_in(STATUSES)}),
            priority TEXT NOT NULL DEFAULT 'normal' CHECK (priority IN {_in(PRIORITIES)}),
            assignee TEXT,
            tags TEXT NOT NULL DEFAULT '[]',
            kind TEXT NOT NULL DEFAULT 'normal' CHECK (kind IN {_in(KINDS)}),
            kind_set_by TEXT CHECK (kind_set_by IN ('rule', 'agent')),
            unparsed INTEGER NOT NULL DEFAULT 0,
            message_count INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            last_message_at TEXT NOT NULL,
            first_response_due TEXT,
            version INTEGER NOT NULL DEFAULT 1
        );
        CREATE INDEX ticket_last_message ON ticket (last_message_at DESC);
        CREATE INDEX ticket_status ON ticket (status, last_message_at DESC);

        CREATE TABLE ticket_function (
            ticket_id INTEGER NOT NULL REFERENCES ticket (id) ON DELETE CASCADE,
            function TEXT NOT NULL CHECK (function IN {_in(FUNCTIONS)}),
            PRIMARY KEY (ticket_id, function)
        ) WITHOUT ROWID;
        CREATE INDEX ticket_function_by_function ON ticket_function (function, ticket_id);

        CREATE TABLE ticket_participant (
            ticket_id INTEGER NOT NULL REFERENCES ticket (id) ON DELETE CASCADE,
            addr TEXT NOT NULL,
            PRIMARY KEY (ticket_id, addr)
        ) WITHOUT ROWID;

        CREATE TABLE message (
            id INTEGER PRIMARY KEY,
            sha256 TEXT NOT NULL UNIQUE,
            size INTEGER NOT NULL,
            ticket_id INTEGER REFERENCES ticket (id),
            function TEXT NOT NULL,
            functions TEXT NOT NULL DEFAULT '[]',
            source TEXT NOT NULL,
            received_at TEXT NOT NULL,
            ingested_at TEXT NOT NULL,
            message_id TEXT,
            in_reply_to TEXT,
            refs TEXT NOT NULL DEFAULT '[]',
            from_addr TEXT NOT NULL DEFAULT '',
            from_name TEXT NOT NULL DEFAULT '',
            to_addrs TEXT NOT NULL DEFAULT '',
            cc_addrs TEXT NOT NULL DEFAULT '',
            subject TEXT NOT NULL DEFAULT '',
            date_header TEXT NOT NULL DEFAULT '',
            sent_at TEXT,
            headers TEXT NOT NULL DEFAULT '',
            body_text TEXT NOT NULL DEFAULT '',
            body_html TEXT NOT NULL DEFAULT '',
            charset_declared TEXT NOT NULL DEFAULT '',
            charset_used TEXT NOT NULL DEFAULT '',
            auto TEXT NOT NULL DEFAULT '' CHECK (auto IN ('', 'auto-reply', 'bounce')),
            thread_rule TEXT NOT NULL DEFAULT '',
            parse_error TEXT,
            defects TEXT NOT NULL DEFAULT '[]'
        );
        CREATE INDEX message_message_id ON message (message_id);
        CREATE INDEX message_ticket ON message (ticket_id, received_at);
        CREATE INDEX message_received ON message (received_at);

        CREATE TABLE raw_message (
            message_id INTEGER PRIMARY KEY REFERENCES message (id) ON DELETE CASCADE,
            raw BLOB NOT NULL
        );

        CREATE TABLE message_location (
            source TEXT NOT NULL,
            key TEXT NOT NULL,
            message_id INTEGER NOT NULL REFERENCES message (id) ON DELETE CASCADE,
            PRIMARY KEY (source, key)
        ) WITHOUT ROWID;

        CREATE TABLE attachment (
            id INTEGER PRIMARY KEY,
            message_id INTEGER NOT NULL REFERENCES message (id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            display_name TEXT NOT NULL,
            safe_name TEXT NOT NULL,
            content_type TEXT NOT NULL,
            size INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            data BLOB NOT NULL
        );
        CREATE INDEX attachment_message ON attachment (message_id);

        CREATE TABLE ticket_event (
            id INTEGER PRIMARY KEY,
            ticket_id INTEGER NOT NULL REFERENCES ticket (id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{{}}'
        );
        CREATE INDEX ticket_event_ticket ON ticket_event (ticket_id, id);

        CREATE TABLE source_state (
            name TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            function TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'starting',
            uidvalidity INTEGER,
            last_uid INTEGER NOT NULL DEFAULT 0,
            last_success TEXT,
            last_error TEXT,
            last_error_at TEXT,
            server_count INTEGER,
            stored_count INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL
        );

        CREATE TABLE message_failure (
            source TEXT NOT NULL,
            key TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 1,
            error TEXT NOT NULL,
            first_at TEXT NOT NULL,
            last_at TEXT NOT NULL,
            skipped INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (source, key)
        ) WITHOUT ROWID;
        """
    )
    # The index covers what an agent searches for; triggers keep it in step with `message`.
    db["message"].enable_fts(
        ["subject", "from_name", "from_addr", "body_text"],
        fts_version="FTS5",
        create_triggers=True,
        tokenize="unicode61 remove_diacritics 2",
    )


def _v2_windows(db: sqlite_utils.Database) -> None:
    """Maintenance windows, their audit trail and notice ledger, and tickets linked to them."""
    script = f"""
        CREATE TABLE window (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN {_in(WINDOW_KINDS)}),
            update_type TEXT NOT NULL CHECK (update_type IN {_in(UPDATE_TYPES)}),
            description TEXT NOT NULL DEFAULT '',
            start_at TEXT NOT NULL,
            end_at TEXT NOT NULL,
            zone TEXT NOT NULL,
            features TEXT NOT NULL DEFAULT '[]',
            release_notes TEXT NOT NULL DEFAULT '',
            nature TEXT NOT NULL DEFAULT '',
            expected_minutes INTEGER,
            announced_at TEXT,
            forced_reason TEXT,
            cancelled_at TEXT,
            completed_at TEXT,
            -- When it really ended (or will): completing early moves the verification period.
            ends_at TEXT GENERATED ALWAYS AS (coalesce(completed_at, end_at)) VIRTUAL,
            rule TEXT,
            occurrence TEXT,
            flags TEXT NOT NULL DEFAULT '[]',
            report TEXT,
            report_written_at TEXT,
            report_by TEXT,
            revision INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            CHECK (end_at > start_at),
            UNIQUE (rule, occurrence)
        );
        CREATE INDEX window_start ON window (start_at);
        CREATE INDEX window_ends ON window (ends_at);

        CREATE TABLE window_event (
            id INTEGER PRIMARY KEY,
            window_id INTEGER NOT NULL REFERENCES window (id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            revision INTEGER NOT NULL,
            action TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{{}}'
        );
        CREATE INDEX window_event_window ON window_event (window_id, id);

        {_notice_table("notice", _V2_NOTICE_KINDS)};

        -- One row: the maintenance settings the daemon classifies mail with, as last synced
        -- from config.toml, so every process judges mail alike.
        CREATE TABLE maintenance_setting (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            data TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );

        ALTER TABLE ticket ADD COLUMN window_id INTEGER REFERENCES window (id);
        ALTER TABLE ticket ADD COLUMN during_window_id INTEGER REFERENCES window (id);
        CREATE INDEX ticket_window ON ticket (window_id);
        CREATE INDEX ticket_during_window ON ticket (during_window_id);
        CREATE INDEX ticket_kind ON ticket (kind, status);
        CREATE INDEX ticket_created ON ticket (created_at)
        """
    # Statement by statement: `executescript` would COMMIT first and let another process migrate
    # at the same time; these statements hold no ';' of their own.
    for statement in script.split(";"):
        db.execute(statement)


def _v3_mail_out(db: sqlite_utils.Database) -> None:
    """Mail out: the outbox, notice subscribers, outgoing messages in the thread, the first
    response time, and two more notice kinds (a change of schedule, the post-maintenance report).
    """
    script = f"""
        {_notice_table("notice_v3", NOTICE_KINDS)};
        INSERT INTO notice_v3 SELECT * FROM notice;
        DROP TABLE notice;
        ALTER TABLE notice_v3 RENAME TO notice;

        -- Every mail we send, written in the transaction of the action that causes it and sent
        -- by the daemon. `dedupe` names what the mail is, so the same cause never queues twice.
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN {_in(OUTBOX_KINDS)}),
            dedupe TEXT NOT NULL UNIQUE,
            message_id TEXT NOT NULL UNIQUE,
            ticket_id INTEGER REFERENCES ticket (id) ON DELETE SET NULL,
            notice_id INTEGER REFERENCES notice (id) ON DELETE SET NULL,
            window_id INTEGER REFERENCES window (id) ON DELETE SET NULL,
            mail_from TEXT NOT NULL,
            rcpt TEXT NOT NULL,
            cc TEXT NOT NULL DEFAULT '[]',
            subject TEXT NOT NULL DEFAULT '',
            raw BLOB NOT NULL,
            status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN {_in(OUTBOX_STATUSES)}),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            last_error TEXT,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            sent_at TEXT
        );
        CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
        CREATE INDEX outbox_rcpt ON outbox (rcpt, kind, created_at);
        CREATE INDEX outbox_ticket ON outbox (ticket_id);
        CREATE INDEX outbox_window ON outbox (window_id, status);
        CREATE INDEX outbox_notice ON outbox (notice_id);

        CREATE TABLE subscriber (
            addr TEXT PRIMARY KEY,
            name TEXT NOT NULL DEFAULT '',
            added_at TEXT NOT NULL,
            added_by TEXT NOT NULL
        );

        ALTER TABLE message ADD COLUMN direction TEXT NOT NULL DEFAULT 'in'
            CHECK (direction IN ('in', 'out'));
        ALTER TABLE message ADD COLUMN outbox_id INTEGER REFERENCES outbox (id);
        ALTER TABLE ticket ADD COLUMN first_response_at TEXT
        """
    for statement in script.split(";"):
        db.execute(statement)


def _v4_mail_reading(db: sqlite_utils.Database) -> None:
    """Reading mail as a mail client does: the precise kind of a message (a person, a person
    through a list, an auto-reply, a bounce, a delay notice, a read receipt), Reply-To, the
    mails forwarded inside it, when a read receipt came for it, the copy key that makes one
    mail fetched from several mailboxes one message, and the parser version that read it (so
    `desk-ingest --reparse` knows what to read again). A ticket opened by a person's mail that
    came through a mailing list is marked `via_list`, for the list to show without a join. An
    attachment marked `inline` is shown in the thread after its message's body (`db.mailin.inline`).

    `auto` stays the coarse class every query filters on ('' = a person wrote it); `kind` is
    the precise one. A table rebuild to widen `auto`'s CHECK would have to rebuild the
    full-text index and its triggers over every message.
    """
    script = f"""
        ALTER TABLE message ADD COLUMN kind TEXT NOT NULL DEFAULT ''
            CHECK (kind IN {_in(MESSAGE_KINDS)});
        UPDATE message SET kind = auto;
        ALTER TABLE message ADD COLUMN reply_to TEXT NOT NULL DEFAULT '';
        ALTER TABLE message ADD COLUMN forwarded TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE message ADD COLUMN read_at TEXT;
        ALTER TABLE message ADD COLUMN copy_key TEXT;
        ALTER TABLE message ADD COLUMN parser_version INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE ticket ADD COLUMN via_list INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE attachment ADD COLUMN inline INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX message_copy_key ON message (copy_key) WHERE copy_key IS NOT NULL;
        CREATE INDEX message_parser_version ON message (parser_version)
        """
    for statement in script.split(";"):
        db.execute(statement)


def _v5_recurring_sync(db: sqlite_utils.Database) -> None:
    """Recurring rules that leave the config: a window whose rule no longer makes it says so
    (`rule_gone`, the sentence shown) until an operator cancels it or keeps it (`detached_at`:
    it no longer follows its rule); and the config the rules were last synced from."""
    script = """
        ALTER TABLE window ADD COLUMN rule_gone TEXT;
        ALTER TABLE window ADD COLUMN detached_at TEXT;
        CREATE TABLE recurring_sync (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            config_path TEXT NOT NULL,
            digest TEXT NOT NULL,
            synced_at TEXT NOT NULL,
            synced_by TEXT NOT NULL
        )
        """
    for statement in script.split(";"):
        db.execute(statement)


def _v6_unsubscribe(db: sqlite_utils.Database) -> None:
    """Unsubscribing (RFC 2369 List-Unsubscribe, RFC 8058 one-click): one row per address that
    was mailed a notice or left, with its unguessable token for the unsubscribe links. The row
    outlives the subscription, so a repeated request is still recognised (and confirmed only
    once), and `desk subscribers list` shows who left, when, and how ('mail', 'web', 'desk')."""
    db.execute(
        """
        CREATE TABLE unsubscribe (
            addr TEXT PRIMARY KEY,
            token TEXT NOT NULL UNIQUE,
            left_at TEXT,
            left_via TEXT CHECK (left_via IN ('mail', 'web', 'desk')),
            left_by TEXT
        )
        """
    )


# The stages of a progress update, as status-page tools name them.
UPDATE_STATUSES = ("investigating", "identified", "monitoring", "resolved")


def _v7_window_updates(db: sqlite_utils.Database) -> None:
    """Progress updates on a window (investigating → identified → monitoring → resolved),
    published and mailed as written. Emergencies no longer complete by the clock: one that
    ran past its expected end before this version was completed then, as its users were told,
    so it is marked completed at that end rather than shown overrunning."""
    script = f"""
        CREATE TABLE window_update (
            id INTEGER PRIMARY KEY,
            window_id INTEGER NOT NULL REFERENCES window (id) ON DELETE CASCADE,
            status TEXT NOT NULL CHECK (status IN {_in(UPDATE_STATUSES)}),
            body TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL
        );
        CREATE INDEX window_update_window ON window_update (window_id, created_at)
        """
    for statement in script.split(";"):
        db.execute(statement)
    db.execute(
        "UPDATE window SET completed_at = end_at WHERE kind = 'emergency' "
        "AND completed_at IS NULL AND cancelled_at IS NULL AND end_at <= ?",
        [clock.now_iso()],
    )


# The scripts written without spaces between words, which only the trigram index finds words
# of (`db.tickets.search` asks it for words with such a character: `UNSEGMENTED`): Thai
# and Lao, Myanmar, Khmer, kana, the CJK ideographs and their extensions, half-width katakana.
_UNSEGMENTED_RANGES = (
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
_UNSEGMENTED_GLOB = f"*[{_UNSEGMENTED_RANGES}]*"
# The same test in Python, for the store to pick a batch's messages for the trigram index
# without the GLOB, which steps through its character class at every character of the text
# (1.6 CPU-s per 10,000 messages of the bench's Latin mail, issue 16). SQLite reads text as a C
# string, so the GLOB sees it up to its first NUL: `unsegmented` does the same.
UNSEGMENTED = re.compile(f"[{_UNSEGMENTED_RANGES}]")


def unsegmented(*texts: str) -> bool:
    """Whether any of `texts` has a character of those scripts before its first NUL: exactly
    what `_UNSEGMENTED_GLOB` matches, the condition for a row of the trigram index."""
    return any(UNSEGMENTED.search(text.partition("\x00")[0]) for text in texts)


def _unsegmented(row: str) -> str:
    """SQL: whether `row` (new, old, message) has text of those scripts in a trigram column."""
    return " OR ".join(
        f"{row}.{column} GLOB '{_UNSEGMENTED_GLOB}'"
        for column in ("subject", "from_name", "body_text")
    )


def _v8_search_trigram(db: sqlite_utils.Database) -> None:
    """A second search index, of trigrams (SQLite's FTS5 `trigram` tokenizer), over the subject,
    the sender's name and the body: Chinese, Japanese and Thai write words without spaces, so
    `unicode61` keeps a whole run of text as one token and a word inside a sentence is never
    found.

    It holds only messages with text in such a script. Search asks it only for words that
    contain such characters (`db.tickets.search`), and a trigram phrase of those characters
    matches only a column that contains them: a message without any can never be its answer,
    yet tokenising it cost half of storing it (issue 16: 52 % of `store_batch`'s CPU on the
    bench's Latin mail). The triggers test the same condition for the old row as for the new,
    so the index is told to forget exactly what it was given (an external-content FTS5 table
    trusts its deletes). The backfill reads every message once."""
    db.execute(
        "CREATE VIRTUAL TABLE message_trigram USING fts5("
        "subject, from_name, body_text, tokenize='trigram', content='message', content_rowid='id')"
    )
    columns = "subject, from_name, body_text"
    db.execute(
        f"CREATE TRIGGER message_trigram_ai AFTER INSERT ON message WHEN {_unsegmented('new')} "
        f"BEGIN INSERT INTO message_trigram (rowid, {columns}) "
        "VALUES (new.id, new.subject, new.from_name, new.body_text); END"
    )
    db.execute(
        f"CREATE TRIGGER message_trigram_ad AFTER DELETE ON message WHEN {_unsegmented('old')} "
        f"BEGIN INSERT INTO message_trigram (message_trigram, rowid, {columns}) "
        "VALUES ('delete', old.id, old.subject, old.from_name, old.body_text); END"
    )
    # One trigger, two statements in this order: the old row's trigrams go before the new
    # row's come (two triggers would fire in an order SQLite does not promise).
    db.execute(
        f"CREATE TRIGGER message_trigram_au AFTER UPDATE OF {columns} ON message BEGIN "
        f"INSERT INTO message_trigram (message_trigram, rowid, {columns}) "
        "SELECT 'delete', old.id, old.subject, old.from_name, old.body_text "
        f"WHERE {_unsegmented('old')}; "
        f"INSERT INTO message_trigram (rowid, {columns}) "
        f"SELECT new.id, new.subject, new.from_name, new.body_text WHERE {_unsegmented('new')}; "
        "END"
    )
    db.execute(
        f"INSERT INTO message_trigram (rowid, {columns}) SELECT id, {columns} FROM message "
        f"WHERE {_unsegmented('message')}"
    )


def _v9_merge(db: sqlite_utils.Database) -> None:
    """Merging and splitting tickets, and the customer's other tickets.

    A merged ticket points at the one it was merged into (`merged_into`) and is closed; status
    keeps its CHECK, which SQLite can only widen by rebuilding the ticket table, whose cascading
    foreign keys would empty the audit trail on the way. `ticket_merge` records what each merge
    moved (JSON: message, note and outbox ids; the participants, functions and tags it added to
    the target; the source's status before), so it can be undone. The requester index serves
    the ticket screen's list of the customer's other tickets."""
    script = """
        ALTER TABLE ticket ADD COLUMN merged_into INTEGER REFERENCES ticket (id);
        CREATE INDEX ticket_merged_into ON ticket (merged_into) WHERE merged_into IS NOT NULL;
        CREATE INDEX ticket_requester ON ticket (requester_addr, last_message_at);
        CREATE TABLE ticket_merge (
            id INTEGER PRIMARY KEY,
            source_id INTEGER NOT NULL REFERENCES ticket (id),
            target_id INTEGER NOT NULL REFERENCES ticket (id),
            moved TEXT NOT NULL,
            merged_at TEXT NOT NULL,
            merged_by TEXT NOT NULL,
            undone_at TEXT,
            undone_by TEXT
        );
        CREATE INDEX ticket_merge_source ON ticket_merge (source_id);
        CREATE INDEX ticket_merge_target ON ticket_merge (target_id)
        """
    for statement in script.split(";"):
        db.execute(statement)


def _v10_discrepancy_reason(db: sqlite_utils.Database) -> None:
    """Why the rule made a ticket a discrepancy report, for the agent to see and overrule:
    JSON {"phrase", "language", "where", "message"} (`db.maintenance.discrepancy`); NULL when
    an agent decided or the ticket is no report."""
    db.execute("ALTER TABLE ticket ADD COLUMN kind_reason TEXT")


def _v11_sla(db: sqlite_utils.Database) -> None:
    """Service-level targets (`db.core.sla`): the resolution due time beside the first
    response's, when the ticket was resolved or closed, the resolution clock's pauses while
    pending, and the policy the due times were computed with. Existing tickets get due times
    under the default policy; the first `sla.sync()` with the configured one recomputes them."""
    script = """
        ALTER TABLE ticket ADD COLUMN resolution_due TEXT;
        ALTER TABLE ticket ADD COLUMN resolved_at TEXT;
        ALTER TABLE ticket ADD COLUMN sla_paused_at TEXT;
        ALTER TABLE ticket ADD COLUMN sla_paused_minutes INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE sla_setting (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            data TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    for statement in script.split(";"):
        db.execute(statement)
    sla.backfill(db)


def _v12_priority_sort(db: sqlite_utils.Database) -> None:
    """An index in the list's priority order (urgent first, then newest activity), so that
    sorting by priority reads the first page from it rather than sorting every ticket (233 ms
    to 5 ms at 100,000 tickets). SQLite uses an expression index only for the same expression:
    `db.tickets.search.SORTS["priority"]` writes this CASE word for word."""
    db.execute(
        "CREATE INDEX ticket_priority_sort ON ticket ("
        "(CASE priority WHEN 'urgent' THEN 3 WHEN 'high' THEN 2 WHEN 'normal' THEN 1 ELSE 0 END), "
        "last_message_at, id)"
    )


def _v13_first_response_pause(db: sqlite_utils.Database) -> None:
    """Business minutes a ticket spent settled before any reply, added to its first response's
    due time when it is reopened (`db.core.sla.status_changed`). Existing tickets start at 0."""
    db.execute("ALTER TABLE ticket ADD COLUMN sla_first_paused_minutes INTEGER NOT NULL DEFAULT 0")


# The columns of each search index, in the order the indexes were made with.
FTS_COLUMNS = ("subject", "from_name", "from_addr", "body_text")
TRIGRAM_COLUMNS = ("subject", "from_name", "body_text")


def _v14_search_per_batch(db: sqlite_utils.Database) -> None:
    """The search indexes are filled a batch at a time by the store (`db.mailin.search_index`)
    instead of by a trigger per inserted message, and follow an update only of the columns they
    hold.

    FTS5 writes what it has gathered to disk at every statement that touches it (it cannot
    take back part of it at a savepoint), so a trigger per `INSERT INTO message` made one
    on-disk segment per message and kept merging them: 1.2 CPU-s per 10,000 messages, against
    0.4 for one `INSERT ... SELECT` per batch of 200 (issue 16). The update trigger of the word
    index fired on every update of a message (a merge moving its ticket, a read receipt, a
    second copy's functions) and tokenised the whole message out and in again. Deletes keep
    their triggers. Nothing to fill: what is indexed stays exactly as it was."""
    columns = ", ".join(f'"{c}"' for c in FTS_COLUMNS)
    old = ", ".join(f'old."{c}"' for c in FTS_COLUMNS)
    new = ", ".join(f'new."{c}"' for c in FTS_COLUMNS)
    for trigger in ("message_ai", "message_au", "message_trigram_ai"):
        db.execute(f'DROP TRIGGER "{trigger}"')
    db.execute(
        f'CREATE TRIGGER "message_au" AFTER UPDATE OF {columns} ON "message" BEGIN '
        f'INSERT INTO "message_fts" ("message_fts", rowid, {columns}) '
        f"VALUES ('delete', old.rowid, {old}); "
        f'INSERT INTO "message_fts" (rowid, {columns}) VALUES (new.rowid, {new}); END'
    )


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _v1_core, _v2_windows, _v3_mail_out, _v4_mail_reading, _v5_recurring_sync, _v6_unsubscribe,
    _v7_window_updates, _v8_search_trigram, _v9_merge, _v10_discrepancy_reason, _v11_sla,
    _v12_priority_sort, _v13_first_response_pause, _v14_search_per_batch,
]  # fmt: skip


def version(db: sqlite_utils.Database) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


def migrate(db: sqlite_utils.Database) -> int:
    """Bring the schema to the newest version; return it."""
    if version(db) == len(MIGRATIONS):
        return len(MIGRATIONS)
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        current = version(db)
        if current > len(MIGRATIONS):
            raise RuntimeError(
                f"the database is at schema version {current}, newer than this program "
                f"({len(MIGRATIONS)}); upgrade valuit-desk"
            )
        for number, step in enumerate(MIGRATIONS[current:], start=current + 1):
            step(db)
            db.conn.execute(f"PRAGMA user_version = {number}")
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")
    return len(MIGRATIONS)
