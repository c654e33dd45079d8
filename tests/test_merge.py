"""Merging and splitting tickets on a real database filled by the daemon from a Maildir: what
moves, what the audit trails say, where later mail threads, and undoing a merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from db.core import clock
from db.core import config as config_module
from db.core.connect import open_db
from db.core.errors import ConflictError, DeskError
from db.tickets import merge, stats, tickets
from ingest import daemon
from tests.conftest import drop, mail, write_config_file
from tests.windows_helpers import desk


@pytest.fixture
def config(tmp_path: Path) -> config_module.Config:
    return config_module.load(write_config_file(tmp_path))


@pytest.fixture
def db(config):
    database = open_db(config.database)
    yield database
    database.close()


def ingest(tmp_path: Path, config, *mails: bytes, function: str = "technical") -> None:
    """Deliver `mails` to a function's Maildir and let the daemon read them once."""
    for raw in mails:
        drop(tmp_path, function, raw)
    daemon.run(config, once=True)


def ticket_of(db, message_id: str) -> int:
    return db.execute(
        "SELECT ticket_id FROM message WHERE message_id = ?", [message_id]
    ).fetchone()[0]


def state(db, number: int) -> dict:
    """What a merge moves and unmerge must put back, as a person would compare it."""
    t = tickets.get(db, number)
    return {
        "messages": [m["id"] for m in tickets.thread(db, number)],
        "notes": [e["detail"]["text"] for e in tickets.events(db, number) if e["action"] == "note"],
        "participants": sorted(
            a
            for (a,) in db.execute(
                "SELECT addr FROM ticket_participant WHERE ticket_id = ?", [number]
            )
        ),  # fmt: skip
        "functions": sorted(t["functions"]),
        "tags": json.loads(t["tags"]),
        "status": t["status"],
        "message_count": t["message_count"],
        "merged_into": t["merged_into"],
    }


def actions(db, number: int) -> list[tuple[str, str, dict]]:
    return [(e["actor"], e["action"], e["detail"]) for e in tickets.events(db, number)]


@pytest.fixture
def two(tmp_path, config, db) -> tuple[int, int]:
    """Ann's printer case twice: A by mail to technical@, B by mail to sales@ with Bob in Cc,
    a note and a tag on each."""
    ingest(tmp_path, config, mail(
        subject="Printer jams", sender="Ann <ann@example.com>", message_id="<a1@example.com>"
    ))  # fmt: skip
    ingest(
        tmp_path,
        config,
        mail(
            subject="Printer still jams",
            sender="Ann <ann@example.com>",
            message_id="<b1@example.com>",
            to="sales@valuit.com",
            headers={"Cc": "bob@example.com"},
        ),
        function="sales",
    )
    a, b = ticket_of(db, "<a1@example.com>"), ticket_of(db, "<b1@example.com>")
    tickets.add_note(db, a, "maria", "asked for the model")
    tickets.add_note(db, b, "maria", "same printer as before")
    tickets.update(db, a, tickets.get(db, a)["version"], "maria", tags=["printer"])
    tickets.update(db, b, tickets.get(db, b)["version"], "maria", tags=["printer", "vip"])
    return a, b


def test_a_merge_moves_everything_and_later_replies_to_the_merged_ticket_land_in_the_target(
    tmp_path, config, db, two
):
    a, b = two
    merge.merge(db, b, a, "maria")

    after_a, after_b = state(db, a), state(db, b)
    assert 2 == after_a["message_count"] == len(after_a["messages"])
    assert ["asked for the model", "same printer as before"] == after_a["notes"]
    assert ["ann@example.com", "bob@example.com", "sales@valuit.com", "technical@valuit.com"] == (
        after_a["participants"]
    )
    assert ["sales", "technical"] == after_a["functions"]
    assert ["printer", "vip"] == after_a["tags"]
    assert ([], [], "closed", 0, a) == (
        after_b["messages"], after_b["notes"], after_b["status"], after_b["message_count"],
        after_b["merged_into"],
    )  # fmt: skip
    said = {"from": f"#{b}", "to": f"#{a}", "messages": 1}
    assert ("maria", "merge", said) == actions(db, a)[-1] == actions(db, b)[-1]

    # Ann answers the mail that opened B, and Bob writes with B's number in the subject only.
    ingest(tmp_path, config, mail(
        subject="Re: Printer still jams", sender="Ann <ann@example.com>",
        message_id="<b2@example.com>", headers={"In-Reply-To": "<b1@example.com>"},
    ))  # fmt: skip
    ingest(tmp_path, config, mail(
        subject=f"[#{b}] it jams on page 2", sender="bob@example.com",
        message_id="<b3@example.com>",
    ))  # fmt: skip
    assert (a, a) == (ticket_of(db, "<b2@example.com>"), ticket_of(db, "<b3@example.com>"))
    assert (4, 0) == (tickets.get(db, a)["message_count"], tickets.get(db, b)["message_count"])
    assert 2 == db.execute("SELECT count(*) FROM ticket").fetchone()[0]


