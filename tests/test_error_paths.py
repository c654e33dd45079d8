"""Error paths with real parts: a message the database refuses (a real SQLite trigger) is
tried again, then skipped, while the mail around it is stored once; the sender's one sentence
for a host that does not resolve, a server that never answers, a refused recipient and a
refused sender (aiosmtpd answering 5xx at MAIL FROM)."""

from __future__ import annotations

import logging
import socket

from db.core import config as config_module
from db.core.connect import open_db
from db.mailin import sources
from db.tickets import replies
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


# ------------------------------------------------------------------ the sender's explanations


def check_smtp(tmp_path, capsys, smtp_toml: str, to: str = "ops@example.com") -> tuple[int, str]:
    """`desk-ingest --check-smtp TO` on a configuration with `smtp_toml`: (status, stderr)."""
    path = write_config_file(tmp_path, ("technical",), extra=smtp_toml)
    code = daemon.main(["--config", str(path), "--check-smtp", to])
    return code, capsys.readouterr().err.strip()


def test_an_unresolvable_smtp_host_is_named(tmp_path, capsys):
    code, err = check_smtp(tmp_path, capsys, '[smtp]\nhost = "nowhere.invalid"\nport = 25\n')
    assert 1 == code
    assert err.startswith("desk-ingest: cannot resolve nowhere.invalid: "), err


def test_an_smtp_server_that_never_greets_is_a_timeout_with_the_seconds_waited(tmp_path, capsys):
    with socket.socket() as silent:  # listens, so the connection opens, but never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        toml = f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\ntimeout = 0.5\n'
        code, err = check_smtp(tmp_path, capsys, toml)
    assert (1, f"desk-ingest: 127.0.0.1:{port} did not answer within 0.5 s") == (code, err)


def test_a_refused_recipient_is_named_with_the_servers_answer(tmp_path, capsys, smtp_server):
    smtp_server.handler.refuse_rcpt = {"nobody@example.com"}
    code, err = check_smtp(tmp_path, capsys, smtp_server.toml(), "nobody@example.com")
    said = "nobody@example.com: 550 5.1.1 No such user (test server)"
    assert (1, f"desk-ingest: 127.0.0.1:{smtp_server.port} refused the recipient ({said})") == (
        code,
        err,
    )


def test_a_5xx_at_mail_from_is_explained_and_fails_the_mail_for_good(tmp_path, capsys, smtp_server):
    smtp_server.handler.refuse_sender = True
    code, err = check_smtp(tmp_path, capsys, smtp_server.toml())
    answer = "553 5.7.1 Sender address rejected (test server)"
    assert (1, f"desk-ingest: 127.0.0.1:{smtp_server.port} said {answer}") == (code, err)

    config = config_module.load(tmp_path / "config.toml")
    drop(tmp_path, "technical", mail())
    daemon.run(config, once=True)
    db = open_db(config.database)
    outbox_id = replies.send(db, 1, "Answer", "alice", config.mail)
    daemon.run(config, once=True)
    assert ("failed", f"refused by the server: {answer}") == db.execute(
        "SELECT status, last_error FROM outbox WHERE id = ?", [outbox_id]
    ).fetchone()
    assert [] == smtp_server.handler.delivered
