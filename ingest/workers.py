"""The parse worker processes: started with the daemon, and ended with it however it ends.

A worker is a forked copy of the daemon (≈ 80 MB, holding the database open). Left alone it
would outlive a daemon killed with `kill -9`: it waits on a queue whose other end it holds
itself. So each worker, as it starts, asks Linux to kill it when the daemon dies
(`prctl(PR_SET_PDEATHSIG, SIGKILL)`, prctl(2)), and watches for a new parent once a second as
well, for other systems and for the instant before the prctl. A SIGTERM ends a worker, as it
ends any process that does not say otherwise.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor

log = logging.getLogger("desk.ingest")
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCH_SECONDS = 1.0  # how often a worker looks whether the daemon is still its parent


def parse_workers() -> int:
    """One parse worker a core this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def make_pool() -> Executor | None:
    """Worker processes for parsing, all started now; None on one core, where they only cost.

    Call it from the thread that outlives the pool (the daemon's main thread): Linux sends
    the parent-death signal when the *thread* that forked a worker ends, not the process.
    """
    workers = parse_workers()
    if workers <= 1:
        return None
    pool = ProcessPoolExecutor(
        max_workers=workers, initializer=_bind_to_parent, initargs=(os.getpid(),)
    )
    # The first task forks every worker from this thread (the "fork" start method); other
    # start methods start one a task while none is idle.
    for started in [pool.submit(os.getpid) for _ in range(workers)]:
        started.result()
    return pool


def _bind_to_parent(parent: int) -> None:
    """Run first in each worker: end with `parent`; end on SIGTERM; leave Ctrl-C to the daemon."""
    # Forked with the daemon's handler, which would only set the worker's own copy of the
    # stop flag: that is how workers came to ignore SIGTERM.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Ctrl-C reaches the whole process group; the daemon then finishes the batch the workers
    # are parsing, and ends them itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _kill_me_with_parent()
    if os.getppid() != parent:  # it died before the prctl took effect
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), name="watch-parent", daemon=True).start()


def _kill_me_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return  # the watch thread alone ends the worker
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return
    if prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        log.debug("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(WATCH_SECONDS)
    os._exit(1)  # no cleanup: the daemon that would wait for it is gone
