"""Login for `desk serve`: the agents' password file, browser sessions, and the guarded server.

The password file holds one `agent:scrypt$n$r$p$salt$hash` line per agent (hashlib.scrypt,
RFC 7914), is written owner-only by `desk serve passwd`, and is read at every login, so a new or
removed agent takes effect without a restart. A login gives the browser a random session cookie
(HttpOnly, SameSite=Strict, Secure behind https); the desk process each tab starts runs with
`DESK_USER` set to the agent who logged in, so the audit trail names them.

A session ends when it expires (`--session-hours`, 12, from the login) and when the agent's
password changes or is removed (`desk serve passwd`, another process: the session remembers the
hash it logged in with, and the file is watched), and the tabs it opened close with it. Logins
are throttled per agent and per client address (`tui.cli.serve_throttle`) and must come from
the desk's own login page (`Origin`, else `Referer`: OWASP's CSRF defence for a login form).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import hashlib
import hmac
import html
import logging
import os
import re
import secrets
import shlex
import stat
import tempfile
import time
from collections.abc import Sequence
from ipaddress import ip_address
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from textual_serve.server import Server

from db.core.errors import DeskError
from tui.cli import serve_status, serve_throttle

log = logging.getLogger(__name__)

COOKIE = "desk_session"
SESSION_HOURS = 12.0
FAILED_LOGIN_DELAY = 1.0  # seconds; with scrypt's cost, slows guessing from one client
CHECKS_AT_ONCE = 2  # scrypt checks running at a time (16 MiB and a core each); others wait
WATCH_SECONDS = 1.0  # how often open tabs are checked against their session
AGENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD = 8
# scrypt cost: 2**14 × 8 × 128 bytes = 16 MiB and ~50 ms a check, OWASP's floor for scrypt.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1

# The agent of the request being handled: set by the guard, read by `DeskServer.command`,
# which textual-serve reads in the same task when it starts the tab's desk process.
_agent: contextvars.ContextVar[str | None] = contextvars.ContextVar("agent", default=None)


def users_path(config_path: Path) -> Path:
    """The password file: `serve-users` beside the config file."""
    return config_path.parent / "serve-users"


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$hash`, salt and hash in base64."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    """Whether *password* matches a `hash_password` string; False for a malformed one."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=2 * 128 * int(n) * int(r) * int(p),
            dklen=len(expected),
        )
    except ValueError:
        return False
    return hmac.compare_digest(expected, actual)


