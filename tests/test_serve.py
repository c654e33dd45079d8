"""`desk serve` for a team: a real server process, refused without a login or from a foreign
page, and a real Chromium that logs in, sees the tickets and acts as the agent who logged in.

The browser tests skip without /usr/bin/chromium or Playwright, unless DESK_REQUIRE_CHROMIUM=1
makes that a failure (as in CI)."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.tui_helpers import NOW, deliver, mail
from tui.cli import serve_login

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
PASSWORD = "correct horse battery"
SUBJECT = "Ledger export stuck"
DESK = [sys.executable, "-c", "import sys; from tui.cli import main; sys.exit(main())"]


def desk(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DESK, "--config", str(config), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


@dataclass
class Served:
    url: str
    db: Path
    config: Path
    pid: int  # of the `desk serve` process


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(tmp_path: Path, *args: str, config_extra: str = "") -> Iterator[Served]:
    """`desk serve ARGS` on a free loopback port, on a desk with one ticket and one agent, maria;
    `config_extra` is more TOML for its config file.

    The config says agent = "shared": the login, not the config, must name who acts."""
    db = tmp_path / "desk.db"
    deliver(db, mail(1, SUBJECT), at=NOW)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\npath = "{db}"\n[desk]\ntimezone = "UTC"\nagent = "shared"\n{config_extra}'
    )
    assert 0 == desk(config, "serve", "passwd", "maria", stdin=PASSWORD + "\n").returncode
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "DESK_USER"} | {"DESK_NOW": NOW}
    server = subprocess.Popen(
        [*DESK, "--config", str(config), "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "desk serve did not start listening"
                time.sleep(0.1)
        yield Served(f"http://127.0.0.1:{port}", db, config, server.pid)
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with serving(tmp_path) as s:
        yield s


def test_passwd_keeps_only_an_owner_only_scrypt_hash(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\npath = "{tmp_path / "desk.db"}"\n')
    result = desk(config, "serve", "passwd", "maria", stdin=PASSWORD + "\n")
    assert 0 == result.returncode, result.stderr
    users = tmp_path / "serve-users"
    assert 0o600 == stat.S_IMODE(users.stat().st_mode)
    assert PASSWORD not in users.read_text()
    assert re.fullmatch(r"maria:scrypt\$16384\$8\$1\$\S+\$\S+\n", users.read_text())

    assert "desk: a password needs at least 8 characters\n" == (
        desk(config, "serve", "passwd", "olga", stdin="short\n").stderr
    )
    users.chmod(0o644)
    refused = desk(config, "serve")
    assert 2 == refused.returncode
    assert f"desk: {users} is readable by others: run `chmod 600 {users}`\n" == refused.stderr


def test_serve_refuses_to_start_without_agents(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\npath = "{tmp_path / "desk.db"}"\n')
    result = desk(config, "serve")
    users = tmp_path / "serve-users"
    assert (
        f"desk: {users} does not exist: add an agent with `desk serve passwd AGENT` first\n"
    ) == result.stderr


async def _login(url: str, agent: str, password: str, origin: str) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession() as session:
        return await session.post(
            f"{url}/login",
            data={"agent": agent, "password": password},
            headers={"Origin": origin},
            allow_redirects=False,
        )


async def _ws_status(url: str, origin: str, cookie: str | None) -> int:
    """The HTTP status of a websocket handshake to /ws (101 when accepted)."""
    headers = {"Origin": origin} | ({"Cookie": cookie} if cookie else {})
    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(f"{url}/ws?width=80&height=24", headers=headers)
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status
        await ws.close()
        return 101


def test_without_a_login_or_from_a_foreign_page_nothing_is_served(served: Served) -> None:
    url = served.url

    async def check() -> None:
        async with aiohttp.ClientSession() as session:
            page = await session.get(f"{url}/", allow_redirects=False)
            assert (302, f"{url}/login") == (page.status, page.headers["Location"])
            script = await session.get(f"{url}/static/js/textual.js", allow_redirects=False)
            assert 401 == script.status
            login_page = await session.get(f"{url}/login")
            assert 200 == login_page.status
        assert 401 == await _ws_status(url, url, None)

        wrong = await _login(url, "maria", "not her password", url)
        assert (401, None) == (wrong.status, wrong.cookies.get("desk_session"))
        foreign_login = await _login(url, "maria", PASSWORD, "http://evil.example")
        assert 403 == foreign_login.status

        ok = await _login(url, "maria", PASSWORD, url)
        assert (302, f"{url}/") == (ok.status, ok.headers["Location"])
        set_cookie = ok.headers["Set-Cookie"]
        assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
        cookie = f"desk_session={ok.cookies['desk_session'].value}"
        assert 403 == await _ws_status(url, "http://evil.example", cookie)
        assert 403 == await _ws_status(url, "http://localhost:1", cookie)
        assert 101 == await _ws_status(url, url, cookie)
        assert 401 == await _ws_status(url, url, "desk_session=made-up")

    asyncio.run(check())


def test_behind_a_proxy_only_the_public_origin_connects_and_the_cookie_is_secure(
    tmp_path: Path,
) -> None:
    public = "https://desk.example.com"
    with serving(tmp_path, "--public-url", f"{public}/") as served:
        url = served.url

        async def check() -> None:
            async with aiohttp.ClientSession() as session:
                page = await session.get(f"{url}/", allow_redirects=False)
                assert f"{public}/login" == page.headers["Location"]
            assert 403 == (await _login(url, "maria", PASSWORD, url)).status
            ok = await _login(url, "maria", PASSWORD, public)
            assert (302, f"{public}/") == (ok.status, ok.headers["Location"])
            assert "Secure" in ok.headers["Set-Cookie"]
            cookie = f"desk_session={ok.cookies['desk_session'].value}"
            assert 403 == await _ws_status(url, url, cookie)
            assert 101 == await _ws_status(url, public, cookie)

        asyncio.run(check())


def _needs_chromium():
    """Playwright's sync API, or a skip (a failure with DESK_REQUIRE_CHROMIUM=1)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not CHROMIUM.exists():
        message = "Chromium (/usr/bin/chromium) and the playwright package are needed"
        if os.environ.get("DESK_REQUIRE_CHROMIUM") == "1":
            pytest.fail(message + " but DESK_REQUIRE_CHROMIUM=1", pytrace=False)
        pytest.skip(message)
    return sync_playwright


