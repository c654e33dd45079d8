"""The daemon hands the memory a stored batch freed back to the system (issue 12)."""

import sys
import threading

import pytest

from ingest import memory


def _rss_anon_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise AssertionError("no RssAnon in /proc/self/status")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc only")
def test_trim_gives_freed_mail_back_to_the_system():
    # As a source thread does: a batch's worth of mail in malloc'd blocks, then all of it freed
    # but a few blocks that stay alive (a message id kept, a cache entry) and pin the heap.
    found: dict[str, int] = {}

    def batch() -> None:
        blocks = [bytes(1000) + i.to_bytes(4, "big") for i in range(60_000)]
        kept = blocks[::64]
        found["held"] = _rss_anon_kib()
        del blocks
        found["freed"] = _rss_anon_kib()
        memory.trim()
        found["trimmed"] = _rss_anon_kib()
        del kept

    thread = threading.Thread(target=batch)
    thread.start()
    thread.join()
    # 60 MB were held; without the trim nearly all of it stays resident after the free.
    assert found["freed"] - found["trimmed"] > 30 * 1024, found
