"""The desk at scale: 100,000 tickets and 300,000 messages.

Measures, on one generated database (kept under var/bench/ and reused): the time from starting
the app to its first rows on screen (Pilot), switching sections and filtering in the running
app, the list's SQL on its own (count, first page, a page deep down, a ticket's row), and the
process's peak memory before and after paging through 10,000 rows. The baseline for the SQL is a
full `SELECT` of the ticket table in the same run: what "loading the table" would cost.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import resource
import time
from datetime import timedelta
from pathlib import Path

from db.core import clock
from db.core.connect import open_db
from db.mailin.model import Delivery, Incoming
from db.mailin.store import store_batch
from db.tickets import search, tickets

FUNCTIONS = ("technical", "sales", "compliance", "general", "marketing")
END = "2026-11-26T12:00:00Z"


def _incoming(n: int, reply: int) -> Incoming:
    subject = f"Invoice {n} question about export" if n % 3 else f"Login problem {n}"
    raw = f"bench {n}/{reply}".encode()
    return Incoming(
        raw=raw,
        sha256=hashlib.sha256(raw).hexdigest(),
        message_id=f"<b{n}.{reply}@bench>",
        in_reply_to=f"<b{n}.0@bench>" if reply else None,
        from_addr=f"user{n % 5000}@example.com",
        from_name=f"User {n % 5000}",
        subject=("Re: " if reply else "") + subject,
        body_text=f"Hello, message {reply} about case {n}. The export failed again.",
    )


def generate(path: Path, count: int) -> None:
    """`count` tickets of 3 messages each, spread over 60 days ending at END."""
    db = open_db(path)
    end = clock.parse(END)
    span = timedelta(days=60).total_seconds()
    batch = 500
    started = time.perf_counter()
    for first in range(0, count, batch):
        ids = range(first, min(count, first + batch))
        os.environ["DESK_NOW"] = clock.iso(end - timedelta(seconds=span * (1 - first / count)))
        items = [
            (_incoming(n, r), Delivery("bench", f"{n}.{r}", (FUNCTIONS[n % 5],)))
            for r in range(3)
            for n in ids
        ]
        store_batch(db, items)
    os.environ.pop("DESK_NOW", None)
    db.close()
    print(f"generated {count} tickets in {time.perf_counter() - started:.0f} s", flush=True)


def _ms(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - start) * 1000


def _best(fn, *args, runs: int = 5) -> float:
    return min(_ms(fn, *args) for _ in range(runs))


def sql_figures(path: Path) -> None:
    db = open_db(path, migrate=False)
    everything = _best(lambda: db.execute("SELECT * FROM ticket").fetchall(), runs=2)
    print(f"baseline: SELECT * FROM ticket (what loading the table costs): {everything:.0f} ms")
    for query in ("", "fn:sales", "status:new fn:technical", "export", "login is:unassigned"):
        where = search.where(search.parse(query, "maria"))
        count_ms = _best(tickets.count, db, *where)
        total = tickets.count(db, *where)
        page_ms = _best(tickets.page, db, *where, "newest", 0, 100)
        deep_ms = _best(tickets.page, db, *where, "newest", max(0, total - 100), 100)
        print(
            f"  {query or '(all)':28} {total:>7} rows  count {count_ms:6.1f} ms  "
            f"first page {page_ms:6.1f} ms  last page {deep_ms:6.1f} ms"
        )
    where = search.where(search.parse(""))
    print(f"  row of a ticket (keyset) {_best(tickets.position, db, *where, 'newest', 50):.1f} ms")
    print(f"  open counts per function {_best(tickets.open_counts, db):.1f} ms")
    volume = _best(tickets.hourly_volume, db, clock.parse(END), 72)
    print(f"  tickets per hour, 72 h   {volume:.1f} ms")
    db.close()
    live_figures(path)


def _tick(db, where, sort: str, ticket_id: int, rows: int, seen_top) -> None:
    """What one live tick of the list reads (tui/widgets/ticket_list.py `_load`)."""
    tickets.count(db, *where)
    keys = tickets.sort_keys(db, *where, sort, ticket_id)
    cursor = tickets.count_before(db, *where, sort, keys)
    tickets.sort_keys(db, *where, sort)
    tickets.count_before(db, *where, sort, seen_top)
    if cursor > rows:
        tickets.around(db, *where, sort, keys, rows, rows + 1)
    else:
        tickets.page(db, *where, sort, 0, 100)


def live_figures(path: Path) -> None:
    """A live tick at the top and at row 50,000, against re-reading the cursor's pages by OFFSET
    (the list's way before the change feed) in the same run; and the change feed's own poll."""
    from db.tickets.live import Watcher

    db = open_db(path, migrate=False)
    where = search.where(search.parse(""))
    top = tickets.sort_keys(db, *where, "newest")
    total = tickets.count(db, *where)
    for label, row in (("the top", 0), ("row 50,000", total // 2)):
        ticket = tickets.page(db, *where, "newest", row, 1)[0]["id"]
        tick = _best(_tick, db, where, "newest", ticket, 40, top)
        page = row // 100

        def by_offset(ticket: int = ticket, row: int = row) -> None:
            tickets.count(db, *where)
            tickets.position(db, *where, "newest", ticket)
            for n in range(max(0, row - 40) // 100, (row + 40) // 100 + 1):
                tickets.page(db, *where, "newest", n * 100, 100)

        baseline = _best(by_offset)
        print(
            f"  live tick at {label:10}: {tick:6.1f} ms "
            f"(baseline, pages by OFFSET: {baseline:6.1f} ms; page {page})"
        )
    watcher = Watcher(path)
    db.execute("CREATE TABLE IF NOT EXISTS bench_poke (x)")
    db.conn.commit()
    poll = _best(watcher.changed)

    def poked() -> None:
        with db.conn:
            db.execute("INSERT INTO bench_poke VALUES (1)")
        watcher.changed()

    poke = _best(poked)
    print(f"  change feed: poll {poll:.2f} ms; a commit and the poll after it {poke:.2f} ms")
    watcher.close()
    db.execute("DROP TABLE bench_poke")
    db.close()


async def app_figures(path: Path, say: list[str], *, animate: bool = True) -> None:
    """Figures go to `say`: inside `run_test` Textual captures stdout."""
    from db.core.config import parse
    from tui.app import DeskApp
    from tui.widgets.ticket_list import TicketList

    # Absolute: a relative path would be taken from the config file's folder.
    config = parse({"database": {"path": str(path.resolve())}, "desk": {"agent": "maria"}}, path)
    started = time.perf_counter()
    app = DeskApp(config)
    if not animate:  # the tabs' underline glides ~250 ms; this measures the list alone
        app.animation_level = "none"
    async with app.run_test(size=(160, 50)) as pilot:
        listing = app.screen.query_one(TicketList)

        async def settle(generation: int) -> float:
            begin = time.perf_counter()
            while not (listing.generation == generation and listing.loaded and listing.current):
                await pilot.pause(0.002)
            return (time.perf_counter() - begin) * 1000

        while not (listing.loaded and listing.current):
            await pilot.pause(0.002)
        say.append(
            f"app start to first rows on screen: {(time.perf_counter() - started) * 1000:.0f} ms"
        )
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for label, keys in (("next section", ["right_square_bracket"]),) * 3:
            listing.loaded = False
            begin = time.perf_counter()
            await pilot.press(*keys)
            await settle(listing.generation)
            say.append(
                f"  {label}: list reloaded in {listing.last_load_ms:.0f} ms "
                f"(key to settled, incl. Pilot: {(time.perf_counter() - begin) * 1000:.0f} ms)"
            )
        await pilot.press("left_square_bracket", "left_square_bracket", "left_square_bracket")
        await settle(listing.generation)
        for query in ("fn:sales status:new", "export", "age:>30d is:unassigned"):
            listing.loaded = False
            begin = time.perf_counter()
            app.screen.apply_search(query)
            await settle(listing.generation)
            say.append(
                f"  filter {query!r}: list reloaded in {listing.last_load_ms:.0f} ms "
                f"({listing.total} rows; incl. Pilot {(time.perf_counter() - begin) * 1000:.0f} ms)"
            )
        app.screen.apply_search("")
        await settle(listing.generation)
        for _ in range(250):  # 10,000 rows of 40
            await pilot.press("pagedown")
        while listing.current is None:
            await pilot.pause(0.01)
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        say.append(
            f"  peak memory {rss_before / 1024:.0f} MB before, {rss_after / 1024:.0f} MB after "
            f"paging to row {listing.cursor} (pages held: {len(listing.pages)})"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/tui.py", description=__doc__)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--db", type=Path, help="default: var/bench/tui-N.db (reused)")
    parser.add_argument(
        "--no-animation",
        action="store_true",
        help="switch Textual's animations off (the tabs' underline glide)",
    )
    args = parser.parse_args(argv)
    path = args.db or Path("var/bench") / f"tui-{args.tickets}.db"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        generate(path, args.tickets)
    print(f"database: {path} ({path.stat().st_size / 1e6:.0f} MB)")
    sql_figures(path)
    said: list[str] = []
    asyncio.run(app_figures(path, said, animate=not args.no_animation))
    print("\n".join(said))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
