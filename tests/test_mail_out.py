"""Mail out through a real SMTP server (aiosmtpd): replies arrive with the headers that thread
the answer back, and the outbox loses nothing and sends nothing twice, through a server that is
down, defers, refuses, and a `kill -9` of the daemon with a mail in hand."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from db.core import clock
from db.core import config as config_module
from db.core.connect import open_db
from db.core.errors import DeskError
from db.mailout import outbox
from db.tickets import replies
from ingest import daemon, sender
from tests.conftest import drop, mail, write_config_file
from tests.smtp import SmtpServer

ZONE = ZoneInfo("UTC")


def make_config(tmp_path: Path, server: SmtpServer, **smtp: object) -> config_module.Config:
    path = write_config_file(tmp_path, extra=server.toml(**smtp))
    return config_module.load(path)


def customer_ticket(tmp_path: Path, config: config_module.Config, **kw: object) -> int:
    drop(tmp_path, "technical", mail(**kw))
    daemon.run(config, once=True)
    db = open_db(config.database)
    return db.execute("SELECT max(id) FROM ticket").fetchone()[0]


@contextmanager
def sending(config: config_module.Config) -> Iterator[None]:
    """The daemon's sender loop, running in a thread while the block runs."""
    stop = threading.Event()
    loop = threading.Thread(
        target=sender.run,
        args=(open_db(config.database), config.mail.smtp, stop),
        kwargs={"once": False, "lock": sender.lock_file(config.database)},
    )
    loop.start()
    try:
        yield
    finally:
        stop.set()
        loop.join()


def answered_ticket(tmp_path: Path, config: config_module.Config) -> tuple[Any, int, int]:
    """A customer's ticket and an agent's reply to it, queued: (database, ticket, mail)."""
    ticket = customer_ticket(tmp_path, config)
    db = open_db(config.database)
    return db, ticket, replies.send(db, ticket, "Answer", "alice", config.mail)


def status(db, outbox_id: int) -> dict:
    return db.execute(
        "SELECT status, attempts, last_error FROM outbox WHERE id = ?", [outbox_id]
    ).fetchone()


def test_a_reply_arrives_from_the_function_with_threading_headers_and_the_answer_threads_back(
    tmp_path, smtp_server
):
    config = make_config(tmp_path, smtp_server)
    question = "<question-1@example.com>"
    ticket = customer_ticket(
        tmp_path,
        config,
        subject="Cannot log in",
        message_id=question,
        sender="Ann <ann@example.com>",
    )
    db = open_db(config.database)
    body = replies.draft(db, ticket, "alice", config.mail, ZONE) + "Please reset it here."
    outbox_id = replies.send(db, ticket, body, "alice", config.mail)

    daemon.run(config, once=True)

    [got] = smtp_server.handler.wait_for(1)
    msg = got.message
    assert "technical@valuit.com" == parseaddr(msg["From"])[1]
    assert "technical@valuit.com" == parseaddr(msg["Reply-To"])[1]
    assert ["ann@example.com"] == got.rcpt
    assert f"Re: Cannot log in [#{ticket}]" == msg["Subject"]
    assert question == msg["In-Reply-To"]
    assert question in msg["References"]
    assert "> Something is wrong." in msg.get_content()
    assert "Auto-Submitted" not in msg  # a person wrote it
    assert ("sent", 1, None) == status(db, outbox_id)
    row = db.execute(
        "SELECT first_response_at, status FROM ticket WHERE id = ?", [ticket]
    ).fetchone()
    assert row[0] is not None and "open" == row[1]

    # Ann answers with her client's Reply: In-Reply-To our Message-ID, no token needed.
    drop(tmp_path, "technical", mail(
        subject="Re: Cannot log in", sender="Ann <ann@example.com>",
        headers={"In-Reply-To": msg["Message-ID"]},
    ))  # fmt: skip
    # Her colleague's client drops the headers but keeps the subject token.
    drop(tmp_path, "technical", mail(subject=msg["Subject"], sender="Ann <ann@example.com>"))
    daemon.run(config, once=True)
    rules = [r[0] for r in db.execute(
        "SELECT thread_rule FROM message WHERE ticket_id = ? ORDER BY id", [ticket]
    )]  # fmt: skip
    assert ["new", "outgoing", "in-reply-to", "subject-token"] == rules
    assert 1 == db.execute("SELECT count(*) FROM ticket").fetchone()[0]


