"""systemd's notify protocol: telling a service manager that desk-ingest is ready, how it is
doing, that it is alive (the watchdog), and that it is stopping.

The protocol is sd_notify(3): newline-separated `KEY=VALUE` lines in one datagram to the
AF_UNIX socket named by `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace); the
watchdog interval is `$WATCHDOG_USEC`, meant for the process `$WATCHDOG_PID` if that is set.
It is a dozen lines, so we speak it here rather than depend on the `sdnotify` package, which has
had no release since 2017 and hides send errors. Without `$NOTIFY_SOCKET` (not under systemd,
or `Type=simple`) every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("desk.notify")


class Notifier:
    """The service manager's notify socket, if there is one; `send()` never raises."""

    def __init__(self, environ: dict[str, str] | os._Environ[str] = os.environ) -> None:
        address = environ.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.socket: socket.socket | None = None
        if self.address:
            self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        usec = environ.get("WATCHDOG_USEC", "")
        ours = environ.get("WATCHDOG_PID", str(os.getpid())) == str(os.getpid())
        # sd_watchdog_enabled(3) advises a keep-alive at half the interval.
        self.watchdog_seconds = int(usec) / 2e6 if usec.isdigit() and ours else None

    def send(self, **fields: str | int) -> None:
        """Send `fields` as `KEY=VALUE` lines (`READY=1`, `STATUS=...`, `WATCHDOG=1`,
        `STOPPING=1`); a failure is logged, never raised: the service runs on without it."""
        if self.socket is None:
            return
        # One line a field: a STATUS with a newline in it (an error text) would end it early.
        text = "\n".join(f"{key}={' '.join(str(value).split())}" for key, value in fields.items())
        try:
            self.socket.sendto(text.encode(), self.address)
        except OSError as exc:
            log.warning("cannot tell the service manager %s: %s", text.splitlines()[0], exc)

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
