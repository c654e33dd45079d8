"""Throttling `desk serve` logins: failed attempts counted per agent and per client address,
and a lock that doubles with each failure past a free allowance.

While a key is locked its logins are refused at once, before scrypt runs, so neither guessing
nor burning the server's CPU with password checks pays (OWASP Authentication Cheat Sheet,
"Protect against automated attacks": exponential delays rather than a permanent lockout).
A success clears the agent's and the address's count; a key with no failure for `FORGET`
seconds starts again from zero. In memory, like the sessions: a restart lifts every lock.
"""

from __future__ import annotations

import time

PER_ADDRESS = 5  # failures from one client address before its logins are locked
PER_AGENT = 10  # failures against one agent, from anywhere, before that agent's are locked
LOCK_BASE = 30.0  # seconds of the first lock; each further failure doubles it
LOCK_MAX = 15 * 60.0
FORGET = 3600.0  # seconds after the last failure that a key's count is dropped
_MAX_KEYS = 10_000  # past this many keys, forgotten ones are swept out


class Throttle:
    """Failed logins per key (`agent:NAME`, `addr:IP`), on the monotonic clock."""

    def __init__(self) -> None:
        self._failures: dict[str, tuple[int, float, float]] = {}  # key -> (n, last, until)

    def wait(self, *keys: str) -> float:
        """Seconds until every one of `keys` may try again; 0 when none is locked."""
        now = time.monotonic()
        return max((self._failures.get(k, (0, 0.0, 0.0))[2] - now for k in keys), default=0.0)

    def failed(self, key: str, allowance: int) -> None:
        """Count a failure of `key`; past `allowance` failures in a row, lock it."""
        now = time.monotonic()
        if len(self._failures) > _MAX_KEYS:
            self._failures = {k: v for k, v in self._failures.items() if now - v[1] < FORGET}
        count, last, _ = self._failures.get(key, (0, now, 0.0))
        count = 1 if now - last >= FORGET else count + 1
        until = 0.0
        if count >= allowance:  # the exponent capped: LOCK_MAX is reached long before
            until = now + min(LOCK_MAX, LOCK_BASE * 2 ** min(count - allowance, 16))
        self._failures[key] = (count, now, until)

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)
