"""desk-ingest speaks systemd's notify protocol: a real desk-ingest process is given a real
unix datagram socket as NOTIFY_SOCKET, as systemd gives a `Type=notify` service, and the test
reads what systemd would: READY=1 once the sources run, STATUS= lines naming a source at fault,
WATCHDOG=1 at half of WATCHDOG_USEC, and STOPPING=1 on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ingest.demo import generate, write_maildir
from tests.conftest import write_config_file

WATCHDOG_USEC = 1_000_000  # a keep-alive every half second


def refused_imap(give_up_minutes: float) -> str:
    """An IMAP source on a loopback port nobody listens on, and the [ingest] table."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return (
        f"\n[ingest]\nretry_cap_seconds = 1\ngive_up_minutes = {give_up_minutes}\n"
        '\n[[source]]\nfunction = "sales"\nkind = "imap"\nhost = "127.0.0.1"\n'
        f'port = {port}\nsecurity = "none"\nusername = "sales"\npassword_env = "HOME"\n'
    )


def listen(tmp_path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(30)
    return sock


def start(config: Path, sock: socket.socket, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ingest.daemon", "--config", str(config)],
        env=os.environ | {"NOTIFY_SOCKET": sock.getsockname(), **env},
        stderr=subprocess.PIPE,
    )


def messages(sock: socket.socket, until: str) -> list[dict[str, str]]:
    """The datagrams received up to and including the first that has `until` (KEY=VALUE)."""
    got: list[dict[str, str]] = []
    while not got or until not in [f"{k}={v}" for k, v in got[-1].items()]:
        data = sock.recv(4096).decode()
        got.append(dict(line.split("=", 1) for line in data.splitlines()))
    return got


def status(sock: socket.socket, wanted: Callable[[str], bool], what: str) -> str:
    """The first STATUS of a watchdog beat that is `wanted`, waited for up to 60 s."""
    deadline = time.monotonic() + 60
    while not wanted(line := messages(sock, "WATCHDOG=1")[-1]["STATUS"]):
        assert time.monotonic() < deadline, f"no status showed {what}; the last: {line}"
    return line


def test_ready_status_watchdog_and_stopping_reach_the_notify_socket(tmp_path: Path) -> None:
    write_maildir(tmp_path / "spool", generate(30, seed=31))
    config = write_config_file(tmp_path, ("technical",), extra=refused_imap(30))
    with listen(tmp_path) as sock:
        proc = start(config, sock, WATCHDOG_USEC=str(WATCHDOG_USEC))
        try:
            first = messages(sock, "READY=1")[-1]
            assert first["STATUS"].startswith("2 source(s)")
            # The refused server shows in the status while the watchdog is fed meanwhile.
            deadline = time.monotonic() + 30
            beats: list[dict[str, str]] = []
            while not any("refused the connection" in b["STATUS"] for b in beats):
                assert time.monotonic() < deadline, beats
                beats += [m for m in messages(sock, "WATCHDOG=1") if "WATCHDOG" in m]
            assert "2 source(s): 1 working, 1 backing off (sales-imap: " in beats[-1]["STATUS"]
            assert len(messages(sock, "WATCHDOG=1")) >= 1  # and again
            proc.send_signal(signal.SIGTERM)
            assert "1" == messages(sock, "STOPPING=1")[-1]["STOPPING"]
            assert 0 == proc.wait(timeout=30)
        finally:
            proc.kill()
            proc.wait()


def test_the_watchdog_is_not_fed_once_no_source_makes_progress(tmp_path: Path) -> None:
    # Every source failing for give_up_minutes (3 s): the last word is STOPPING, not a beat,
    # and the daemon exits 1 for systemd to start it afresh.
    config = write_config_file(tmp_path, (), extra=refused_imap(0.05))
    with listen(tmp_path) as sock:
        proc = start(config, sock, WATCHDOG_USEC=str(WATCHDOG_USEC))
        try:
            got = messages(sock, "STOPPING=1")
            assert 1 == proc.wait(timeout=30)
        finally:
            proc.kill()
            proc.wait()
    assert "READY=1" == f"READY={got[0]['READY']}"
    assert "WATCHDOG" not in got[-1]
    assert any("WATCHDOG" in m for m in got)  # fed while the fault was younger than that


def test_a_failing_sender_is_restarted_and_shown_in_the_status(tmp_path: Path) -> None:
    # A folder where the sender's lock file goes: every start of the sender fails until it is
    # removed. The sources go on, the status names the sender, and the same process recovers.
    with socket.socket() as probe:  # [smtp] is never reached: the outbox stays empty
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    smtp = f'\n[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
    config = write_config_file(tmp_path, ("technical",), extra=smtp)
    in_the_way = tmp_path / "desk.db.sender.lock"
    in_the_way.mkdir()
    with listen(tmp_path) as sock:
        proc = start(config, sock, WATCHDOG_USEC=str(WATCHDOG_USEC))
        try:
            status(sock, lambda line: "sender backing off (" in line, "the sender's fault")
            in_the_way.rmdir()
            status(sock, lambda line: "sender" not in line, "the sender recovered")
            assert proc.poll() is None
        finally:
            proc.terminate()
            proc.wait(timeout=30)
