"""Error paths with real parts: a message the database refuses (a real SQLite trigger) is
tried again, then skipped, while the mail around it is stored once."""

from __future__ import annotations

import logging

from db.core import config as config_module
from db.core.connect import open_db
from db.mailin import sources
from ingest import daemon
from tests.conftest import drop, mail, write_config_file

REFUSE = (
    "CREATE TRIGGER refuse_poison BEFORE INSERT ON message WHEN NEW.subject = 'Poison' "
    "BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END"
)


def test_a_message_the_store_refuses_is_skipped_after_three_attempts_and_the_rest_stored(
    tmp_path, caplog
):
    config = config_module.load(write_config_file(tmp_path, ("technical",)))
    db = open_db(config.database)
    db.execute(REFUSE)
    for subject in ("Before", "Poison", "After"):
        drop(tmp_path, "technical", mail(subject=subject))
    caplog.set_level(logging.INFO)

    seen = []
    for _run in range(sources.GIVE_UP_AFTER + 1):  # the last run must not try it again
        daemon.run(config, once=True)
        seen.append([(f["attempts"], f["skipped"]) for f in sources.failures(db)])

    assert [[(1, 0)], [(2, 0)], [(3, 1)], [(3, 1)]] == seen
    assert ["After", "Before"] == [
        s for (s,) in db.execute("SELECT subject FROM message ORDER BY 1")
    ]
    assert "refused by the test trigger" in sources.failures(db)[0]["error"]
    assert "could not be stored (refused by the test trigger); skipped from now on" in caplog.text
