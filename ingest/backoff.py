"""Exponential backoff with jitter: 1 s, 2 s, 4 s … capped at 5 minutes unless the caller caps it
lower (the sources: `[ingest] retry_cap_seconds`, 60 s).

Jitter spreads the reconnects of several sources (and several desks on one mail server) so they
do not hammer a server that has just come back all in the same second.
"""

from __future__ import annotations

import random

FIRST_DELAY = 1.0
CAP = 300.0


def delay(failures: int, first: float, cap: float, rng: random.Random | None = None) -> float:
    """The wait after `failures` failures so far: half to all of first × 2^failures, capped."""
    nominal = min(cap, first * 2.0 ** min(failures, 32))
    return nominal * (rng or random).uniform(0.5, 1.0)


class Backoff:
    """The delay before the next attempt; `reset()` after a success starts over."""

    def __init__(
        self, first: float | None = None, cap: float | None = None, rng: random.Random | None = None
    ) -> None:
        # Read the module's values now, not at import, so a test can shorten them.
        self.first = FIRST_DELAY if first is None else first
        self.cap = CAP if cap is None else cap
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """Count one more failure and return how long to wait: half to all of the nominal delay."""
        wait = delay(self.failures, self.first, self.cap, self._rng)
        self.failures += 1
        return wait

    def reset(self) -> None:
        self.failures = 0