def test_unmerge_puts_back_what_moved_and_keeps_what_came_since(tmp_path, config, db, two):
    a, b = two
    tickets.update(db, a, tickets.get(db, a)["version"], "maria", status="resolved")
    before_a, before_b = state(db, a), state(db, b)
    merge.merge(db, b, a, "maria")
    assert "open" == tickets.get(db, a)["status"]  # B was still open: so is the case
    ingest(tmp_path, config, mail(
        subject="Re: Printer jams", sender="Ann <ann@example.com>",
        message_id="<a2@example.com>", headers={"In-Reply-To": "<a1@example.com>"},
    ))  # fmt: skip

    assert a == merge.unmerge(db, b, "maria")

    after_a, after_b = state(db, a), state(db, b)
    assert before_b == after_b
    new = db.execute("SELECT id FROM message WHERE message_id = '<a2@example.com>'").fetchone()[0]
    assert {**before_a, "messages": [*before_a["messages"], new], "message_count": 2,
            "status": "open"} == after_a  # fmt: skip
    assert ("maria", "unmerge") == actions(db, b)[-1][:2] == actions(db, a)[-1][:2]
    assert [] == merge.merged_here(db, a)
    # Undone once is undone: there is nothing left to undo.
    with pytest.raises(DeskError, match="not merged"):
        merge.unmerge(db, b, "maria")


def test_unmerge_gives_the_target_its_settled_status_back_when_nothing_reopened_it(db, two):
    a, b = two
    tickets.update(db, a, tickets.get(db, a)["version"], "maria", status="closed")
    merge.merge(db, b, a, "maria")
    merge.unmerge(db, b, "maria")
    assert ("closed", "new") == (tickets.get(db, a)["status"], tickets.get(db, b)["status"])


def test_merges_that_make_no_sense_are_refused_with_what_to_do(tmp_path, config, db, two):
    a, b = two
    ingest(tmp_path, config, mail(subject="Another thing", message_id="<c1@example.com>"))
    c = ticket_of(db, "<c1@example.com>")
    with pytest.raises(DeskError, match="into itself"):
        merge.merge(db, a, a, "maria")
    with pytest.raises(ConflictError):
        merge.merge(db, b, a, "maria", version=tickets.get(db, b)["version"] - 1)
    merge.merge(db, b, a, "maria")
    with pytest.raises(DeskError, match=f"already merged into #{a}"):
        merge.merge(db, b, c, "maria")
    merge.merge(db, a, c, "maria")
    ingest(tmp_path, config, mail(subject="Yet another", message_id="<d1@example.com>"))
    d = ticket_of(db, "<d1@example.com>")
    with pytest.raises(DeskError, match=f"#{b} was merged into #{c}; merge #{d} into #{c}"):
        merge.merge(db, d, b, "maria")
    with pytest.raises(DeskError, match=f"#{b} was merged into #{c}; work on #{c}"):
        tickets.update(db, b, tickets.get(db, b)["version"], "maria", status="open")
    with pytest.raises(DeskError, match=f"#{b} was merged into #{c}"):
        tickets.add_note(db, b, "maria", "lost in a pointer")
    # B's mail now lands at the end of the chain.
    ingest(tmp_path, config, mail(
        subject="Re: Printer still jams", sender="Ann <ann@example.com>",
        message_id="<b2@example.com>", headers={"In-Reply-To": "<b1@example.com>"},
    ))  # fmt: skip
    assert c == ticket_of(db, "<b2@example.com>")
    with pytest.raises(DeskError, match=f"unmerge #{a} first"):
        merge.unmerge(db, b, "maria")


def test_a_split_message_takes_its_replies_to_the_new_ticket(tmp_path, config, db):
    ingest(tmp_path, config, mail(
        subject="Printer jams", sender="Ann <ann@example.com>", message_id="<p1@example.com>"
    ))  # fmt: skip
    old = ticket_of(db, "<p1@example.com>")
    # Ann answers her old mail, keeping our token, with a new question: it threads into `old`.
    ingest(tmp_path, config, mail(
        subject=f"Re: [#{old}] Printer jams", body="New question: my invoice is wrong.",
        sender="Ann <ann@example.com>", message_id="<p2@example.com>",
        headers={"In-Reply-To": "<p1@example.com>"},
    ))  # fmt: skip
    ingest(tmp_path, config, mail(
        subject=f"Re: [#{old}] Printer jams", body="And the invoice number is 7.",
        sender="Ann <ann@example.com>", message_id="<p3@example.com>",
        headers={"In-Reply-To": "<p2@example.com>"},
    ))  # fmt: skip
    assert old == ticket_of(db, "<p3@example.com>")
    second = db.execute("SELECT id FROM message WHERE message_id = '<p2@example.com>'").fetchone()

    new = merge.split(db, second[0], "maria", following=True)

    assert (new, new) == (ticket_of(db, "<p2@example.com>"), ticket_of(db, "<p3@example.com>"))
    t = tickets.get(db, new)
    assert ("Printer jams", "ann@example.com", "technical", 2, "open") == (
        t["subject"], t["requester_addr"], t["function"], t["message_count"], t["status"]
    )  # fmt: skip
    assert 1 == tickets.get(db, old)["message_count"]
    said = ("maria", "split", {"from": f"#{old}", "to": f"#{new}", "messages": [second[0],
            second[0] + 1]})  # fmt: skip
    assert said == actions(db, old)[-1] == actions(db, new)[-1]

    # Ann's colleague answers the split mail with the old ticket's token still in the subject.
    ingest(tmp_path, config, mail(
        subject=f"Re: [#{old}] Printer jams", sender="Ann <ann@example.com>",
        message_id="<p4@example.com>", headers={"In-Reply-To": "<p2@example.com>"},
    ))  # fmt: skip
    assert new == ticket_of(db, "<p4@example.com>")
    # Ann writes about the printer again with the token alone: it stays the old ticket's.
    ingest(tmp_path, config, mail(
        subject=f"Re: [#{old}] Printer jams", sender="Ann <ann@example.com>",
        message_id="<p5@example.com>",
    ))  # fmt: skip
    assert old == ticket_of(db, "<p5@example.com>")