def test_outbox_waits_while_the_server_is_down_then_delivers_each_mail_once(tmp_path):
    server = SmtpServer()  # its port is reserved, nothing listens yet
    config = make_config(tmp_path, server)
    ticket = customer_ticket(tmp_path, config)
    db = open_db(config.database)
    ids = [replies.send(db, ticket, f"Answer {i}", "alice", config.mail) for i in range(3)]

    daemon.run(config, once=True)
    for outbox_id in ids:
        state, attempts, error = status(db, outbox_id)
        assert ("queued", 1) == (state, attempts)
        assert "refused the connection" in error

    server.start()
    try:
        daemon.run(config, once=True)
        daemon.run(config, once=True)  # nothing left: nothing more
        assert 3 == len(server.handler.delivered)
        assert sorted(server.handler.message_ids()) == sorted(
            outbox.get(db, i)["message_id"] for i in ids
        )
        assert all("sent" == status(db, i)[0] for i in ids)
    finally:
        server.stop()


def test_a_4xx_is_retried_until_the_server_takes_it(tmp_path, smtp_server):
    config = make_config(tmp_path, smtp_server, retry_seconds=0.2)
    db, ticket, outbox_id = answered_ticket(tmp_path, config)
    smtp_server.handler.defer = 2
    with sending(config):
        smtp_server.handler.wait_for(1)
    assert 3 == smtp_server.handler.attempts
    state, attempts, error = status(db, outbox_id)
    assert ("sent", 3, None) == (state, attempts, error)


def test_the_wait_after_each_4xx_doubles_with_jitter(tmp_path, smtp_server, monkeypatch):
    now = clock.parse("2026-11-26T10:00:00Z")  # the whole test runs on this clock
    monkeypatch.setenv("DESK_NOW", clock.iso(now))
    config = make_config(tmp_path, smtp_server, retry_seconds=10)
    db, ticket, outbox_id = answered_ticket(tmp_path, config)
    smtp_server.handler.defer = 3
    for nominal in (10, 20, 40):
        monkeypatch.setenv("DESK_NOW", clock.iso(now))
        daemon.run(config, once=True)
        due = clock.parse(outbox.get(db, outbox_id)["next_attempt_at"])
        assert nominal / 2 <= (due - now).total_seconds() <= nominal
        now = due
    monkeypatch.setenv("DESK_NOW", clock.iso(now))
    daemon.run(config, once=True)
    assert ("sent", 4) == status(db, outbox_id)[:2]


def test_a_second_daemon_leaves_the_outbox_to_the_first(tmp_path, smtp_server, caplog):
    config = make_config(tmp_path, smtp_server)
    ticket = customer_ticket(tmp_path, config)
    db = open_db(config.database)
    replies.send(db, ticket, "Answer", "alice", config.mail)
    lock = sender.lock_file(config.database)
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # the first daemon, sending
        assert not sender.run(db, config.mail.smtp, threading.Event(), once=True, lock=lock)
    assert [] == smtp_server.handler.delivered
    assert "another desk-ingest is sending this outbox" in caplog.text
    daemon.run(config, once=True)
    assert 1 == len(smtp_server.handler.delivered)


def test_the_server_took_it_but_the_database_was_locked_it_is_marked_not_resent(
    tmp_path, smtp_server, monkeypatch
):
    config = make_config(tmp_path, smtp_server, retry_seconds=0.1)
    db, ticket, outbox_id = answered_ticket(tmp_path, config)
    real, calls = outbox.sent, []

    def locked_once(db, outbox_id):
        calls.append(outbox_id)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        real(db, outbox_id)

    monkeypatch.setattr(outbox, "sent", locked_once)
    with sending(config):
        deadline = time.monotonic() + 20
        while status(db, outbox_id)[0] != "sent" and time.monotonic() < deadline:
            time.sleep(0.05)
    assert "sent" == status(db, outbox_id)[0]
    assert 1 == len(smtp_server.handler.delivered)  # marked after the fact, never sent again


