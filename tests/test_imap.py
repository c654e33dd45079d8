"""IMAP sources against a real, private Dovecot: what a mail administrator would notice."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pty
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from db.core import config as config_module
from db.core.connect import open_db
from db.core.migrations import FUNCTIONS
from db.mailin import sources
from ingest import backoff, daemon, demo, imap, secrets
from ingest.pipeline import BATCH
from tests.dovecot import Dovecot, TokenServer, live_processes_in_group

USER = "technical"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reconnect after ~0.1 s instead of ~1 s, so fault tests take seconds, not minutes."""
    monkeypatch.setattr(backoff, "FIRST_DELAY", 0.1)


def imap_source(server: Dovecot, user: str = USER, **keys: Any) -> dict[str, Any]:
    table = {
        "function": user,
        "kind": "imap",
        "host": server.host,
        "port": server.port,
        "security": "none",
        "username": user,
        "password_env": f"DESK_TEST_PASSWORD_{user.upper()}",
    }
    table.update(keys)
    return table


def passwords(server: Dovecot) -> dict[str, str]:
    return {f"DESK_TEST_PASSWORD_{u.upper()}": server.password(u) for u in server.users}


def configure(tmp_path: Path, *tables: dict[str, Any]) -> config_module.Config:
    data = {
        "database": {"path": str(tmp_path / "desk.db")},
        "addresses": {f"{fn}@valuit.com": fn for fn in FUNCTIONS},
        "source": list(tables),
    }
    return config_module.parse(data, tmp_path / "config.toml")


def write_config(tmp_path: Path, *tables: dict[str, Any]) -> Path:
    """The same configuration as a TOML file, for `desk-ingest` run as a process."""
    # A JSON string or number is a valid TOML value for the plain keys used here.
    lines = [f"[database]\npath = {json.dumps(str(tmp_path / 'desk.db'))}\n", "[addresses]"]
    lines += [f'"{fn}@valuit.com" = "{fn}"' for fn in FUNCTIONS]
    for table in tables:
        lines.append("\n[[source]]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def fill(server: Dovecot, count: int, user: str = USER, seed: int = 3) -> list[bytes]:
    """APPEND `count` realistic messages in one MULTIAPPEND; returns their bytes."""
    raws = [raw for _fn, raw in demo.generate(count, seed)]
    with server.session(user) as client:
        client._imap.debug = 0  # see ingest.imap.connect: the debug output costs more than IMAP
        client.multiappend("INBOX", raws)
    return raws


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.005)
    raise AssertionError(f"gave up after {timeout} s waiting for {what or predicate}")


@contextlib.contextmanager
def running(cfg: config_module.Config) -> Iterator[threading.Event]:
    """`desk-ingest` (without --once) in a thread, stopped at the end of the block."""
    stop = threading.Event()
    thread = threading.Thread(
        target=daemon.run, args=(cfg,), kwargs={"once": False, "stop": stop}, daemon=True
    )
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(timeout=15)
        assert not thread.is_alive(), "the daemon did not stop within 15 s"


class Desk:
    """The database as `desk stats` would show it."""

    def __init__(self, cfg: config_module.Config) -> None:
        self.db = open_db(cfg.database)

    def one(self, sql: str, *params: Any) -> Any:
        return self.db.execute(sql, params).fetchone()[0]

    def messages(self) -> int:
        return self.one("SELECT count(*) FROM message")

    def distinct(self) -> int:
        return self.one("SELECT count(DISTINCT sha256) FROM message")

    def locations(self, source: str) -> int:
        return self.one("SELECT count(*) FROM message_location WHERE source = ?", source)

    def state(self, name: str) -> dict[str, Any]:
        return sources.get(self.db, name) or {}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, dovecot_server: Dovecot) -> Dovecot:
    for key, value in passwords(dovecot_server).items():
        monkeypatch.setenv(key, value)
    return dovecot_server


def test_first_sync_stores_every_message_once_and_reports_counts(
    env: Dovecot, tmp_path: Path
) -> None:
    fill(env, 300)
    cfg = configure(tmp_path, imap_source(env))

    assert daemon.run(cfg, once=True)
    assert daemon.run(cfg, once=True)  # a second run finds nothing new

    desk = Desk(cfg)
    assert (300, 300) == (desk.messages(), desk.distinct())
    state = desk.state("technical-imap")
    assert ("stopped", 300, 300, 300) == (
        state["state"],
        state["server_count"],
        state["stored_count"],
        state["last_uid"],
    )
    assert env.uidvalidity(USER) == state["uidvalidity"]
    assert desk.one("SELECT count(*) FROM ticket") > 0


