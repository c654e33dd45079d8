"""A source that marks what it read once it is stored (a drop folder's file moved to `cur/`,
IMAP's `after_ingest` seen or move:) commits to disk first: a power loss then cannot take back
a commit whose mail the source no longer offers."""

from __future__ import annotations

import dataclasses

import pytest

from ingest.pipeline import Pipeline

FULL, NORMAL = 2, 1  # PRAGMA synchronous's answers


@pytest.mark.parametrize(
    ("kind", "after_ingest", "expected"),
    [
        ("maildir", "none", FULL),
        ("imap", "seen", FULL),
        ("imap", "move:Archive", FULL),
        ("imap", "none", NORMAL),  # the server keeps the mail: a lost commit is read again
    ],
)
def test_a_source_that_marks_its_mail_commits_to_disk_first(cfg, db, kind, after_ingest, expected):
    source = dataclasses.replace(cfg.sources[0], kind=kind, after_ingest=after_ingest)
    Pipeline(db, cfg, source, None)
    assert expected == db.execute("PRAGMA synchronous").fetchone()[0]
