"""The customer: `from:` in search, whole address or part, and the requester's other tickets,
on mail stored through the real store."""

from __future__ import annotations

from db.mailin.model import Delivery
from db.mailin.store import store_batch
from db.tickets import customer, merge, search, tickets
from ingest.parse import parse
from tests.conftest import mail


def put(db, raw: bytes) -> int:
    msg = parse(raw)
    (stored,) = store_batch(db, [(msg, Delivery("src", msg.sha256, ("technical",)))])
    return stored.ticket_id


def found(db, query: str) -> tuple[list[int], list[str]]:
    q = search.parse(query, "maria")
    condition, params = search.where(q)
    return sorted(t["id"] for t in tickets.page(db, condition, params, "newest", 0, 50)), q.problems


def test_from_finds_the_tickets_with_mail_from_an_address_or_part_of_it(db):
    ann = put(db, mail(subject="Printer", sender="Ann Example <ann@example.com>"))
    carl = put(db, mail(subject="Scanner", sender="carl@example.com"))
    bob = put(db, mail(subject="Invoice", sender="bob@other.org", message_id="<i1@other.org>"))
    # Bob's colleague Annmarie answers in Bob's ticket: it has mail from her too.
    put(db, mail(subject="Re: Invoice", sender="annmarie@other.org",
                 headers={"In-Reply-To": "<i1@other.org>"}))  # fmt: skip
    assert ([bob], []) == found(db, "from:annmarie@other.org")
    assert ([ann], []) == found(db, "from:ann@example.com")
    assert ([ann, carl], []) == found(db, "from:example.com")
    assert ([ann], []) == found(db, "from:ann@exa")  # still typing
    assert ([ann], []) == found(db, "from:example printer")
    assert ([bob], []) == found(db, "from:BOB@other.org")
    assert ([], []) == found(db, 'from:"ann" OR x')  # typed text is never FTS syntax
    assert (
        sorted([ann, carl, bob]),
        ["from:@ ignored: give an address or part of one, e.g. from:ann"],
    ) == (found(db, "from:@"))


def test_the_requesters_other_tickets_open_first_without_merged_ones(db):
    first = put(db, mail(subject="One", sender="ann@example.com"))
    second = put(db, mail(subject="Two", sender="ann@example.com"))
    third = put(db, mail(subject="Three", sender="ann@example.com"))
    fourth = put(db, mail(subject="Four", sender="ann@example.com"))
    put(db, mail(subject="Not hers", sender="bob@example.com"))
    tickets.update(db, fourth, tickets.get(db, fourth)["version"], "maria", status="closed")
    merge.merge(db, third, second, "maria")

    info = customer.other_tickets(db, tickets.get(db, first))
    assert ("ann@example.com", 2, 1) == (info["addr"], info["count"], info["open"])
    assert [second, fourth] == [t["id"] for t in info["tickets"]]
    of_fourth = customer.other_tickets(db, tickets.get(db, fourth))["tickets"]
    assert [second, first] == [t["id"] for t in of_fourth]  # the newest activity first
