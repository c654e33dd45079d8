"""Search and export at scale: 100,000 tickets and 300,000 messages (bench/tui.py's database,
kept under var/bench/ and reused).

For each query, the time to the list's first page and its count, two ways in the same run:
as the desk did before (an exact count, then the page, matching tickets gathered and sorted)
and as it does now (the page and a count capped at 1,001 from one walk of the list's order,
`db.tickets.search.DENSE`). The baseline is the first page with no query. Then each sort
order the list offers, with no query and with a `from:` that every ticket matches. Then the peak
memory of `desk export --format json` over every ticket against that of a `desk search` that
lists one, both as processes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.tui import generate
from db.core.connect import open_db
from db.tickets import search, tickets

CAP = 1001
PAGE = 100
QUERIES = (
    "export",  # every ticket, every message
    "login",  # a third of the tickets
    "login is:unassigned",
    "fn:sales export",
    "from:example.com",  # every ticket's sender
    "from:user7@example.com",  # 20 tickets
    "fn:sales",
    "status:new fn:technical",
    "age:>30d",
    "case 12345",  # one ticket
    "1234",  # a prefix of a few
    "打印机",  # the trigram index (no such ticket here)
    "打印",  # two characters: the bounded scan of the newest messages
)


def _best(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return min(times)


def before(db, text: str) -> None:
    where = search.where(search.parse(text, "maria"))
    tickets.count(db, *where)
    tickets.page(db, *where, "newest", 0, PAGE)


def now(db, text: str, sort: str = "newest") -> None:
    where = search.where(search.parse(text, "maria"), None, db)
    tickets.first_page(db, *where, sort, PAGE, CAP)


def search_figures(path: Path) -> None:
    db = open_db(path, migrate=False)
    now(db, "")  # the first read of a cold file would count against the baseline
    baseline = _best(lambda: now(db, ""), runs=5)
    print(f"baseline: first page and count, no query: {baseline:.1f} ms")
    print(f"  {'tickets':>7}  {'before':>17}  {'now':>17}  query")
    for text in QUERIES:
        where = search.where(search.parse(text, "maria"), None, db)
        found = tickets.first_page(db, *where, "newest", PAGE, CAP)[1]
        old = _best(lambda text=text: before(db, text), runs=2)
        new = _best(lambda text=text: now(db, text))
        shown = "1,000+" if found >= CAP else f"{found:,}"
        # The query last: CJK characters take two columns and would shift the figures.
        print(
            f"  {shown:>7}  {old:7.1f} ms ×{old / baseline:6.1f}  "
            f"{new:7.1f} ms ×{new / baseline:6.1f}  {text}"
        )
    # The other orders the list offers, each through its own index (ticket_priority_sort).
    for sort in search.SORTS:
        for text in ("", "from:example.com"):
            ms = _best(lambda text=text, sort=sort: now(db, text, sort))
            print(f"  sorted by {sort:8}  {ms:7.1f} ms ×{ms / baseline:6.1f}  {text or '(all)'}")
    db.close()


def peak_rss_mb(args: list[str]) -> tuple[float, float]:
    """(peak resident memory in MB, seconds) of one process, from the kernel's accounting."""
    start = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{args} failed with {process.returncode}")
    return usage.ru_maxrss / 1024, time.perf_counter() - start


def export_figures(path: Path) -> None:
    desk = [str(Path(sys.executable).with_name("desk"))]
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "config.toml"
        config.write_text(f'[database]\npath = "{path.resolve()}"\n', encoding="utf-8")
        base, _ = peak_rss_mb([*desk, "--config", str(config), "search", "#1"])
        out = Path(folder) / "all.jsonl"
        peak, seconds = peak_rss_mb(
            [*desk, "--config", str(config), "export", "--format", "json", "--output", str(out)]
        )
        size = out.stat().st_size / 1e6
    print(f"baseline: peak memory of `desk search '#1'`: {base:.0f} MB")
    print(
        f"  desk export --format json, every ticket: peak {peak:.0f} MB (×{peak / base:.2f}), "
        f"{size:.0f} MB written in {seconds:.1f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/search.py", description=__doc__)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--db", type=Path, help="default: var/bench/tui-N.db (reused)")
    parser.add_argument("--no-export", action="store_true", help="skip the export's memory")
    args, _ = parser.parse_known_args(argv)  # the other benches' options pass through
    path = args.db or Path("var/bench") / f"tui-{args.tickets}.db"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        generate(path, args.tickets)
    started = time.perf_counter()
    open_db(path).close()  # a database from before the trigram index gets it here
    print(
        f"database: {path} ({path.stat().st_size / 1e6:.0f} MB; schema brought up to date in "
        f"{time.perf_counter() - started:.1f} s)"
    )
    search_figures(path)
    if not args.no_export:
        export_figures(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
