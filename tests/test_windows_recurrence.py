"""Recurring windows: DST in two zones, short months, idempotent materialising, preview, config."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from db.core.config import Recurring, parse
from db.core.errors import ConfigError
from db.maintenance import recurrence
from tests.windows_helpers import MONTHLY, desk, desk_json, write_config


def rule(rrule: str, start: str, zone: str, name: str = "r") -> Recurring:
    hh, mm = start.split(":")
    return Recurring(name, rrule, time(int(hh), int(mm)), 120, zone, "monthly", "performance", name)


def starts(r: Recurring, after: datetime, count: int) -> list[tuple[str, str, tuple[str, ...]]]:
    """(nominal local start, UTC start, flags) of the next occurrences."""
    return [
        (o.key, o.start.strftime("%Y-%m-%d %H:%M"), o.flags)
        for o in recurrence.occurrences(r, after, count=count)
    ]


def test_london_0200_stays_0200_local_across_both_changes() -> None:
    # Last Sunday of March and of October are the change days in Europe/London.
    sundays = rule("FREQ=WEEKLY;BYDAY=SU", "02:00", "Europe/London")
    spring = starts(sundays, datetime(2026, 3, 20, tzinfo=UTC), 2)
    autumn = starts(sundays, datetime(2026, 10, 20, tzinfo=UTC), 2)
    # 02:00 GMT is 02:00 UTC; 02:00 BST is 01:00 UTC; the local time never moves.
    assert [
        ("2026-03-22T02:00", "2026-03-22 02:00", ()),
        ("2026-03-29T02:00", "2026-03-29 01:00", ()),
    ] == spring
    assert [
        ("2026-10-25T02:00", "2026-10-25 02:00", ()),
        ("2026-11-01T02:00", "2026-11-01 02:00", ()),
    ] == autumn


def test_london_start_in_the_skipped_hour_moves_forward_and_is_flagged() -> None:
    sundays = rule("FREQ=WEEKLY;BYDAY=SU", "01:30", "Europe/London")
    spring = starts(sundays, datetime(2026, 3, 28, tzinfo=UTC), 1)
    # 01:30 does not exist on 29 March; 02:30 BST (01:30 UTC) is the moved start.
    assert [("2026-03-29T01:30", "2026-03-29 01:30", (recurrence.MOVED,))] == spring
    occ = recurrence.occurrences(sundays, datetime(2026, 3, 28, tzinfo=UTC), count=1)[0]
    assert "02:30" == occ.start.astimezone(ZoneInfo("Europe/London")).strftime("%H:%M")


def test_london_repeated_hour_takes_the_first_and_is_flagged() -> None:
    sundays = rule("FREQ=WEEKLY;BYDAY=SU", "01:30", "Europe/London")
    autumn = starts(sundays, datetime(2026, 10, 24, tzinfo=UTC), 1)
    assert [("2026-10-25T01:30", "2026-10-25 00:30", (recurrence.REPEATED,))] == autumn


def test_new_york_spring_and_autumn() -> None:
    # US changes: second Sunday of March (02:00 → 03:00), first Sunday of November.
    sundays = rule("FREQ=WEEKLY;BYDAY=SU", "02:00", "America/New_York")
    spring = starts(sundays, datetime(2026, 3, 2, tzinfo=UTC), 2)
    autumn = starts(sundays, datetime(2026, 10, 26, tzinfo=UTC), 2)
    assert [
        ("2026-03-08T02:00", "2026-03-08 07:00", (recurrence.MOVED,)),  # 03:00 EDT
        ("2026-03-15T02:00", "2026-03-15 06:00", ()),  # 02:00 EDT
    ] == spring
    assert [
        ("2026-11-01T02:00", "2026-11-01 07:00", ()),  # 02:00 EST, after the repeated hour
        ("2026-11-08T02:00", "2026-11-08 07:00", ()),
    ] == autumn
    one_thirty = rule("FREQ=WEEKLY;BYDAY=SU", "01:30", "America/New_York")
    assert [("2026-11-01T01:30", "2026-11-01 05:30", (recurrence.REPEATED,))] == starts(
        one_thirty, datetime(2026, 10, 31, tzinfo=UTC), 1
    )


def test_bymonthday_31_skips_short_months_and_says_so() -> None:
    last = rule("FREQ=MONTHLY;BYMONTHDAY=31", "02:00", "UTC")
    found = starts(last, datetime(2026, 1, 1, tzinfo=UTC), 4)
    assert ["2026-01-31", "2026-03-31", "2026-05-31", "2026-07-31"] == [k[:10] for k, _, _ in found]
    assert (f"{recurrence.SKIPPED}:2026-02",) == found[1][2]
    assert (f"{recurrence.SKIPPED}:2026-04",) == found[2][2]


def test_sync_is_idempotent_and_a_dropped_rule_withdraws_only_what_no_one_knows_of(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DESK_NOW", "2026-01-10T12:00:00Z")
    config = write_config(tmp_path, "horizon_days = 90\n" + MONTHLY)
    assert [] == desk_json(capsys, config, "window", "list")  # reading materialises nothing
    assert 0 == desk(capsys, config, "window", "sync")[0]
    first = desk_json(capsys, config, "window", "list")
    assert {"added": [], "withdrawn": [], "rule_gone": [], "rule_back": [], "absorbed": []} == (
        desk_json(capsys, config, "window", "sync")
    )
    assert ["2026-02-01T02:00:00.000Z", "2026-03-01T02:00:00.000Z", "2026-04-05T01:00:00.000Z"] == [
        w["start_at"] for w in first
    ]
    assert [w["id"] for w in first] == [
        w["id"] for w in desk_json(capsys, config, "window", "list")
    ]
    assert {"planned"} == {w["status"] for w in first}
    shown = desk_json(capsys, config, "window", "show", first[0]["id"])
    assert ("monthly", "2026-02-01T02:00") == tuple(
        shown["events"][0]["detail"][k] for k in ("rule", "occurrence")
    )

    # An occurrence edited by hand belongs to ops now: it stays, flagged; the untouched ones,
    # never announced, are withdrawn.
    code, _, err = desk(capsys, config, "window", "edit", first[0]["id"], "--title", "Kept")
    assert 0 == code, err
    config = write_config(tmp_path, "horizon_days = 90\n")
    synced = desk_json(capsys, config, "window", "sync")
    assert [
        f"monthly@2026-03-01T02:00 ({first[1]['id']})",
        f"monthly@2026-04-05T02:00 ({first[2]['id']})",
    ] == synced["withdrawn"]
    after = desk_json(capsys, config, "window", "list")
    assert [
        (first[0]["id"], "planned", "its rule is gone: 'monthly' is no longer in the config")
    ] == [(w["id"], w["status"], w["rule_gone"]) for w in after]


def test_preview_lists_utc_and_local_times_with_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DESK_NOW", "2026-03-01T00:00:00Z")
    config = write_config(
        tmp_path,
        '[[maintenance.recurring]]\nname = "ny"\nrrule = "FREQ=MONTHLY;BYDAY=2SU"\n'
        'start = "02:00"\nduration = 60\nkind = "monthly"\nzone = "America/New_York"\n',
    )
    code, out, _ = desk(capsys, config, "window", "preview", "--count", "2")
    assert 0 == code
    first, second = out.splitlines()
    assert "Sun 2026-03-08 03:00–04:00 EDT" in first and "2026-03-08 07:00–08:00 UTC" in first
    assert "02:00 does not exist that day (clocks go forward); moved" in first
    assert "Sun 2026-04-12 02:00–03:00 EDT" in second and "[" not in second
    as_json = desk_json(capsys, config, "window", "preview", "--count", "1")
    assert [recurrence.MOVED] == as_json[0]["flags"]
    assert "2026-03-08T02:00" == as_json[0]["planned_local"]


@pytest.mark.parametrize(
    ("rule_table", "complaint"),
    [
        ({"rrule": "FREQ=MONTHLY;BYDAY=1XX", "start": "02:00"}, "maintenance.recurring[0].rrule"),
        ({"rrule": "FREQ=MONTHLY;BYHOUR=2", "start": "02:00"}, "not BYHOUR"),
        ({"rrule": "FREQ=MONTHLY;BYDAY=1SU", "start": "2am"}, "maintenance.recurring[0].start"),
        ({"rrule": "FREQ=MONTHLY;BYDAY=1SU", "start": "02:00", "zone": "Mars/Base"}, "IANA"),
    ],
)
def test_config_errors_name_the_key(rule_table: dict, complaint: str, tmp_path: Path) -> None:
    table = {"name": "m", "duration": 60, "kind": "monthly", **rule_table}
    with pytest.raises(ConfigError) as caught:
        parse(
            {"database": {"path": "d.db"}, "maintenance": {"recurring": [table]}},
            tmp_path / "c.toml",
        )
    assert complaint in caught.value.message
    assert str(tmp_path / "c.toml") in caught.value.message


def test_config_defaults() -> None:
    settings = parse({"database": {"path": "d.db"}}, Path("c.toml")).maintenance
    assert (48.0, 72.0, "UTC", ()) == (
        settings.announce_hours,
        settings.verification_hours,
        settings.zone,
        settings.recurring,
    )
