"""SLA targets (issue 15): business-time arithmetic across weekends, holidays and DST, `[sla]`
checked with one-line errors, due times on real SQLite files recomputed when priority, function
or status change, the list's `!` only on overdue tickets and the breached section, and the
figures of `desk stats --json`."""

from __future__ import annotations

import json
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlite_utils

from db.core import clock, migrations, sla
from db.core import config as config_module
from db.core.config import MailOut
from db.core.connect import open_db, write
from db.core.errors import ConfigError
from db.tickets import replies, search, tickets
from tests.tui_helpers import NOW, build_config, deliver, line_text, mail, until
from tui.app import DeskApp
from tui.cli import main
from tui.screens.ticket import TicketScreen
from tui.widgets.ticket_list import TicketList

BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = sla.Calendar(zone="Europe/Berlin")  # Monday to Friday, 09:00-18:00
ROUND_THE_CLOCK = sla.Calendar(zone="Europe/Berlin", weekdays=tuple(range(7)), opens=0, closes=1440)
SENDERS = MailOut(senders={"technical": "Valuit Technical <technical@valuit.com>"})


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


# ---- business time ----------------------------------------------------------------------------


def test_four_business_hours_from_friday_evening_end_on_monday_at_half_past_twelve():
    assert berlin(2026, 11, 30, 12, 30) == OFFICE.add(berlin(2026, 11, 27, 17, 30), 240)
    assert 240 == OFFICE.minutes_between(berlin(2026, 11, 27, 17, 30), berlin(2026, 11, 30, 12, 30))


def test_mail_at_night_or_at_the_weekend_waits_for_opening_time():
    assert berlin(2026, 11, 30, 10, 0) == OFFICE.add(berlin(2026, 11, 28, 23, 0), 60)
    assert berlin(2026, 11, 26, 10, 0) == OFFICE.add(berlin(2026, 11, 26, 6, 0), 60)


def test_public_holidays_and_closed_dates_are_not_business_time():
    berlin_office = sla.Calendar(zone="Europe/Berlin", country="DE", subdivision="BE")
    # Christmas Day and Boxing Day (Friday and Saturday), then Sunday: Thursday 17:00 + 2 h.
    assert berlin(2026, 12, 28, 10, 0) == berlin_office.add(berlin(2026, 12, 24, 17, 0), 120)
    # Whit Monday 2026 is 25 May in all of Germany; International Women's Day only in Berlin.
    assert berlin(2026, 5, 26, 10, 0) == berlin_office.add(berlin(2026, 5, 22, 17, 0), 120)
    assert berlin(2027, 3, 9, 10, 0) == berlin_office.add(berlin(2027, 3, 5, 17, 0), 120)
    bavaria = sla.Calendar(zone="Europe/Berlin", country="DE", subdivision="BY")
    assert berlin(2027, 3, 8, 10, 0) == bavaria.add(berlin(2027, 3, 5, 17, 0), 120)
    closing_day = sla.Calendar(zone="Europe/Berlin", closed=("2026-12-31",))
    assert berlin(2027, 1, 1, 10, 0) == closing_day.add(berlin(2026, 12, 30, 17, 0), 120)


def test_office_hours_stay_local_across_the_change_of_clocks():
    # Europe/Berlin leaves summer time on Sunday 25 October 2026: Friday 17:00 CEST + 2 h is
    # Monday 10:00 CET, 3 h later in UTC than the same wall time a week before.
    assert berlin(2026, 10, 26, 10, 0) == OFFICE.add(berlin(2026, 10, 23, 17, 0), 120)
    assert datetime(2026, 10, 26, 9, 0, tzinfo=UTC) == OFFICE.add(berlin(2026, 10, 23, 17, 0), 120)


def test_a_day_without_an_hour_is_23_hours_long_round_the_clock():
    # Summer time starts on Sunday 29 March 2026 at 02:00: 24 business hours from Saturday noon
    # are 24 real hours, so the wall clock shows 13:00 on Sunday.
    start = berlin(2026, 3, 28, 12, 0)
    assert berlin(2026, 3, 29, 13, 0) == ROUND_THE_CLOCK.add(start, 24 * 60)
    assert 23 * 60 == ROUND_THE_CLOCK.minutes_between(
        berlin(2026, 3, 29, 0, 0), berlin(2026, 3, 30, 0, 0)
    )