def test_a_split_that_would_empty_the_ticket_is_refused(tmp_path, config, db):
    ingest(tmp_path, config, mail(message_id="<only@example.com>"))
    (message,) = db.execute("SELECT id FROM message").fetchone()
    with pytest.raises(DeskError, match="left empty"):
        merge.split(db, message, "maria", following=True)
    assert 1 == db.execute("SELECT count(*) FROM ticket").fetchone()[0]


def test_desk_ticket_show_merge_unmerge_and_split_on_the_command_line(
    tmp_path, config, db, two, capsys, monkeypatch
):
    a, b = two
    monkeypatch.setenv("DESK_USER", "olga")
    path = str(config.path)
    code, out, _ = desk(capsys, path, "ticket", "show", str(b))
    assert 0 == code
    assert f"#{b}  Printer still jams" in out
    assert f"the customer's other tickets (1, 1 open):\n  #{a}" in out

    assert (0, f"#{b} is merged into #{a}; `desk ticket unmerge {b}` undoes it.\n") == desk(
        capsys, path, "ticket", "merge", str(b), str(a)
    )[:2]
    assert ("olga", "merge") == actions(db, b)[-1][:2]
    code, out, _ = desk(capsys, path, "ticket", "show", str(b))
    assert out.startswith(f"#{b} was merged into #{a}.\n#{a}  Printer jams\n")
    assert f"merged in: #{b} by olga" in out
    shown = json.loads(desk(capsys, path, "ticket", "show", str(a), "--json")[1])
    assert [b] == [m["source_id"] for m in shown["merged_here"]]

    code, _, err = desk(capsys, path, "ticket", "merge", str(b), str(a))
    assert 2 == code and f"desk: #{b} is already merged into #{a}; unmerge it first" in err
    assert 0 == desk(capsys, path, "ticket", "unmerge", str(b))[0]
    assert (None, 1) == (tickets.get(db, b)["merged_into"], tickets.get(db, b)["message_count"])

    ingest(tmp_path, config, mail(
        subject="Re: Printer jams", body="Also: the scanner.", sender="Ann <ann@example.com>",
        message_id="<a2@example.com>", headers={"In-Reply-To": "<a1@example.com>"},
    ))  # fmt: skip
    shown = json.loads(desk(capsys, path, "ticket", "show", str(a), "--json")[1])
    message = shown["messages"][-1]["id"]
    code, out, _ = desk(capsys, path, "ticket", "split", str(message))
    new = ticket_of(db, "<a2@example.com>")
    assert (0, f"The new ticket is #{new}.\n") == (code, out)
    assert ("olga", "split") == actions(db, new)[-1][:2]


def test_the_sla_clocks_follow_a_merge_and_its_undoing(db, two):
    """A settled A reopened by a merge runs its resolution clock again; B, closed by it, stops
    its own and counts in no SLA figure; unmerged, each is as before."""
    a, b = two
    tickets.update(db, a, tickets.get(db, a)["version"], "maria", status="resolved")

    def clocks(number: int) -> tuple:
        t = tickets.get(db, number)
        return t["status"], t["sla_paused_at"] is not None, t["resolved_at"] is not None

    assert ("resolved", True, True) == clocks(a)
    merge.merge(db, b, a, "maria")
    assert (("open", False, False), ("closed", True, True)) == (clocks(a), clocks(b))
    sales = stats.sla_figures(db, clock.now_iso())["sales"]
    assert {"met": 0, "breached": 0} == sales["resolution"]  # B is counted in A, not as closed
    merge.unmerge(db, b, "maria")
    assert ("resolved", True, True) == clocks(a)
    assert ("new", False) == clocks(b)[:2]
