"""A real SMTP server for the tests: aiosmtpd on a free loopback port, recording what it accepts.

Its behaviour per mail is set by the test: accept, defer with 4xx a number of times, refuse with
5xx, or hold the DATA reply until released (to kill the client while a mail is in hand). Like a
real MTA, a mail whose client went away before the final reply is not delivered.
"""

from __future__ import annotations

import asyncio
import email
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from email.policy import default
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.dovecot import generate_cert


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt: list[str]
    raw: bytes

    @property
    def message(self) -> Message:
        return email.message_from_bytes(self.raw, policy=default)


@dataclass
class Handler:
    """What the server does with each mail; the fields may be changed while it runs."""

    delivered: list[Received] = field(default_factory=list)
    defer: int = 0  # answer this many DATA commands with 451 first
    refuse: bool = False  # answer 550 to every mail
    hold: threading.Event | None = None  # wait for it before answering DATA …
    hold_after: int = 0  # … once this many mails were delivered
    on_delivery: Callable[[Received], None] | None = None
    refuse_rcpt: set[str] = field(default_factory=set)  # refused at RCPT TO with 550
    refuse_sender: bool = False  # answer MAIL FROM with 553
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_MAIL(self, server, session, envelope, address, mail_options) -> str:
        if self.refuse_sender:
            return "553 5.7.1 Sender address rejected (test server)"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address in self.refuse_rcpt:
            return "550 5.1.1 No such user (test server)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        with self.lock:
            self.attempts += 1
            if self.refuse:
                return "550 5.7.1 Mailbox unavailable (test server)"
            if self.defer:
                self.defer -= 1
                return "451 4.3.0 Try again later (test server)"
        while self.hold is not None and not self.hold.is_set() and self._held():
            await asyncio.sleep(0.01)  # a client gone meanwhile cancels this: nothing delivered
        if server.transport is None or server.transport.is_closing():
            return "421 4.4.2 client went away"
        got = Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        with self.lock:
            self.delivered.append(got)
        if self.on_delivery is not None:
            self.on_delivery(got)
        return "250 2.0.0 OK (test server)"

    def _held(self) -> bool:
        with self.lock:
            return len(self.delivered) >= self.hold_after

    def message_ids(self) -> list[str]:
        with self.lock:
            return [r.message["Message-ID"] for r in self.delivered]

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.delivered) >= count:
                    return list(self.delivered)
            time.sleep(0.02)
        raise AssertionError(f"{len(self.delivered)} mail(s) arrived, {count} expected")


class SmtpServer:
    """The server; with `tls` (a folder for its CA and certificate) it speaks STARTTLS, or
    implicit TLS with `implicit`, and requires a login as `user` with `password`."""

    def __init__(
        self,
        port: int | None = None,
        *,
        tls: Path | None = None,
        implicit: bool = False,
        user: str = "desk",
        password: str = "s3cret",
    ) -> None:
        self.handler = Handler()
        self.port = port or free_port()
        self.controller: Controller | None = None
        self.tls, self.implicit, self.user, self.password = tls, implicit, user, password
        self.ca_file: Path | None = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        ) == (self.user, self.password)
        return AuthResult(success=ok, handled=False)  # handled=False: it answers 535

    def start(self) -> SmtpServer:
        options: dict[str, object] = {}
        if self.tls is not None:
            self.ca_file, ca_key = generate_cert(self.tls, "SMTP Test CA")
            cert, key = generate_cert(
                self.tls, "127.0.0.1", ca=(self.ca_file, ca_key), sans=("IP:127.0.0.1",)
            )
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            auth = {"authenticator": self._authenticate, "auth_required": True}
            if self.implicit:
                # aiosmtpd sees no STARTTLS here and would hide AUTH; the socket is TLS already.
                options = {"ssl_context": context, "auth_require_tls": False, **auth}
            else:
                options = {"tls_context": context, "require_starttls": True, **auth}
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **options)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def toml(self, **extra: object) -> str:
        """The `[smtp]` table pointing at this server (plain SMTP unless `extra` says)."""
        keys = {"host": "127.0.0.1", "port": self.port, "security": "none", **extra}
        lines = [f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}" for k, v in keys.items()]
        return "[smtp]\n" + "\n".join(lines) + "\n"


@pytest.fixture
def smtp_server():
    server = SmtpServer().start()
    yield server
    server.stop()