def test_chromium_logs_in_sees_the_tickets_and_acts_as_that_agent(served: Served) -> None:
    sync_playwright = _needs_chromium()
    screen: list[str] = []  # the desk's output as the page receives it
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on(
                "websocket",
                lambda ws: ws.on(
                    "framereceived",
                    lambda frame: screen.append(
                        frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
                    ),
                ),
            )
            page.goto(served.url)
            assert page.url == f"{served.url}/login"
            page.fill("#agent", "maria")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{served.url}/")
            page.wait_for_selector(".xterm", timeout=30_000)
            deadline = time.monotonic() + 60

            def wait_for_text(text: str) -> None:
                while text not in "".join(screen):
                    assert time.monotonic() < deadline, f"{text!r} never reached the page"
                    page.wait_for_timeout(100)

            wait_for_text(SUBJECT)  # the ticket list
            page.locator(".xterm-helper-textarea").focus()  # keys to the terminal, no click
            page.keyboard.press("a")  # assign; the dialog offers the agent who is logged in
            wait_for_text("Assign #1 to")
            page.keyboard.press("Enter")
            assignee = None
            while assignee != "maria":
                assert time.monotonic() < deadline, f"assignee is {assignee!r}, not maria"
                page.wait_for_timeout(200)
                with sqlite3.connect(served.db) as db:
                    (assignee,) = db.execute("SELECT assignee FROM ticket").fetchone()
        finally:
            browser.close()
    with sqlite3.connect(served.db) as db:
        events = db.execute("SELECT actor FROM ticket_event WHERE action = 'assignee'").fetchall()
    assert [("maria",)] == events  # the audit trail names the login, not the config's agent


def test_a_stale_temporary_password_file_does_not_loosen_the_new_one(tmp_path):
    users = tmp_path / "serve-users"
    stale = tmp_path / "serve-users.tmp"
    stale.write_text("")
    stale.chmod(0o644)
    serve_login.write_users(users, {"maria": "scrypt$x"})
    assert 0o600 == stat.S_IMODE(users.stat().st_mode)