# ---- configuration ----------------------------------------------------------------------------


def parse_sla(table: dict) -> sla.Policy:
    data = {"database": {"path": "desk.db"}, "desk": {"timezone": "Europe/Berlin"}, "sla": table}
    return config_module.parse(data, Path("/etc/desk/config.toml")).sla


def test_sla_section_sets_targets_calendars_and_function_overrides():
    policy = parse_sla(
        {
            "country": "de",
            "subdivision": "be",
            "first_response": {"urgent": "30m", "normal": "1h30m"},
            "technical": {"hours": "00:00-24:00", "weekdays": ["mon", "sat"], "country": ""},
            "sales": {"resolution": {"low": "100h"}},
        }
    )
    assert sla.Calendar(zone="Europe/Berlin", country="DE", subdivision="BE") == policy.calendar
    assert (30, 90, 120) == tuple(
        policy.target("first_response", "general", p) for p in ("urgent", "normal", "high")
    )
    technical = policy.calendar_of("technical")
    assert ((0, 5), 0, 1440, "", "") == (
        technical.weekdays,
        technical.opens,
        technical.closes,
        technical.country,
        technical.subdivision,
    )
    assert (6000, sla.RESOLUTION["low"]) == (
        policy.target("resolution", "sales", "low"),
        policy.target("resolution", "general", "low"),
    )


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({"hours": "9-18"}, "key 'sla.hours': must be local opening hours written \"HH:MM-HH:MM\""),
        ({"hours": "18:00-09:00"}, "key 'sla.hours': must close after it opens"),
        ({"weekdays": ["monday"]}, "key 'sla.weekdays': must list days among mon, tue"),
        ({"country": "XX"}, "key 'sla.country': 'XX' has no public holiday calendar"),
        ({"country": "DE", "subdivision": "ZZ"}, "key 'sla.subdivision': 'DE-ZZ' has no public"),
        ({"closed": ["24.12.2026"]}, "key 'sla.closed[0]': '24.12.2026' is not a date"),
        ({"first_response": {"normal": "8 hours"}}, "key 'sla.first_response.normal': '8 hours'"),
        ({"resolution": {"critical": "1h"}}, "key 'sla.resolution.critical': unknown key"),
        ({"technical": {"timezone": "Mars/Olympus"}}, "key 'sla.technical.timezone': 'Mars/"),
        ({"support": {}}, "key 'sla.support': unknown key"),
    ],
)
def test_sla_mistakes_are_one_line_naming_file_and_key(table, expected):
    with pytest.raises(ConfigError) as caught:
        parse_sla(table)
    message = str(caught.value)
    assert message.startswith(f"/etc/desk/config.toml: {expected}"), message
    assert "\n" not in message


# ---- due times on a real database -------------------------------------------------------------


def synced(path: Path, policy: sla.Policy) -> None:
    with closing(open_db(path)) as db, write(db):
        sla.sync(db, policy)


def ticket(path: Path, ticket_id: int = 1) -> dict:
    with closing(open_db(path)) as db:
        return tickets.get(db, ticket_id)


def change(path: Path, at: str, ticket_id: int = 1, **changes: object) -> None:
    with closing(open_db(path)) as db, clock.fixed_at(at):
        tickets.update(db, ticket_id, tickets.get(db, ticket_id)["version"], "maria", **changes)