def test_a_5xx_fails_the_mail_for_good_and_the_ticket_says_so(tmp_path, smtp_server):
    config = make_config(tmp_path, smtp_server)
    db, ticket, outbox_id = answered_ticket(tmp_path, config)
    smtp_server.handler.refuse = True

    daemon.run(config, once=True)
    daemon.run(config, once=True)

    state, attempts, error = status(db, outbox_id)
    assert ("failed", 1) == (state, attempts)
    assert "550 5.7.1 Mailbox unavailable" in error
    assert 1 == smtp_server.handler.attempts  # never tried again
    answered = "SELECT first_response_at FROM ticket WHERE id = ?"
    assert db.execute(answered, [ticket]).fetchone()[0] is None  # the customer got nothing
    outbox.retry(db, outbox_id, "alice")  # the agent fixed the address with the customer
    assert ("queued", 0, None) == status(db, outbox_id)
    assert db.execute(answered, [ticket]).fetchone()[0] is not None
    events = [r[0] for r in db.execute(
        "SELECT detail FROM ticket_event WHERE ticket_id = ? AND action = 'mail-failed'", [ticket]
    )]  # fmt: skip
    assert 1 == len(events) and "550" in events[0]


def test_a_mail_never_tried_is_not_given_up_but_one_deferred_past_the_time_fails(
    tmp_path, smtp_server, monkeypatch
):
    config = make_config(tmp_path, smtp_server, give_up_hours=1)
    db, ticket, outbox_id = answered_ticket(tmp_path, config)
    smtp_server.handler.defer = 100
    monkeypatch.setenv("DESK_NOW", "2098-01-01T00:00:00Z")  # the daemon was down meanwhile
    daemon.run(config, once=True)
    assert "queued" == status(db, outbox_id)[0]
    monkeypatch.setenv("DESK_NOW", "2099-01-01T00:00:00Z")
    daemon.run(config, once=True)
    state, _, error = status(db, outbox_id)
    assert "failed" == state and "gave up after 1 hours: deferred by the server: 451" in error


