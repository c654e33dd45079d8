"""IMAP sources when the server does the unusual, against a real, private Dovecot: a folder whose
UIDs restart at 1, a message the server cannot hand out, mail committed but not yet marked,
servers without IDLE or MOVE, another client's EXPUNGE and the server's BYE."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ingest import daemon
from tests.conftest import mail
from tests.dovecot import Dovecot
from tests.test_imap import (  # noqa: F401 - quick_backoff: a fixture used here too
    USER,
    Desk,
    configure,
    fill,
    imap_source,
    passwords,
    quick_backoff,
    running,
    wait_for,
)

SOURCE = f"{USER}-imap"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, dovecot_server: Dovecot) -> Dovecot:
    """The server, with its passwords where the sources' `password_env` names them."""
    for key, value in passwords(dovecot_server).items():
        monkeypatch.setenv(key, value)
    return dovecot_server


def subjects(desk: Desk) -> list[str]:
    return [s for (s,) in desk.db.execute("SELECT subject FROM message ORDER BY subject")]


def test_a_folder_whose_uids_restart_at_1_is_read_again_from_the_start(
    env: Dovecot, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """RFC 3501 2.3.1.1: after a UIDVALIDITY change no old UID means anything, and the new ones
    may be lower than the checkpoint; mail under it must not be skipped."""
    for n in (1, 2, 3):
        env.append(USER, mail(subject=f"Old {n}"), folder="Support")
    cfg = configure(tmp_path, imap_source(env, folder="Support"))
    desk = Desk(cfg)
    daemon.run(cfg, once=True)
    assert 3 == desk.state(SOURCE)["last_uid"]

    new = env.reset_folder(USER, "Support")
    for n in (1, 2):
        assert n == env.append(USER, mail(subject=f"New {n}"), folder="Support")
    caplog.set_level(logging.INFO)
    daemon.run(cfg, once=True)

    assert ["New 1", "New 2", "Old 1", "Old 2", "Old 3"] == subjects(desk)
    assert (new, 2) == (desk.state(SOURCE)["uidvalidity"], desk.state(SOURCE)["last_uid"])
    assert "UIDVALIDITY of Support changed" in caplog.text


@pytest.mark.parametrize("on_failure", ["disconnect-immediately", "no-after"])
def test_a_message_the_server_cannot_hand_out_is_skipped_after_three_tries_and_the_rest_stored(
    env: Dovecot, tmp_path: Path, caplog: pytest.LogCaptureFixture, on_failure: str
) -> None:
    """Dovecot's `imap_fetch_failure`: by default a message it cannot read ends the session
    (the batch is then fetched one by one after reconnecting); with `no-after` it answers NO
    once, and ends the session when the same mail is asked for again."""
    env.reconfigure(imap_fetch_failure=on_failure)
    for subject in ("Before", "Unreadable", "After"):
        env.append(USER, mail(subject=subject))
    [bad] = [p for p in Path(env.mail_root, USER).glob("*/*") if b"Unreadable" in p.read_bytes()]
    bad.chmod(0)  # Dovecot's mail process (never root) can no longer open it
    cfg = configure(tmp_path, imap_source(env))
    desk = Desk(cfg)
    caplog.set_level(logging.INFO)
    attempts = []
    for _run in range(4):  # each --once run tries up to three connections
        daemon.run(cfg, once=True)  # False when it gave up on the source: the next run goes on
        attempts.append(desk.one("SELECT max(attempts) FROM message_failure"))

    key = f"{desk.state(SOURCE)['uidvalidity']}/2"
    assert [(key, 3, 1)] == [
        (f["key"], f["attempts"], f["skipped"])
        for f in desk.db.query("SELECT * FROM message_failure")
    ]
    assert attempts[-1] == attempts[-2]  # skipped: not tried again
    assert ["After", "Before"] == subjects(desk)
    if on_failure == "no-after":  # a NO first; a second FETCH of that mail ends the session
        assert "fetching 3 message(s) failed" in caplog.text and "one by one" in caplog.text


def test_mail_committed_but_not_yet_marked_is_marked_at_the_next_start(
    env: Dovecot, tmp_path: Path
) -> None:
    """As after a crash between a batch's commit and its STORE: `settle` marks what the
    checkpoint covers, and only that."""
    fill(env, 5)
    daemon.run(configure(tmp_path, imap_source(env)), once=True)  # committed, flags untouched
    env.append(USER, mail(subject="Arrived meanwhile"))
    assert [()] * 6 == list(env.flags(USER).values())

    cfg = configure(tmp_path, imap_source(env, after_ingest="seen"))
    daemon.run(cfg, once=True)

    assert 6 == Desk(cfg).messages()
    assert [(b"\\Seen",)] * 6 == list(env.flags(USER).values())


def test_a_server_without_idle_is_polled(env: Dovecot, tmp_path: Path) -> None:
    env.drop_capabilities("IDLE")
    cfg = configure(tmp_path, imap_source(env, poll_seconds=0.2))
    desk = Desk(cfg)
    with running(cfg):
        wait_for(lambda: desk.state(SOURCE).get("state") == "watching", what="polling")
        env.append(USER, mail(subject="While polling"))
        wait_for(lambda: desk.messages() == 1, what="the polled message")
    assert ["While polling"] == subjects(desk)


@pytest.mark.parametrize("missing", [("MOVE",), ("MOVE", "UIDPLUS")])
def test_a_server_without_move_gets_copy_delete_and_expunge(
    env: Dovecot, tmp_path: Path, missing: tuple[str, ...]
) -> None:
    env.drop_capabilities(*missing)
    fill(env, 4)
    cfg = configure(tmp_path, imap_source(env, after_ingest="move:Done"))
    daemon.run(cfg, once=True)
    assert (4, 4, {}) == (Desk(cfg).messages(), len(env.flags(USER, "Done")), env.flags(USER))


def test_another_clients_expunge_and_the_servers_bye_lose_no_mail(
    env: Dovecot, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fill(env, 3)
    cfg = configure(tmp_path, imap_source(env))
    desk = Desk(cfg)
    caplog.set_level(logging.INFO)
    with running(cfg):
        wait_for(lambda: desk.state(SOURCE).get("state") == "idle", what="idle")
        with env.session(USER) as other:
            other.select_folder("INBOX")
            other.delete_messages([1, 2])
            other.expunge()
        wait_for(lambda: desk.state(SOURCE).get("server_count") == 1, what="the EXPUNGE")
        env.restart()  # a graceful shutdown: "* BYE Server shutting down."
        env.append(USER, mail(subject="After the restart"))
        wait_for(lambda: desk.messages() == 4, 30, "the message after the restart")
    assert 4 == desk.distinct()
    assert "the server said goodbye" in caplog.text or "lost" in caplog.text
