"""`desk serve`'s login against a running server over HTTP: a new password ends the agent's
sessions and open tabs, failed logins lock the client address and then the agent before scrypt
runs, a login must come from the desk's own page, and a session expires with its tabs."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import aiohttp

from tests.test_serve import PASSWORD, desk, serving

PUBLIC = "https://desk.example.com"
NEW_PASSWORD = "a different passphrase"


async def _login(
    url: str, agent: str, password: str, headers: dict[str, str]
) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession() as session:
        return await session.post(
            f"{url}/login",
            data={"agent": agent, "password": password},
            headers=headers,
            allow_redirects=False,
        )


async def _cookie(url: str, password: str = PASSWORD, origin: str | None = None) -> str:
    ok = await _login(url, "maria", password, {"Origin": origin or url})
    assert 302 == ok.status
    return f"desk_session={ok.cookies['desk_session'].value}"


async def _page(url: str, cookie: str) -> int:
    async with aiohttp.ClientSession() as session:
        page = await session.get(f"{url}/", headers={"Cookie": cookie}, allow_redirects=False)
        return page.status


async def _until_closed(ws: aiohttp.ClientWebSocketResponse, seconds: float = 60) -> None:
    """Read the tab's frames until the server closes the websocket; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not ws.closed:
        left = deadline - time.monotonic()
        assert left > 0, "the tab stayed open"
        try:
            msg = await ws.receive(timeout=left)
        except TimeoutError:
            continue
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            return


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (a tab's desk, or the shell that starts it)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


async def _until(condition, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


def test_a_new_password_ends_the_agents_sessions_and_closes_her_open_tabs(tmp_path: Path) -> None:
    with serving(tmp_path) as served:
        url = served.url

        async def check() -> None:
            cookie = await _cookie(url)
            assert 200 == await _page(url, cookie)
            async with aiohttp.ClientSession() as session:
                ws = await session.ws_connect(
                    f"{url}/ws?width=80&height=24", headers={"Origin": url, "Cookie": cookie}
                )
                await _until(lambda: _children(served.pid), "the tab's desk never started")
                changed = await asyncio.to_thread(
                    desk, served.config, "serve", "passwd", "maria", stdin=NEW_PASSWORD + "\n"
                )
                assert 0 == changed.returncode, changed.stderr
                await _until_closed(ws)
            await _until(lambda: not _children(served.pid), "the tab's desk kept running")
            assert 302 == await _page(url, cookie)  # back to the login
            assert 401 == (await _login(url, "maria", PASSWORD, {"Origin": url})).status
            assert 200 == await _page(url, await _cookie(url, NEW_PASSWORD))

        asyncio.run(check())


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used (proc(5): fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_failed_logins_lock_the_address_then_the_agent_without_running_scrypt(
    tmp_path: Path,
) -> None:
    with serving(tmp_path, "--public-url", PUBLIC) as served:
        url = served.url

        def attempt(client: str, agent: str = "maria", password: str = "wrong guess!"):
            # Behind the TLS proxy, which appends the client's address to X-Forwarded-For.
            headers = {"Origin": PUBLIC, "X-Forwarded-For": f"10.9.9.9, {client}"}
            return _login(url, agent, password, headers)

        async def check() -> None:
            # Five failures from one address, each for another name: that address is locked,
            # even with maria's right password; others are not.
            for i in range(5):
                assert 401 == (await attempt("203.0.113.7", f"guess{i}")).status
            locked = await attempt("203.0.113.7", password=PASSWORD)
            assert 429 == locked.status
            assert 25 < int(locked.headers["Retry-After"]) <= 31
            assert 302 == (await attempt("203.0.113.8", password=PASSWORD)).status

            # Twelve guesses sent at once from one address: they cannot all slip past the lock
            # by arriving before the first failure; at most one more than five is tried.
            burst = await asyncio.gather(*[attempt("203.0.113.9", f"b{i}") for i in range(12)])
            statuses = sorted(r.status for r in burst)
            assert statuses.count(401) <= 6 and set(statuses) == {401, 429}, statuses

            # Ten failures against maria from ten addresses: maria is locked from anywhere.
            spread = [attempt(f"198.51.100.{i}") for i in range(10)]
            assert [401] * 10 == [r.status for r in await asyncio.gather(*spread)]
            assert 429 == (await attempt("192.0.2.1", password=PASSWORD)).status

            # Refused before the password check: sixty locked attempts cost no scrypt (at
            # 16 MiB and some 40 ms of CPU each here, they would cost over two seconds).
            before = _cpu_seconds(served.pid)
            locked = await asyncio.gather(*[attempt("192.0.2.2") for _ in range(60)])
            assert [429] * 60 == [r.status for r in locked]
            assert _cpu_seconds(served.pid) - before < 1.0

        asyncio.run(check())


def test_a_login_from_another_page_or_with_neither_origin_nor_referer_is_refused(
    tmp_path: Path,
) -> None:
    with serving(tmp_path) as served:
        url = served.url

        async def status(headers: dict[str, str]) -> int:
            return (await _login(url, "maria", PASSWORD, headers)).status

        async def check() -> None:
            assert 403 == await status({"Origin": "http://evil.example"})
            assert 403 == await status({"Origin": "null"})  # a sandboxed frame, a data: page
            assert 403 == await status({})  # no browser posts a form without either
            assert 403 == await status({"Referer": "http://evil.example/login"})
            assert 302 == await status({"Referer": f"{url}/login"})
            assert 302 == await status({"Origin": url})

        asyncio.run(check())


def test_a_session_expires_and_closes_its_open_tab(tmp_path: Path) -> None:
    with serving(tmp_path, "--session-hours", "0.002") as served:  # 7.2 seconds
        url = served.url

        async def check() -> None:
            cookie = await _cookie(url)
            async with aiohttp.ClientSession() as session:
                ws = await session.ws_connect(
                    f"{url}/ws?width=80&height=24", headers={"Origin": url, "Cookie": cookie}
                )
                await _until_closed(ws)
            assert 302 == await _page(url, cookie)

        asyncio.run(check())