def test_kill_9_with_a_mail_in_hand_then_a_restart_delivers_every_mail_exactly_once(
    tmp_path, smtp_server
):
    path = write_config_file(tmp_path, extra=smtp_server.toml())
    config = config_module.load(path)
    ticket = customer_ticket(tmp_path, config)
    db = open_db(config.database)
    ids = [replies.send(db, ticket, f"Answer {i}", "alice", config.mail) for i in range(5)]
    handler = smtp_server.handler
    handler.hold, handler.hold_after = threading.Event(), 2  # the third waits for its 250

    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest.daemon", "--config", str(path), "--once"],
        start_new_session=True,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while handler.attempts < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert 3 == handler.attempts
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    handler.hold.set()
    assert ["sending"] == [
        r[0] for r in db.execute("SELECT status FROM outbox WHERE status NOT IN ('sent', 'queued')")
    ]

    done = subprocess.run(
        [sys.executable, "-m", "ingest.daemon", "--config", str(path), "--once"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert 0 == done.returncode, done.stderr
    assert "in hand when the daemon stopped" in done.stderr, done.stderr
    delivered = handler.message_ids()
    assert sorted(delivered) == sorted(outbox.get(db, i)["message_id"] for i in ids)
    assert all("sent" == status(db, i)[0] for i in ids)


def test_a_hostile_subject_or_name_cannot_add_headers_or_recipients(tmp_path, smtp_server):
    config = make_config(tmp_path, smtp_server)
    drop(tmp_path, "technical", (
        b"From: =?utf-8?q?Eve=0ABcc=3A_x=40example=2Ecom?= <eve@example.com>\r\n"
        b"To: technical@valuit.com\r\n"
        b"Subject: =?utf-8?q?Hi=0D=0ABcc=3A_victim=40example=2Ecom?=\r\n"
        b"Message-ID: <hostile@example.com>\r\n\r\nHello\r\n"
    ))  # fmt: skip
    daemon.run(config, once=True)
    db = open_db(config.database)
    ticket = db.execute("SELECT max(id) FROM ticket").fetchone()[0]
    replies.send(db, ticket, "Grüße, réponse", "alice", config.mail)
    daemon.run(config, once=True)
    [got] = smtp_server.handler.wait_for(1)
    assert ["eve@example.com"] == got.rcpt
    assert "Bcc" not in got.message
    subject = got.message["Subject"]
    assert subject.startswith("Re: Hi") and subject.endswith(f"victim@example.com [#{ticket}]")
    assert "\n" not in subject and "\r" not in subject
    assert "Grüße, réponse" in got.message.get_content()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit-tls"])
def test_tls_is_verified_and_the_login_uses_the_secret_from_the_environment(
    tmp_path, monkeypatch, implicit
):
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make the test certificates")
    server = SmtpServer(tls=tmp_path / "tls", implicit=implicit).start()
    security = "tls" if implicit else "starttls"
    try:
        base = {"security": security, "username": "desk", "password_env": "DESK_SMTP_PW"}
        untrusted = make_config(tmp_path, server, **base)
        ticket = customer_ticket(tmp_path, untrusted)
        db = open_db(untrusted.database)
        outbox_id = replies.send(db, ticket, "Answer", "alice", untrusted.mail)

        monkeypatch.setenv("DESK_SMTP_PW", "wrong")
        daemon.run(untrusted, once=True)  # the certificate is not from a known authority
        assert "the TLS certificate of 127.0.0.1" in status(db, outbox_id)[2]

        trusted = make_config(tmp_path, server, **base, ca_file=str(server.ca_file))
        daemon.run(trusted, once=True)
        assert "login as desk on 127.0.0.1" in status(db, outbox_id)[2]

        monkeypatch.setenv("DESK_SMTP_PW", "s3cret")
        daemon.run(trusted, once=True)
        assert "sent" == status(db, outbox_id)[0]
        assert 1 == len(server.handler.delivered)
    finally:
        server.stop()


def test_without_smtp_mail_waits_in_the_outbox_and_the_daemon_says_so(tmp_path, caplog):
    config = config_module.load(write_config_file(tmp_path))
    db, ticket, outbox_id = answered_ticket(tmp_path, config)
    daemon.run(config, once=True)
    assert "queued" == status(db, outbox_id)[0]
    assert "1 mail(s) wait in the outbox but there is no [smtp]" in caplog.text
    assert 1 == db.execute("SELECT count(*) FROM message WHERE direction = 'in'").fetchone()[0]


def dsn(returned: str, action: str, diagnostic: str) -> bytes:
    """A delivery status notification (RFC 3464) about the mail with Message-ID `returned`."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\nTo: <>\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org"
        f"\r\n\r\nFinal-Recipient: rfc822; ann@example.com\r\nAction: {action}\r\n"
        f"Status: 5.1.1\r\nDiagnostic-Code: smtp; {diagnostic}\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: technical@valuit.com\r\n"
        f"References: <question@example.com>\r\nMessage-ID: {returned}\r\n--b--\r\n"
    ).encode()


def test_a_bounce_after_the_relay_took_the_mail_fails_it_on_its_ticket(tmp_path, smtp_server):
    config = make_config(tmp_path, smtp_server)
    db, ticket, outbox_id = answered_ticket(tmp_path, config)
    daemon.run(config, once=True)
    assert "sent" == status(db, outbox_id)[0]
    returned = outbox.get(db, outbox_id)["message_id"]

    drop(tmp_path, "technical", dsn(returned, "delayed", "451 4.4.1 mailbox busy"))
    daemon.run(config, once=True)
    assert "sent" == status(db, outbox_id)[0]  # only delayed: it may still arrive

    # The server's reason, folded over two lines as long fields are (RFC 5322 2.2.3).
    diagnostic = "550 5.1.1 <ann@example.com>:\r\n    no such user"
    drop(tmp_path, "technical", dsn(returned, "failed", diagnostic))
    daemon.run(config, once=True)
    state, _, error = status(db, outbox_id)
    assert "failed" == state
    assert "bounced: 550 5.1.1 <ann@example.com>: no such user" == error
    # The bounce's body is the part written for people; the report is kept beside it.
    body, report = db.execute(
        "SELECT m.body_text, a.content_type FROM message m JOIN attachment a "
        "ON a.message_id = m.id WHERE m.kind = 'bounce' AND a.inline"
    ).fetchone()
    assert ("Your message could not be delivered.", "message/delivery-status") == (body, report)
    assert outbox.get(db, outbox_id)["sent_at"] is not None  # it did leave us
    # The bounces joined the ticket, which now owes a first response again.
    row = db.execute("SELECT message_count, first_response_at FROM ticket WHERE id = ?", [ticket])
    assert (4, None) == row.fetchone()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_check_smtp_says_how_the_daemon_would_fare_and_can_send_a_test(
    tmp_path, capsys, monkeypatch
):
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make the test certificates")
    server = SmtpServer(tls=tmp_path / "tls").start()
    try:
        path = write_config_file(tmp_path, extra=server.toml(
            security="starttls", username="desk", password_env="DESK_SMTP_PW",
            ca_file=str(server.ca_file),
        ))  # fmt: skip
        monkeypatch.setenv("DESK_SMTP_PW", "wrong")
        assert 1 == daemon.main(["--config", str(path), "--check-smtp"])
        assert "login as desk on 127.0.0.1" in capsys.readouterr().err

        monkeypatch.setenv("DESK_SMTP_PW", "s3cret")
        assert 0 == daemon.main(["--config", str(path), "--check-smtp", "ops@example.com"])
        out = capsys.readouterr().out
        assert "STARTTLS verified, logged in as desk; a test mail to ops@example.com" in out
        [got] = server.handler.wait_for(1)
        assert ["ops@example.com"] == got.rcpt
        assert "general@valuit.com" == parseaddr(got.message["From"])[1]
    finally:
        server.stop()


def test_a_reply_copies_whom_the_customer_copied_and_a_refused_copy_does_not_stop_it(
    tmp_path, smtp_server
):
    config = make_config(tmp_path, smtp_server)
    ticket = customer_ticket(
        tmp_path,
        config,
        sender="Ann <ann@example.com>",
        headers={"Cc": "Bob Colleague <bob@example.com>, compliance@valuit.com, gone@example.com"},
    )
    db = open_db(config.database)
    cc = replies.default_cc(db, ticket, config.mail)
    assert "Bob Colleague <bob@example.com>, gone@example.com" == cc  # never ourselves
    with pytest.raises(DeskError, match="Cc: bob is not an address"):
        replies.send(db, ticket, "Answer", "alice", config.mail, cc="bob, carol@example.com")
    smtp_server.handler.refuse_rcpt = {"gone@example.com"}
    outbox_id = replies.send(db, ticket, "Answer", "alice", config.mail, cc=cc)
    daemon.run(config, once=True)

    [got] = smtp_server.handler.wait_for(1)
    assert ["ann@example.com", "bob@example.com"] == got.rcpt
    assert "Bob Colleague <bob@example.com>, gone@example.com" == got.message["Cc"]
    state, _, note = status(db, outbox_id)
    assert "sent" == state and "not taken for gone@example.com: 550 5.1.1" in note
    # Bob answers all: his mail threads into the ticket, as he takes part in it now.
    drop(tmp_path, "technical", mail(subject=got.message["Subject"], sender="bob@example.com"))
    daemon.run(config, once=True)
    assert 1 == db.execute("SELECT count(*) FROM ticket").fetchone()[0]
