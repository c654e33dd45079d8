"""A real SMTP server for the tests: aiosmtpd on a free loopback port, recording what it accepts.

Its behaviour per mail is set by the test: accept, defer with 4xx a number of times, refuse with
5xx, or hold the DATA reply until released (to kill the client while a mail is in hand). Like a
real MTA, a mail whose client went away before the final reply is not delivered.
"""

from __future__ import annotations

import asyncio
import email
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from email.policy import default

import pytest
from aiosmtpd.controller import Controller


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
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

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
    def __init__(self, port: int | None = None) -> None:
        self.handler = Handler()
        self.port = port or free_port()
        self.controller: Controller | None = None

    def start(self) -> SmtpServer:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def toml(self, **extra: object) -> str:
        """The `[smtp]` table pointing at this server (plain SMTP: it is on loopback)."""
        lines = ["[smtp]", 'host = "127.0.0.1"', f"port = {self.port}", 'security = "none"']
        lines += [f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in extra.items()]
        return "\n".join(lines).replace("'", '"') + "\n"


@pytest.fixture
def smtp_server():
    server = SmtpServer().start()
    yield server
    server.stop()