def test_due_times_count_business_hours_and_follow_priority_and_function(tmp_path: Path):
    path = tmp_path / "desk.db"
    policy = sla.Policy(
        calendar=sla.Calendar(zone="UTC"),
        functions={"technical": sla.Override(calendar=ROUND_THE_CLOCK)},
    )
    synced(path, policy)
    deliver(path, mail(1, "Printer jam"), function="general", at="2026-11-27T17:30:00Z")
    # Friday 17:30 + 8 business hours (normal): 30 min on Friday, 7 h 30 on Monday.
    assert ("2026-11-30T16:30:00.000Z", "2026-12-04T17:30:00.000Z") == (
        ticket(path)["first_response_due"],
        ticket(path)["resolution_due"],
    )
    change(path, "2026-11-27T17:40:00Z", priority="urgent")
    assert ("2026-11-30T09:30:00.000Z", "2026-11-30T17:30:00.000Z") == (
        ticket(path)["first_response_due"],
        ticket(path)["resolution_due"],
    )
    change(path, "2026-11-27T17:50:00Z", function="technical")
    assert ("technical", "2026-11-27T18:30:00.000Z") == (
        ticket(path)["function"],
        ticket(path)["first_response_due"],
    )
    assert {"general", "technical"} == set(ticket(path)["functions"])


def test_a_new_policy_moves_running_clocks_and_leaves_settled_tickets_alone(tmp_path: Path):
    path = tmp_path / "desk.db"
    synced(path, sla.Policy(calendar=sla.Calendar(zone="UTC")))
    deliver(path, mail(1, "Open"), at="2026-11-26T10:00:00Z")
    deliver(path, mail(2, "Settled"), at="2026-11-26T10:00:00Z")
    change(path, "2026-11-26T11:00:00Z", ticket_id=2, status="resolved")
    settled = ticket(path, 2)["first_response_due"]
    synced(path, sla.Policy(calendar=sla.Calendar(zone="UTC"), first_response={"normal": 60}))
    assert ("2026-11-26T11:00:00.000Z", settled) == (
        ticket(path, 1)["first_response_due"],
        ticket(path, 2)["first_response_due"],
    )


def test_pending_pauses_the_resolution_clock_and_resolving_stops_it(tmp_path: Path):
    path = tmp_path / "desk.db"
    synced(path, sla.Policy(calendar=sla.Calendar(zone="UTC")))
    deliver(path, mail(1, "Statement wrong"), at="2026-11-23T09:00:00Z")  # a Monday
    assert "2026-11-27T18:00:00.000Z" == ticket(path)["resolution_due"]  # 45 h: 5 days
    with closing(open_db(path)) as db, clock.fixed_at("2026-11-23T10:00:00Z"):
        replies.send(db, 1, "Which statement is it?", "maria", SENDERS)
    change(path, "2026-11-24T09:00:00Z", status="pending")
    with clock.fixed_at("2026-11-28T12:00:00Z"):  # past the due time, but waiting on the customer
        assert not sla.overdue(ticket(path), clock.now_iso())
    # The customer answers on Wednesday 09:00: one business day of waiting moves the due time.
    raw = mail(2, "Re: Statement wrong", reply_to=1, sender="Customer 1 <c1@example.com>")
    deliver(path, raw, at="2026-11-25T09:00:00Z")
    assert ("open", "2026-11-30T18:00:00.000Z", 540) == (
        ticket(path)["status"],
        ticket(path)["resolution_due"],
        ticket(path)["sla_paused_minutes"],
    )
    change(path, "2026-11-26T10:00:00Z", status="resolved")
    with clock.fixed_at("2026-12-10T12:00:00Z"):
        assert not sla.overdue(ticket(path), clock.now_iso())
    assert "2026-11-26T10:00:00Z" == ticket(path)["resolved_at"].replace(".000", "")


def test_the_first_reply_stops_the_first_response_clock(tmp_path: Path):
    path = tmp_path / "desk.db"
    synced(path, sla.Policy(calendar=sla.Calendar(zone="UTC")))
    deliver(path, mail(1, "Help"), at="2026-11-26T09:00:00Z")
    with clock.fixed_at("2026-11-26T20:00:00Z"):
        assert sla.overdue(ticket(path), clock.now_iso())
    with closing(open_db(path)) as db, clock.fixed_at("2026-11-26T10:00:00Z"):
        replies.send(db, 1, "We are on it.", "maria", SENDERS)
    with clock.fixed_at("2026-11-26T20:00:00Z"):
        assert not sla.overdue(ticket(path), clock.now_iso())


