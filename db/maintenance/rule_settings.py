"""The `[maintenance]` settings mail is classified with, saved in the database for every process.

The daemon classifies mail inside the store's transaction, where no configuration is at hand;
it reads the settings saved here instead. `recurrence.sync()` saves them when the daemon starts
and before each `desk window` command, so they are those of the config file last used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import sqlite_utils

from db.core import clock
from db.core.config import Maintenance


@dataclass(frozen=True)
class Settings:
    """What classifying mail needs: the verification period and the vocabulary's patterns."""

    verification_hours: float = 72.0
    vocabulary: tuple[str, ...] | None = None  # None: the built-in vocabulary
    vocabulary_extra: tuple[str, ...] = ()  # for the language the mail seems to be in
    vocabulary_by_language: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (code, patterns)


def settings_of(maintenance: Maintenance) -> Settings:
    return Settings(
        maintenance.verification_hours,
        maintenance.vocabulary,
        maintenance.vocabulary_extra,
        maintenance.vocabulary_by_language,
    )


def save(db: sqlite_utils.Database, settings: Settings) -> None:
    """Store `settings` (inside the caller's transaction); a no-op when they are unchanged."""
    data = json.dumps(
        {
            "verification_hours": settings.verification_hours,
            "vocabulary": settings.vocabulary,
            "vocabulary_extra": settings.vocabulary_extra,
            "vocabulary_by_language": settings.vocabulary_by_language,
        }
    )
    db.execute(
        "INSERT INTO maintenance_setting (id, data, updated_at) VALUES (1, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at "
        "WHERE data != excluded.data",
        [data, clock.now_iso()],
    )


def load(db: sqlite_utils.Database) -> Settings:
    """The saved settings, or the defaults when no config has been synced yet."""
    row = db.execute("SELECT data FROM maintenance_setting WHERE id = 1").fetchone()
    if row is None:
        return Settings()
    data = json.loads(row[0])
    vocabulary = data.get("vocabulary")
    return Settings(
        float(data.get("verification_hours", 72.0)),
        tuple(vocabulary) if vocabulary is not None else None,
        tuple(data.get("vocabulary_extra", ())),
        tuple((code, tuple(p)) for code, p in data.get("vocabulary_by_language", ())),
    )
