"""Checks that the private Dovecot of tests/dovecot.py behaves as the ingest tests assume."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import textwrap
from pathlib import Path

import imapclient
import pytest
from imapclient.exceptions import LoginError

from tests.dovecot import (
    DEFAULT_USERS,
    Dovecot,
    live_processes_in_group,
)

REPO = Path(__file__).resolve().parent.parent

RAW = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: technical@valuit.example\r\n"
    b"Subject: =?utf-8?q?Caf=C3=A9_outage?=\r\n"
    b"Message-ID: <fixture-1@example.com>\r\n"
    b"Date: Mon, 02 Mar 2026 09:30:00 +0100\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"The caf\xc3\xa9 portal is down.\r\n"
    b"  Trailing spaces and a lone dot:  \r\n"
    b".\r\n"
    b"End.\r\n"
)


def message(n: int) -> bytes:
    return RAW.replace(b"fixture-1@", f"fixture-{n}@".encode())


def fetch_bodies(client: imapclient.IMAPClient, folder: str = "INBOX") -> dict[int, bytes]:
    client.select_folder(folder, readonly=True)
    uids = client.search("ALL")
    if not uids:
        return {}
    return {uid: data[b"BODY[]"] for uid, data in client.fetch(uids, ["BODY.PEEK[]"]).items()}


def test_each_user_logs_in_with_its_password(dovecot_server: Dovecot) -> None:
    assert set(DEFAULT_USERS) == {"technical", "sales", "compliance", "general", "marketing"}
    for user in DEFAULT_USERS:
        assert dovecot_server.password(user) == f"secret-{user}"
        client = dovecot_server.client(user)
        try:
            assert client.select_folder("INBOX")[b"EXISTS"] == 0
        finally:
            client.logout()
    wrong = imapclient.IMAPClient(dovecot_server.host, port=dovecot_server.port, ssl=False)
    with pytest.raises(LoginError):
        wrong.login("sales", "secret-technical")
    wrong.shutdown()


def test_plaintext_and_verified_tls(dovecot_server: Dovecot) -> None:
    assert dovecot_server.host == "127.0.0.1"
    assert dovecot_server.port != dovecot_server.tls_port
    plain = dovecot_server.client("general")
    assert not isinstance(plain.socket(), ssl.SSLSocket)
    plain.logout()

    secure = dovecot_server.client("general", tls=True)
    assert isinstance(secure.socket(), ssl.SSLSocket)
    assert secure.select_folder("INBOX")[b"EXISTS"] == 0
    secure.logout()

    # The CA file alone verifies the server by IP, as the ingest daemon will.
    context = ssl.create_default_context(cafile=str(dovecot_server.ca_file))
    with (
        socket.create_connection((dovecot_server.host, dovecot_server.tls_port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.recv(64).startswith(b"* OK")
        sans = tls.getpeercert()["subjectAltName"]
    assert ("IP Address", "127.0.0.1") in sans
    assert ("DNS", "localhost") in sans


def test_untrusted_ca_is_refused(dovecot_server: Dovecot) -> None:
    untrusted = dovecot_server.untrusted_ca_file()
    assert untrusted.read_bytes() != dovecot_server.ca_file.read_bytes()
    context = ssl.create_default_context(cafile=str(untrusted))
    with pytest.raises(ssl.SSLCertVerificationError):
        imapclient.IMAPClient(
            dovecot_server.host, port=dovecot_server.tls_port, ssl=True, ssl_context=context
        )


def test_append_returns_uid_and_message_comes_back_byte_identical(
    dovecot_server: Dovecot,
) -> None:
    first = dovecot_server.append("technical", message(1))
    second = dovecot_server.append("technical", message(2), flags=[b"\\Flagged"])
    archived = dovecot_server.append("technical", message(3), folder="Archive/2026")
    assert second > first >= 1
    assert archived >= 1

    client = dovecot_server.client("technical")
    try:
        assert fetch_bodies(client) == {first: message(1), second: message(2)}
        assert fetch_bodies(client, "Archive/2026") == {archived: message(3)}
    finally:
        client.logout()
    # BODY.PEEK[] did not set \Seen; the appended flag is kept.
    assert dovecot_server.flags("technical") == {first: (), second: (b"\\Flagged",)}
    assert dovecot_server.flags("sales") == {}


def test_idle_notices_an_append_from_another_connection(dovecot_server: Dovecot) -> None:
    watcher = dovecot_server.client("sales")
    try:
        assert b"IDLE" in watcher.capabilities()
        watcher.select_folder("INBOX")
        watcher.idle()
        assert watcher.idle_check(timeout=0.2) == []
        uid = dovecot_server.append("sales", message(1))
        responses = watcher.idle_check(timeout=30)  # returns at the first response
        watcher.idle_done()
        assert (1, b"EXISTS") in responses, responses
        assert watcher.search("ALL") == [uid]
    finally:
        watcher.logout()


def test_restart_keeps_ports_messages_and_uidvalidity(dovecot_server: Dovecot) -> None:
    uids = [dovecot_server.append("compliance", message(n)) for n in (1, 2)]
    before = dovecot_server.uidvalidity("compliance")
    ports = (dovecot_server.port, dovecot_server.tls_port)
    old_pid = dovecot_server.pid
    dangling = dovecot_server.client("compliance")

    dovecot_server.restart()

    assert (dovecot_server.port, dovecot_server.tls_port) == ports
    assert dovecot_server.pid not in (None, old_pid)
    with pytest.raises((imapclient.IMAPClient.AbortError, OSError)):
        dangling.noop()
    assert dovecot_server.uidvalidity("compliance") == before
    client = dovecot_server.client("compliance", tls=True)
    try:
        assert fetch_bodies(client) == {uids[0]: message(1), uids[1]: message(2)}
    finally:
        client.logout()


@pytest.mark.parametrize("folder", ["INBOX", "Archive/2026"])
def test_recreate_folder_changes_uidvalidity_and_keeps_messages(
    dovecot_server: Dovecot, folder: str
) -> None:
    dovecot_server.append("marketing", message(1), folder=folder, flags=[b"\\Seen"])
    dovecot_server.append("marketing", message(2), folder=folder)
    dovecot_server.append("marketing", message(3), folder=folder, flags=[b"\\Answered"])
    other = "Sent" if folder == "INBOX" else "INBOX"
    dovecot_server.append("marketing", message(4), folder=other)
    other_before = dovecot_server.uidvalidity("marketing", other)
    before = dovecot_server.uidvalidity("marketing", folder)
    flags_before = dovecot_server.flags("marketing", folder)

    after = dovecot_server.recreate_folder("marketing", folder)

    assert after != before
    assert dovecot_server.uidvalidity("marketing", folder) == after
    flags_after = dovecot_server.flags("marketing", folder)
    assert len(flags_after) == 3
    assert min(flags_after) > max(flags_before)  # new UIDs
    assert sorted(flags_after.values()) == sorted(flags_before.values())
    client = dovecot_server.client("marketing")
    try:
        bodies = fetch_bodies(client, folder)
    finally:
        client.logout()
    assert sorted(bodies.values()) == sorted(message(n) for n in (1, 2, 3))
    assert dovecot_server.uidvalidity("marketing", other) == other_before


@pytest.mark.parametrize("folder", ["INBOX", "Archive"])
def test_recreate_folder_drops_sessions_that_had_it_selected(
    dovecot_server: Dovecot, folder: str
) -> None:
    dovecot_server.append("general", message(1), folder=folder)
    selected = dovecot_server.client("general")
    selected.select_folder(folder)
    idling = dovecot_server.client("general")
    idling.select_folder(folder)
    idling.idle()

    dovecot_server.recreate_folder("general", folder)

    responses = idling.idle_check(timeout=3)
    assert any(r[0] == b"BYE" for r in responses), responses
    with pytest.raises(imapclient.IMAPClient.AbortError):
        selected.noop()
    for client in (selected, idling):
        client.shutdown()


def test_stop_closes_ports_and_leaves_no_process(tmp_path: Path) -> None:
    if not Dovecot.available():
        pytest.skip("Dovecot not available")
    server = Dovecot(tmp_path, users=["solo"])
    try:
        server.start()  # raises if the server does not greet within START_TIMEOUT
        pid = server.pid
        assert pid is not None
        client = server.client("solo")
        client.logout()
        server.stop()
        assert not server.running
        for port in (server.port, server.tls_port):
            with pytest.raises(OSError):
                socket.create_connection((server.host, port), timeout=1).close()
        # (A zombie may linger until init reaps it: it is not running.)
        assert live_processes_in_group(pid) == []
        assert "Fatal" not in server.log_text()
        assert not (tmp_path / "dovecot.conf").read_text().count("/etc/")
    finally:
        server.cleanup(graceful=False)


@pytest.mark.parametrize(
    ("require", "outcome"),
    [("", "1 skipped"), ("1", "1 error")],
)
def test_fixture_skips_or_fails_when_dovecot_is_missing(
    tmp_path: Path, require: str, outcome: str
) -> None:
    (tmp_path / "test_missing.py").write_text(
        textwrap.dedent(
            """\
            from tests.dovecot import Dovecot, dovecot_server  # noqa: F401

            Dovecot.available = staticmethod(lambda: False)


            def test_needs_dovecot(dovecot_server):
                raise AssertionError("should not run")
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "DESK_REQUIRE_DOVECOT": require}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "test_missing.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert outcome in result.stdout, result.stdout + result.stderr
    assert "Dovecot not available" in result.stdout


def test_reset_folder_changes_uidvalidity_and_restarts_uids_at_1(dovecot_server: Dovecot) -> None:
    for n in (1, 2, 3):
        dovecot_server.append("sales", message(n), folder="Support")
    before = dovecot_server.uidvalidity("sales", "Support")

    after = dovecot_server.reset_folder("sales", "Support")

    assert after != before
    assert {} == dovecot_server.flags("sales", "Support")
    assert 1 == dovecot_server.append("sales", message(4), folder="Support")
    assert after == dovecot_server.uidvalidity("sales", "Support")


def test_drop_capabilities_leaves_a_server_that_offers_neither_idle_nor_move(
    dovecot_server: Dovecot,
) -> None:
    with dovecot_server.session("sales") as c:
        assert {b"IDLE", b"MOVE"} <= set(c.capabilities())
    dovecot_server.drop_capabilities("IDLE", "MOVE")
    with dovecot_server.session("sales") as c:
        offered = set(c.capabilities())
    assert (set(), True) == ({b"IDLE", b"MOVE"} & offered, b"UIDPLUS" in offered)