def test_the_migration_gives_existing_tickets_due_times_and_resolution_times(tmp_path: Path):
    before = migrations.MIGRATIONS.index(migrations._v11_sla)
    db = sqlite_utils.Database(tmp_path / "old.db")
    for number, step in enumerate(migrations.MIGRATIONS[:before], start=1):
        step(db)
        db.execute(f"PRAGMA user_version = {number}")
    db.execute(
        "INSERT INTO ticket (id, function, status, created_at, updated_at, last_message_at) "
        "VALUES (1, 'general', 'resolved', '2026-11-23T09:00:00.000Z', "
        "'2026-11-25T08:00:00.000Z', '2026-11-23T09:00:00.000Z')"
    )
    db.execute(
        "INSERT INTO ticket_event (ticket_id, at, actor, action, detail) VALUES "
        "(1, '2026-11-24T12:00:00.000Z', 'maria', 'status', '{\"from\": \"open\", "
        '"to": "resolved"}\')'
    )
    db.conn.commit()
    migrations.migrate(db)
    row = next(db.query("SELECT * FROM ticket"))
    db.close()
    assert ("2026-11-24T12:00:00.000Z", "2026-11-23T17:00:00.000Z", "2026-11-27T18:00:00.000Z") == (
        row["resolved_at"],
        row["first_response_due"],
        row["resolution_due"],
    )


# ---- the list, the breached section and the figures -------------------------------------------


def mixed_desk(tmp_path: Path):
    """Tickets at NOW (Thursday 2026-11-26 12:00 UTC), office hours in UTC, normal targets
    (first response 8 h, resolution 45 h) unless said: #1 unanswered since Wednesday (overdue);
    #2 came this morning (in time); #3 answered in time; #4 urgent, answered in time, not
    resolved in 9 h (overdue); #5 resolved without a reply in time; #6 answered a day late
    (breached, no longer overdue)."""
    config = build_config(tmp_path)
    path = config.database
    synced(path, sla.Policy(calendar=sla.Calendar(zone="UTC")))
    created = ["2026-11-25T09:00:00Z", "2026-11-26T10:00:00Z", "2026-11-25T09:00:00Z",
               "2026-11-24T09:00:00Z", "2026-11-25T09:00:00Z", "2026-11-24T09:00:00Z"]  # fmt: skip
    for n, at in enumerate(created, start=1):
        deliver(path, mail(n, f"Question {n}"), at=at)
    change(path, "2026-11-24T09:05:00Z", ticket_id=4, priority="urgent")
    with closing(open_db(path)) as db:
        for ticket_id, at in ((3, "2026-11-25T10:00:00Z"), (4, "2026-11-24T09:30:00Z"),
                              (6, "2026-11-25T12:00:00Z")):  # fmt: skip
            with clock.fixed_at(at):
                replies.send(db, ticket_id, "We are on it.", "maria", SENDERS)
    change(path, "2026-11-25T12:00:00Z", ticket_id=5, status="resolved")
    return config


