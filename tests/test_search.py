"""The query language: filters, free text through FTS5, and no user syntax ever raising."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from db.core import clock
from db.core.connect import open_db
from db.tickets import search, tickets
from tests.tui_helpers import NOW, build_config, fill


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = build_config(tmp_path_factory.mktemp("search")).database
    fill(path, 20)
    database = open_db(path)
    yield database
    database.close()


def ids(db, text: str, agent: str = "maria") -> list[int]:
    where = search.where(search.parse(text, agent), clock.parse(NOW))
    return [row["id"] for row in tickets.page(db, *where, "number", 0, 1000)]


def test_filters(db):
    assert [20, 15, 10, 5] == ids(db, "fn:technical")
    assert [20, 15, 10, 5] == ids(db, "FN:Technical status:new")
    assert [] == ids(db, "status:closed")
    assert 20 == len(ids(db, "is:unassigned"))
    assert [] == ids(db, "assignee:me")
    assert [] == ids(db, "is:discrepancy")
    assert [7] == ids(db, "#7")


def test_age(db):
    # Ticket n was created (20 - n) hours and 7 minutes before NOW.
    assert [20, 19] == ids(db, "age:<2h")
    assert 18 == len(ids(db, "age:>2h"))
    assert [] == ids(db, "age:<1m")


def test_free_text_is_searched_in_the_index(db):
    assert 18 == len(ids(db, "invoices"))  # all but the two hostile subjects
    assert [12] == ids(db, "question 12")
    assert 18 == len(ids(db, "invo"))  # the last word matches as a prefix while typing


def test_window_filters_parse(db):
    q = search.parse("is:during-window window:W3")
    assert q.during_window and 3 == q.window_id and [] == q.problems
    assert [] == ids(db, "is:during-window")


def test_mistakes_are_reported_and_ignored():
    q = search.parse("status:bogus age:soon is:weird window:x fn:")
    assert 4 == len(q.problems)
    assert "status:bogus ignored" in q.problems[0]
    assert q.age is None and q.statuses == []
    assert search.parse("re: http://x.y 10:30").words == ["re:", "http://x.y", "10:30"]


def test_fts_expression_quotes_everything():
    assert '"a" "OR" "b""c"*' == search.fts_expression(["a", "OR", 'b"c'])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
@example("window:\u00b2")  # a digit to str.isdigit, not to int()
@example("window:99999999999999999999")  # too big for SQLite's integers
@example("age:>999999w")  # before year 1
def test_no_user_text_raises(db, text):
    search_ids = ids(db, text)
    assert isinstance(search_ids, list)


def test_age_units():
    q = search.parse("age:>=3d")
    assert (">=", timedelta(days=3)) == q.age


def test_sorted_by_priority_a_tickets_row_and_its_neighbours_come_from_the_index(tmp_path):
    config = build_config(tmp_path)
    fill(config.database, 24)
    db = open_db(config.database)
    for number in range(1, 25):
        priority = ("low", "normal", "high", "urgent")[number % 4]
        tickets.update(db, number, tickets.get(db, number)["version"], "maria", priority=priority)
    where = search.where(search.parse(""), None, db)
    listed = [row["id"] for row in tickets.page(db, *where, "priority", 0, 100)]
    assert [23, 19, 15] == listed[:3]  # urgent first, newest activity first within it
    for row, number in enumerate(listed):
        assert row == tickets.position(db, *where, "priority", number)
        keys = tickets.sort_keys(db, *where, "priority", number)
        head, tail = tickets.around(db, *where, "priority", keys, 2, 3)
        assert listed[max(0, row - 2) : row + 3] == [r["id"] for r in head + tail]
    plan = " ".join(
        str(step)
        for step in db.execute(
            f"EXPLAIN QUERY PLAN SELECT t.id FROM ticket t ORDER BY {search.order_by('priority')}"
        )
    )
    assert "ticket_priority_sort" in plan  # read in order from the index, not sorted
    db.close()
