"""Keeping the daemon's resident memory flat in mailbox size (issue 12): glibc's malloc tuning.

Measured on a `desk-ingest --once` over 2,000 and 10,000 messages (mallinfo2), malloc kept
20 MiB freed but not given back after 2,000 messages and 32 MiB after 10,000, spread over one
arena per thread that allocates. Two documented glibc calls bound it: fewer arenas (mallopt(3)
M_ARENA_MAX), and handing free pages back to the system after each stored batch
(malloc_trim(3)). Elsewhere than glibc both do nothing. (The page caches of the sources'
connections, the other part that grew, are dropped by `db.core.connect.shrink_memory`.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("desk.ingest")
M_ARENA_MAX = -8  # <malloc.h>
ARENAS = 2  # the source threads share them; their batches are stored one at a time anyway


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        libc.malloc_trim, libc.mallopt  # noqa: B018 - glibc has both; musl and macOS do not
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def limit_arenas() -> None:
    """Let malloc keep at most ARENAS arenas; call before the threads start (an arena is made
    on a thread's first allocation, and never unmade)."""
    if _LIBC is not None and _LIBC.mallopt(M_ARENA_MAX, ARENAS) != 1:
        log.debug("mallopt(M_ARENA_MAX) refused")


def trim() -> None:
    """Give the free pages of every malloc arena back to the system (malloc_trim(0))."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