@pytest.mark.anyio
async def test_the_list_marks_only_overdue_tickets_and_the_breached_section_lists_the_late(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("DESK_NOW", NOW)
    config = mixed_desk(tmp_path)
    app = DeskApp(config)
    async with app.run_test(size=(160, 40)) as pilot:
        listing = app.screen.query_one(TicketList)
        await until(pilot, lambda: listing.loaded and listing.total == 6)
        marked = set()
        for y in range(1, 7):
            line = line_text(listing, y)
            number = int(line.split("#")[1].split()[0])
            if "!" in line.split("#")[0]:
                marked.add(number)
        assert {1, 4} == marked
        names = [s.name for s in app.settings.sections]
        tab = app.screen.query_one(f"#section-{names.index('SLA breached')}")
        await until(pilot, lambda: "SLA breached 3" == str(tab.label))
        for _ in range(names.index("SLA breached")):
            await pilot.press("right_square_bracket")
        await until(pilot, lambda: listing.loaded and listing.total == 3)
        shown = {listing.row(i)["id"] for i in range(3)}
        assert {1, 4, 6} == shown


def test_is_breached_and_desk_stats_count_met_and_breached_per_function(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("DESK_NOW", NOW)
    config = mixed_desk(tmp_path)
    with closing(open_db(config.database)) as db:
        condition, params = search.where(search.parse("is:breached"))
        assert [1, 4, 6] == [r["id"] for r in tickets.page(db, condition, params, "number", 0, 9)][
            ::-1
        ]
    config_path = tmp_path / "config.toml"
    config_path.write_text(f'[database]\npath = "{config.database}"\n', encoding="utf-8")
    assert 0 == main(["--config", str(config_path), "stats", "--json"])
    figures = json.loads(capsys.readouterr().out)["sla"]
    # Replies after 1 h (#3), 30 min (#4) and 12 business hours (#6, Tuesday 09:00 to
    # Wednesday 12:00): the median is an hour.
    assert {
        "first_response": {"met": 3, "breached": 2},
        "resolution": {"met": 1, "breached": 1},
        "median_first_response_minutes": 60.0,
    } == figures["technical"]
    assert {"met": 0, "breached": 0} == figures["sales"]["first_response"]
    assert 0 == main(["--config", str(config_path), "stats"])
    assert (
        "sla technical  first response met 3 breached 2  resolution met 1 breached 1  "
        "median first response 60 min"
    ) in capsys.readouterr().out


@pytest.mark.anyio
async def test_raising_the_priority_in_the_desk_makes_the_ticket_due_sooner_and_overdue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("DESK_NOW", NOW)  # Thursday 12:00 UTC
    config = build_config(tmp_path)
    policy = sla.Policy(
        calendar=sla.Calendar(zone="UTC"),
        functions={"technical": sla.Override(first_response={"urgent": 30})},
    )
    synced(config.database, policy)
    deliver(config.database, mail(1, "Login fails"), function="general", at="2026-11-26T10:00:00Z")
    app = DeskApp(config)
    async with app.run_test(size=(160, 40)) as pilot:
        listing = app.screen.query_one(TicketList)
        await until(pilot, lambda: listing.loaded and listing.current is not None)
        assert "!" not in line_text(listing, 1).split("#")[0]
        await pilot.press("p", "down", "down", "enter")  # normal → urgent: due 11:00, past
        await until(pilot, lambda: ticket(config.database)["priority"] == "urgent")
        assert "2026-11-26T11:00:00.000Z" == ticket(config.database)["first_response_due"]
        await until(pilot, lambda: "!" in line_text(listing, 1).split("#")[0])
        await until(pilot, lambda: listing.current["version"] == ticket(config.database)["version"])
        await pilot.press("f", "home", "enter")  # general → technical: urgent is 30 min there
        await until(pilot, lambda: ticket(config.database)["function"] == "technical")
        assert "2026-11-26T10:30:00.000Z" == ticket(config.database)["first_response_due"]
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen.data)
        head = app.screen.query_one("#ticket-head")
        shown = " ".join("".join(line_text(head, y) for y in range(head.size.height)).split())
        assert "first reply due 2026-11-26 10:30 UTC" in shown
        assert "resolve by 2026-11-27 10:00 UTC" in shown  # 9 h: 8 on Thursday, 1 on Friday


def test_the_demo_shows_a_few_overdue_tickets_not_nearly_all(tmp_path: Path, monkeypatch):
    from datetime import timedelta

    from db.mailin.model import Delivery
    from db.mailin.store import store_batch
    from ingest.demo import DEMO_BASE, demo_messages, demo_work
    from ingest.parse import parse

    now = DEMO_BASE + timedelta(days=3)
    monkeypatch.setenv("DESK_NOW", clock.iso(now))
    path = tmp_path / "desk.db"
    example = config_module.load(Path(__file__).parents[1] / "config.example.toml")
    synced(path, example.sla)
    with closing(open_db(path)) as db:
        for n, (function, raw) in enumerate(demo_messages(DEMO_BASE)):
            store_batch(db, [(parse(raw), Delivery(f"{function}-maildir", f"k{n}", (function,)))])
    assert 46 == demo_work(path)
    assert 0 == demo_work(path)  # once
    with closing(open_db(path)) as db:
        rows = list(db.query("SELECT * FROM ticket"))
    overdue = [r["id"] for r in rows if sla.overdue(r, clock.iso(now))]
    answered = [r["id"] for r in rows if r["first_response_at"]]
    assert 46 == len(rows)
    assert 1 <= len(overdue) <= 8, overdue
    assert len(answered) >= 30


@pytest.mark.parametrize("replied", [False, True])
def test_a_reopened_ticket_goes_on_where_its_clocks_stood(tmp_path: Path, replied: bool):
    path = tmp_path / "desk.db"
    synced(path, sla.Policy(calendar=sla.Calendar(zone="UTC")))
    deliver(path, mail(1, "Export fails"), at="2026-11-23T09:00:00Z")  # Monday; due Friday 18:00
    if replied:
        with closing(open_db(path)) as db, clock.fixed_at("2026-11-23T10:00:00Z"):
            replies.send(db, 1, "Fixed, please try again.", "maria", SENDERS)
    change(path, "2026-11-23T12:00:00Z", status="resolved")
    # The customer writes again on Thursday 09:00: resolved for 2 business days and 6 hours.
    raw = mail(2, "Re: Export fails", reply_to=1, sender="Customer 1 <c1@example.com>")
    deliver(path, raw, at="2026-11-26T09:00:00Z")
    assert ("open", None, 24 * 60, "2026-12-02T15:00:00.000Z") == (
        ticket(path)["status"],
        ticket(path)["resolved_at"],
        ticket(path)["sla_paused_minutes"],
        ticket(path)["resolution_due"],
    )
    # The first response (8 business hours) had 5 left when it was settled without a reply:
    # due Thursday 14:00, not overdue since Monday 17:00. Answered, it stays answered.
    first_due = "2026-11-23T17:00:00.000Z" if replied else "2026-11-26T14:00:00.000Z"
    assert first_due == ticket(path)["first_response_due"]
    with clock.fixed_at("2026-11-26T13:00:00Z"):
        assert not sla.overdue(ticket(path), clock.now_iso())
    with clock.fixed_at("2026-11-26T14:30:00Z"):
        assert sla.overdue(ticket(path), clock.now_iso()) is not replied


def test_the_daemon_holds_new_tickets_to_the_configured_sla(tmp_path: Path, monkeypatch):
    import subprocess
    import sys

    from tests.conftest import drop, write_config_file
    from tests.conftest import mail as conftest_mail

    monkeypatch.setenv("DESK_NOW", "2026-11-27T16:30:00Z")  # Friday 17:30 in Berlin
    extra = (
        '\n[sla]\ntimezone = "Europe/Berlin"\nfirst_response = { normal = "4h" }\n'
        '[sla.technical]\nweekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]\n'
        'hours = "00:00-24:00"\n'
    )
    config_path = write_config_file(tmp_path, ("technical", "sales"), extra=extra)
    drop(tmp_path, "sales", conftest_mail(to="sales@valuit.com", message_id="<a@example.com>"))
    drop(tmp_path, "technical", conftest_mail(message_id="<b@example.com>"))
    daemon = [sys.executable, "-m", "ingest.daemon", "--config", str(config_path), "--once"]
    assert 0 == subprocess.run(daemon, timeout=60).returncode
    with closing(open_db(tmp_path / "desk.db")) as db:
        due = dict(db.execute("SELECT function, first_response_due FROM ticket"))
    # Sales keeps office hours: Friday 17:30 + 4 h is Monday 12:30 in Berlin (11:30 UTC);
    # technical works round the clock: Friday 20:30 UTC.
    assert {"sales": "2026-11-30T11:30:00.000Z", "technical": "2026-11-27T20:30:00.000Z"} == due