def read_users(path: Path) -> dict[str, str]:
    """{agent: hash} from the password file.

    Raises DeskError when the file is missing or readable by others than its owner.
    """
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except FileNotFoundError:
        raise DeskError(
            f"{path} does not exist: add an agent with `desk serve passwd AGENT` first"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise DeskError(f"{path} is readable by others: run `chmod 600 {path}`")
    users = {}
    for line in text.splitlines():
        agent, sep, stored = line.partition(":")
        if sep and agent.strip():
            users[agent.strip()] = stored.strip()
    return users


def write_users(path: Path, users: dict[str, str]) -> None:
    """Replace the password file atomically, owner-only (0600) from its creation."""
    # A fresh file of our own (never one left behind, with its mode, or a planted link).
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.writelines(f"{agent}:{stored}\n" for agent, stored in sorted(users.items()))
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise


def check_agent_name(agent: str) -> str:
    """*agent* if it is a usable name (letters, digits, `._@-`), else DeskError."""
    if not AGENT_NAME.fullmatch(agent):
        raise DeskError(
            f"{agent!r} is not an agent name: use letters, digits, '.', '_', '@' or '-'"
        )
    return agent


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of *url* as a browser sends it in `Origin` (no default port)."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme}://{host}{port}"


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Valuit Desk: log in</title>
<style>body{{font-family:sans-serif;max-width:22em;margin:4em auto}}
label,input,button{{display:block;width:100%;margin:.3em 0}}.error{{color:#b00}}</style>
</head><body><h1>Valuit Desk</h1>{error}
<form method="post" action="login">
<label for="agent">Agent</label><input id="agent" name="agent" autocomplete="username" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Log in</button></form></body></html>
"""


def _fingerprint(stored: str) -> bytes:
    return hashlib.sha256(stored.encode()).digest()


class Sessions:
    """Logged-in browsers, in memory: random token → (agent, a fingerprint of the password hash
    they logged in with, expiry on the monotonic clock). `seconds` is a session's lifetime."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._sessions: dict[str, tuple[str, bytes, float]] = {}

    def start(self, agent: str, stored: str) -> str:
        """A new session of `agent`, who logged in against the hash `stored`; its token."""
        now = time.monotonic()
        for old in [t for t, (_, _, expires) in self._sessions.items() if expires < now]:
            del self._sessions[old]  # sessions never used again would otherwise pile up
        token = secrets.token_urlsafe(32)
        self._sessions[token] = (agent, _fingerprint(stored), now + self.seconds)
        return token

    def agent(self, token: str | None, users: dict[str, str]) -> str | None:
        """The agent of a live session, or None: an unknown or expired token, or an agent whose
        password in `users` ({agent: hash}) was changed or removed since the login (`desk serve
        passwd` writes a new salt even for the same password)."""
        if token is None or token not in self._sessions:
            return None
        agent, fingerprint, expires = self._sessions[token]
        current = users.get(agent)
        if (
            time.monotonic() > expires
            or current is None
            or not hmac.compare_digest(fingerprint, _fingerprint(current))
        ):
            del self._sessions[token]
            return None
        return agent


class DeskServer(Server):
    """textual-serve's Server behind a login: every route but `/login` and the users' status
    site (`/status`, read-only) needs a session, and the websocket also needs `Origin` to be the
    served origin (`--public-url`)."""

    def __init__(
        self,
        command: str,
        users: Path,
        status: serve_status.StatusSite | None = None,
        *,
        session_hours: float = SESSION_HOURS,
        public_routes: Sequence[web.RouteDef] = (),
        **kwargs,
    ) -> None:
        super().__init__(command, **kwargs)  # sets self.command: the property below
        self.proxied = kwargs.get("public_url") is not None
        self.users = users
        self.status = status  # the users' status site under /status, without a login
        self.public_routes = public_routes  # served without a login (one-click unsubscribe)
        self._public: set[web.AbstractRoute] = set()
        self.sessions = Sessions(session_hours * 3600)
        self.throttle = serve_throttle.Throttle()
        self._checks = asyncio.Semaphore(CHECKS_AT_ONCE)
        self._tabs: dict[asyncio.Task, str | None] = {}  # open websockets -> session token
        self._watch: asyncio.Task | None = None
        self.public_url = self.public_url.rstrip("/")
        self.origin = origin_of(self.public_url)
        self.secure = self.public_url.startswith("https:")
        self._unknown_agent_hash = hash_password(secrets.token_urlsafe(16))

    @property
    def command(self) -> str:  # type: ignore[override]
        """The tab's desk command, run as the agent who logged in (the shell reads the prefix)."""
        agent = _agent.get()
        if agent is None:
            return self._base_command
        return f"DESK_USER={shlex.quote(agent)} {self._base_command}"

    @command.setter
    def command(self, value: str) -> None:
        self._base_command = value

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._guard)
        app.router.add_get("/login", self.handle_login_page)
        app.router.add_post("/login", self.handle_login)
        # before the status site: its catch-all GET under /status would hide their pages
        self._public = set(app.router.add_routes(self.public_routes))
        if self.status is not None:
            self.status.add_routes(app)
        app.on_startup.append(self._start_watching)
        app.on_cleanup.append(self._stop_watching)
        return app

    async def _start_watching(self, app: web.Application) -> None:
        self._watch = asyncio.create_task(self._close_ended_tabs())

    async def _stop_watching(self, app: web.Application) -> None:
        if self._watch is not None:
            self._watch.cancel()

    async def _close_ended_tabs(self) -> None:
        """Close every open tab whose session ended (expired, password changed or removed):
        cancelling its websocket's handler makes textual-serve stop the tab's desk and close
        the socket, and the browser's next request meets the login."""
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            if not self._tabs:
                continue
            users = self._users_or_none()
            for task, token in list(self._tabs.items()):
                if self.sessions.agent(token, users) is None:
                    log.info("session ended: closing a tab")
                    del self._tabs[task]  # cancelled once: a second would cut its cleanup short
                    task.cancel()

    @web.middleware
    async def _guard(self, request: web.Request, handler) -> web.StreamResponse:
        if request.path == "/login" or serve_status.is_status(request.path):
            return await handler(request)
        if request.match_info.route in self._public:
            return await handler(request)
        if request.path == "/ws" and request.headers.get("Origin") != self.origin:
            log.warning("refused a websocket from Origin %r", request.headers.get("Origin"))
            raise web.HTTPForbidden(text="This desk does not accept connections from that page.")
        session = request.cookies.get(COOKIE)
        agent = self.sessions.agent(session, self._users_or_none())
        if agent is None:
            if request.path == "/":
                raise web.HTTPFound(f"{self.public_url}/login")
            raise web.HTTPUnauthorized(text="Log in first.")
        token = _agent.set(agent)
        task = asyncio.current_task()
        if request.path == "/ws" and task is not None:
            self._tabs[task] = session  # a tab: closed when its session ends
        try:
            return await handler(request)
        finally:
            _agent.reset(token)
            self._tabs.pop(task, None)

    def _users_or_none(self) -> dict[str, str]:
        try:
            return read_users(self.users)
        except (DeskError, OSError):
            log.exception("cannot read %s; refusing every login", self.users)
            return {}

    async def handle_login_page(self, request: web.Request, error: str = "") -> web.Response:
        shown = f'<p class="error">{html.escape(error)}</p>' if error else ""
        return web.Response(
            text=LOGIN_PAGE.format(error=shown),
            content_type="text/html",
            status=401 if error else 200,
            headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
        )

    def _from_login_page(self, request: web.Request) -> bool:
        """Whether a login POST comes from our own page: its `Origin`, or without one its
        `Referer`, is the served origin. Browsers send one of them with every form POST, so a
        request with neither is no browser's login and is refused too (OWASP CSRF Prevention
        Cheat Sheet, "Verifying origin with standard headers")."""
        origin = request.headers.get("Origin")
        if origin is None and "Referer" in request.headers:
            origin = origin_of(request.headers["Referer"])
        return origin == self.origin

    def _client(self, request: web.Request) -> str:
        """The client's address: behind the proxy (`--public-url`, a loopback peer) the one
        the proxy appended to X-Forwarded-For, which the client cannot forge; else the peer."""
        peer = request.remote or ""
        forwarded = request.headers.get("X-Forwarded-For", "")
        if self.proxied and forwarded:
            try:
                behind_proxy = ip_address(peer).is_loopback
            except ValueError:
                behind_proxy = False
            if behind_proxy:
                return forwarded.rsplit(",", 1)[-1].strip()
        return peer

    def _refuse_if_locked(self, agent: str, client: str, keys: tuple[str, str]) -> None:
        """Raise 429 with Retry-After while the agent or the client address is locked."""
        wait = self.throttle.wait(*keys)
        if wait > 0:
            log.warning("login for %r from %s refused: locked %.0f s more", agent, client, wait)
            raise web.HTTPTooManyRequests(
                text=f"Too many failed logins: try again in {wait:.0f} seconds.",
                headers={"Retry-After": str(int(wait) + 1)},
            )

    async def handle_login(self, request: web.Request) -> web.Response:
        if not self._from_login_page(request):
            raise web.HTTPForbidden(text="This desk does not accept logins from that page.")
        form = await request.post()
        agent, password = str(form.get("agent", "")).strip(), str(form.get("password", ""))
        client = self._client(request)
        keys = (f"agent:{agent}", f"addr:{client}")
        self._refuse_if_locked(agent, client, keys)  # before scrypt: a locked login costs no CPU
        stored = self._users_or_none().get(agent)
        loop = asyncio.get_running_loop()
        # An unknown agent costs the same scrypt as a known one: the answer's time does not tell
        # which agent names exist.
        async with self._checks:
            # Again in turn: guesses sent at once all passed the first look before any failed.
            self._refuse_if_locked(agent, client, keys)
            ok = await loop.run_in_executor(
                None, check_password, password, stored or self._unknown_agent_hash
            )
        if not ok or stored is None:
            log.warning("failed login for %r from %s", agent, client)
            self.throttle.failed(keys[0], serve_throttle.PER_AGENT)
            self.throttle.failed(keys[1], serve_throttle.PER_ADDRESS)
            await asyncio.sleep(FAILED_LOGIN_DELAY)
            return await self.handle_login_page(request, "Wrong agent name or password.")
        self.throttle.succeeded(*keys)
        log.info("%s logged in from %s", agent, client)
        response = web.HTTPFound(f"{self.public_url}/")
        response.set_cookie(
            COOKIE,
            self.sessions.start(agent, stored),
            max_age=max(1, int(self.sessions.seconds)),
            path="/",
            httponly=True,
            samesite="Strict",
            secure=self.secure,
        )
        raise response