def test_append_while_idle_is_a_committed_ticket_without_waiting_for_a_poll(
    env: Dovecot, tmp_path: Path
) -> None:
    """IDLE, not a poll, brings each one in: the wait is far shorter than the IDLE renewal
    (10 minutes). How fast is measured by `make bench` (p50/p95/p99), not here."""
    cfg = configure(tmp_path, imap_source(env))
    desk = Desk(cfg)
    with running(cfg):
        wait_for(lambda: desk.state("technical-imap").get("state") == "idle", what="idle")
        for i in range(3):
            subject = f"Cannot log in, attempt {i}"
            raw = (
                f"From: Ann <ann@example.com>\r\nTo: technical@valuit.com\r\n"
                f"Subject: {subject}\r\nMessage-ID: <idle{i}@example.com>\r\n\r\nHelp\r\n"
            ).encode()
            env.append(USER, raw)
            wait_for(
                lambda s=subject: desk.one("SELECT count(*) FROM ticket WHERE subject = ?", s),
                30,
                "the ticket",
            )
            wait_for(lambda: desk.state("technical-imap").get("state") == "idle", 30, "idle")


def test_server_stopped_mid_sync_then_restarted_completes_exactly_once(
    env: Dovecot, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    total = 1500
    fill(env, total)
    cfg = configure(tmp_path, imap_source(env))
    desk = Desk(cfg)
    with running(cfg):
        wait_for(lambda: desk.state("technical-imap").get("last_uid"), what="a first batch")
        env.stop(graceful=False)
        assert desk.state("technical-imap")["last_uid"] < total, "the sync ended before the stop"
        refused = "refused the connection (is the IMAP server running?)"
        wait_for(lambda: refused in caplog.text, 30, "a reconnect refused while it is down")
        env.start()
        wait_for(
            lambda: desk.state("technical-imap").get("state") == "idle", 30, "the sync to finish"
        )
    assert (total, total, total) == (
        desk.messages(),
        desk.distinct(),
        desk.locations("technical-imap"),
    )
    assert f"connection to 127.0.0.1:{env.port} lost" in caplog.text


def test_uidvalidity_change_rereads_the_folder_without_duplicates(
    env: Dovecot, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fill(env, 40)
    cfg = configure(tmp_path, imap_source(env))
    desk = Desk(cfg)
    caplog.set_level(logging.INFO)
    with running(cfg):
        wait_for(lambda: desk.state("technical-imap").get("state") == "idle", what="idle")
        new = env.recreate_folder(USER)
        wait_for(lambda: desk.state("technical-imap").get("uidvalidity") == new, what="re-read")
        wait_for(lambda: desk.state("technical-imap").get("state") == "idle", what="idle again")
    assert (40, 40) == (desk.messages(), desk.locations("technical-imap"))
    assert 40 == desk.state("technical-imap")["stored_count"]
    assert "UIDVALIDITY of INBOX changed" in caplog.text


def test_kill_9_mid_sync_then_restart_stores_every_message_once(
    env: Dovecot, tmp_path: Path
) -> None:
    total = 2000
    fill(env, total)
    path = write_config(tmp_path, imap_source(env))
    cfg = config_module.load(path)
    desk = Desk(cfg)  # creates the database before the daemon opens it
    command = [sys.executable, "-m", "ingest.daemon", "--config", str(path)]
    process_env = {**os.environ, **passwords(env)}
    process = subprocess.Popen(
        command, env=process_env, cwd=ROOT, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_for(desk.messages, 30, "a first batch")
        os.killpg(process.pid, signal.SIGKILL)  # the daemon and its parser processes
        process.wait()
        assert desk.messages() < total, "the sync ended before the kill"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    again = subprocess.run(
        [*command, "--once"], env=process_env, cwd=ROOT, capture_output=True, timeout=60
    )
    assert 0 == again.returncode, again.stderr.decode()
    assert (total, total, total) == (
        desk.messages(),
        desk.distinct(),
        desk.locations("technical-imap"),
    )


def test_wrong_password_is_reported_and_retried_while_other_sources_go_on(
    env: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DESK_TEST_PASSWORD_TECHNICAL", "not-the-password")
    fill(env, 5, user="sales")
    cfg = configure(tmp_path, imap_source(env), imap_source(env, "sales"))
    desk = Desk(cfg)
    caplog.set_level(logging.INFO)
    with running(cfg):
        wait_for(lambda: desk.state("sales-imap").get("state") == "idle", what="sales idle")
        wait_for(lambda: "trying again" in caplog.text, 10, "a retry")
        technical = desk.state("technical-imap")
    assert 5 == desk.locations("sales-imap")
    assert "failed-auth" == technical["state"]
    expected = f"login as technical on 127.0.0.1:{env.port} was refused"
    assert expected in technical["last_error"]
    assert expected in caplog.text
    assert "not-the-password" not in caplog.text


def test_sigterm_ends_a_daemon_idling_on_imap_within_5_s(env: Dovecot, tmp_path: Path) -> None:
    fill(env, 5)
    path = write_config(tmp_path, imap_source(env))
    process = subprocess.Popen(
        [sys.executable, "-m", "ingest.daemon", "--config", str(path)],
        env={**os.environ, **passwords(env)},
        cwd=ROOT,
        start_new_session=True,
        stderr=subprocess.PIPE,
    )
    desk = Desk(configure(tmp_path, imap_source(env)))
    wait_for(lambda: desk.state("technical-imap").get("state") == "idle", 30, "idle")
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=30)
    while live_processes_in_group(process.pid) and time.monotonic() - sent < 5:
        time.sleep(0.05)
    assert ([], 0) == (live_processes_in_group(process.pid), code)
    assert time.monotonic() - sent < 5
    assert "stopped" == desk.state("technical-imap")["state"]


def test_once_with_a_wrong_password_exits_with_a_clear_error(env: Dovecot, tmp_path: Path) -> None:
    path = write_config(tmp_path, imap_source(env))
    result = subprocess.run(
        [sys.executable, "-m", "ingest.daemon", "--config", str(path), "--once"],
        env={**os.environ, "DESK_TEST_PASSWORD_TECHNICAL": "wrong-secret"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert 1 == result.returncode
    assert "login as technical on 127.0.0.1" in result.stderr
    assert "wrong-secret" not in result.stderr


def test_after_ingest_none_leaves_every_flag_as_it_was(env: Dovecot, tmp_path: Path) -> None:
    for flags in [(), (b"\\Seen",), (b"\\Flagged", b"$Important"), (b"\\Answered",)]:
        env.append(USER, fill_one(len(flags)), flags=flags)
    before = env.flags(USER)
    cfg = configure(tmp_path, imap_source(env))
    desk = Desk(cfg)
    with running(cfg):
        wait_for(lambda: desk.state("technical-imap").get("state") == "idle", what="idle")
        env.append(USER, fill_one(9))
        wait_for(lambda: desk.messages() == 5, what="the new message")
    after = env.flags(USER)
    assert before == {uid: flags for uid, flags in after.items() if uid in before}
    assert () == after[max(after)]


@pytest.mark.parametrize("action", ["seen", "move:Done"])
def test_after_ingest_marks_or_moves_only_committed_messages(
    env: Dovecot, tmp_path: Path, action: str
) -> None:
    # Batches enough that one is marked or moved while the next one's FETCH is in flight.
    count = 2 * BATCH + 30
    fill(env, count)
    cfg = configure(tmp_path, imap_source(env, after_ingest=action))
    assert daemon.run(cfg, once=True)
    assert count == Desk(cfg).messages()
    if action == "seen":
        assert all(b"\\Seen" in flags for flags in env.flags(USER).values())
    else:
        assert ({}, count) == (env.flags(USER), len(env.flags(USER, "Done")))


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_tls_is_verified_against_the_ca_file(env: Dovecot, tmp_path: Path, security: str) -> None:
    env.append(USER, fill_one(1))
    port = env.tls_port if security == "tls" else env.port
    table = imap_source(env, security=security, port=port, ca_file=str(env.ca_file))
    cfg = configure(tmp_path, table)
    assert daemon.run(cfg, once=True)
    assert 1 == Desk(cfg).messages()


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_a_refused_certificate_names_the_host_and_the_reason(
    env: Dovecot, tmp_path: Path, security: str
) -> None:
    port = env.tls_port if security == "tls" else env.port
    table = imap_source(env, security=security, port=port, ca_file=str(env.untrusted_ca_file()))
    cfg = configure(tmp_path, table)
    assert not daemon.run(cfg, once=True)
    error = Desk(cfg).state("technical-imap")["last_error"]
    assert f"the TLS certificate of 127.0.0.1:{port} was refused: " in error
    assert "unable to get local issuer certificate" in error


@pytest.mark.parametrize("good", [True, False], ids=["good-token", "refused-token"])
def test_xoauth2_logs_in_with_the_token_and_a_refused_one_names_the_token_command(
    dovecot_oauth2_server: tuple[Dovecot, TokenServer], tmp_path: Path, good: bool
) -> None:
    server, tokens = dovecot_oauth2_server
    server.append(USER, fill_one(1))
    token = tokens.token(USER) if good else "expired-token"
    table = imap_source(server, oauth2_token_command=f"printf {token}")
    del table["password_env"]
    path = write_config(tmp_path, table)
    result = subprocess.run(
        [sys.executable, "-m", "ingest.daemon", "--config", str(path), "--once"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if good:
        assert (0, 1) == (result.returncode, Desk(configure(tmp_path, table)).messages())
        return
    assert 1 == result.returncode
    expected = f"the OAuth access token for technical was refused by 127.0.0.1:{server.port}"
    assert expected in result.stderr
    assert "check that oauth2_token_command prints" in result.stderr
    assert "username and password" not in result.stderr
    assert token not in result.stderr


def test_a_message_too_malformed_to_parse_is_still_stored(env: Dovecot, tmp_path: Path) -> None:
    env.append(USER, b"\xff\xfe this is not a mail at all\r\n\x1b[31m\r\n")
    cfg = configure(tmp_path, imap_source(env))
    assert daemon.run(cfg, once=True)
    desk = Desk(cfg)
    assert 1 == desk.one("SELECT count(*) FROM message WHERE parse_error IS NOT NULL")
    assert 1 == desk.one("SELECT count(*) FROM ticket WHERE unparsed = 1")


def test_once_on_a_terminal_draws_a_progress_bar(env: Dovecot, tmp_path: Path) -> None:
    fill(env, 600)
    path = write_config(tmp_path, imap_source(env))
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "ingest.daemon", "--config", str(path), "--once"],
        env={**os.environ, **passwords(env)},
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    output = b""
    with contextlib.suppress(OSError):  # EIO once the process closed the terminal
        while select.select([leader], [], [], 30)[0]:
            chunk = os.read(leader, 65536)
            if not chunk:
                break
            output += chunk
    os.close(leader)
    assert 0 == process.wait(timeout=30)
    text = output.decode(errors="replace")
    assert f"technical-imap [{'#' * 24}] 600/600" in text
    assert "read 600 message(s)" in text


def test_secrets_come_from_the_environment_or_a_command_with_clear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def source(**keys: str) -> config_module.Source:
        table = {"function": "sales", "kind": "imap", "host": "127.0.0.1", "username": "s", **keys}
        return configure(tmp_path, table).sources[0]

    monkeypatch.setenv("DESK_PW", "from-env")
    assert "from-env" == secrets.resolve(source(password_env="DESK_PW")).value
    assert "from-cmd" == secrets.resolve(source(password_command="echo from-cmd")).value
    token = secrets.resolve(source(oauth2_token_command="printf tok"))
    assert ("tok", True) == (token.value, token.oauth2)
    assert "tok" not in repr(token)
    monkeypatch.delenv("DESK_PW")
    with pytest.raises(secrets.SecretError, match="DESK_PW named by password_env is not set"):
        secrets.resolve(source(password_env="DESK_PW"))
    with pytest.raises(secrets.SecretError, match="exit status 3: no keyring"):
        secrets.resolve(source(password_command="echo hunter2; echo no keyring >&2; exit 3"))


def fill_one(n: int) -> bytes:
    return (
        f"From: Bob <bob@example.com>\r\nTo: technical@valuit.com\r\nSubject: Question {n}\r\n"
        f"Message-ID: <q{n}.{time.monotonic_ns()}@example.com>\r\n\r\nHow do I export data?\r\n"
    ).encode()


def test_fetch_responses_give_each_uid_its_bytes_whatever_the_order_of_the_items() -> None:
    # As imaplib hands them over: RFC 9051 lets a server put UID before or after BODY[], and
    # report a flag change unasked in the middle of the answer.
    data = [
        (b"1 (UID 7 BODY[] {3}", b"abc"),
        b")",
        b"5 FETCH (FLAGS (\\Seen))",
        (b"2 (BODY[] {3}", b"def"),
        b" UID 9)",
    ]
    assert {7: b"abc", 9: b"def"} == imap.fetched_bodies(data)
