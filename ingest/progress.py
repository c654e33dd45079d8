"""Progress of a long sync: a log line every few seconds, and a bar on a terminal for `--once`.

Several sources may sync at once; their bars share one status line on stderr, redrawn in place.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TextIO

log = logging.getLogger("desk.ingest")
LONG_SYNC = 500  # fewer messages than this go by too fast to be worth reporting
LOG_EVERY = 5.0  # seconds between progress log lines
DRAW_EVERY = 0.2  # seconds between redraws of the bar
BAR_WIDTH = 24

_lock = threading.Lock()
_shown: dict[str, Progress] = {}


class Progress:
    """Counts messages read by one source out of `total`, and says so."""

    def __init__(self, name: str, total: int, *, bar: TextIO | None = None) -> None:
        self.name = name
        self.total = total
        self.done = 0
        self.bar = bar
        self.started = time.monotonic()
        self._logged = self._drawn = self.started
        log.info("%s: %d message(s) to read", name, total)
        if bar is not None:
            with _lock:
                _shown[name] = self

    def rate(self) -> float:
        return self.done / max(time.monotonic() - self.started, 1e-6)

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if self.bar is not None:
            if now - self._drawn >= DRAW_EVERY:
                self._drawn = now
                with _lock:
                    _draw(self.bar)
        elif now - self._logged >= LOG_EVERY:
            self._logged = now
            log.info(
                "%s: %d of %d read (%.0f msg/s)", self.name, self.done, self.total, self.rate()
            )

    def finish(self) -> None:
        elapsed = time.monotonic() - self.started
        if self.bar is not None:
            with _lock:
                _draw(self.bar, final=True)
                _shown.pop(self.name, None)
        log.info(
            "%s: read %d message(s) in %.1f s (%.0f msg/s)",
            self.name,
            self.done,
            elapsed,
            self.rate(),
        )


def _draw(stream: TextIO, *, final: bool = False) -> None:
    parts = []
    for p in _shown.values():
        filled = BAR_WIDTH * min(p.done, p.total) // max(p.total, 1)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        parts.append(f"{p.name} [{bar}] {p.done}/{p.total} {p.rate():.0f} msg/s")
    # \r and "erase line" redraw in place; the final newline keeps the last state on screen.
    stream.write("\r\x1b[K" + "  ".join(parts) + ("\n" if final else ""))
    stream.flush()
