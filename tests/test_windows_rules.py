"""The 48-hour notice rule at its edges, the notice ledger, and the lifecycle of a window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from db.core.config import load
from db.core.connect import open_db
from db.core.errors import DeskError
from db.maintenance import windows
from tests.windows_helpers import desk, desk_json, drop_mail, ingest, ticket, write_config

NOW = "2026-06-01T10:00:00Z"  # 11:00 BST


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DESK_NOW", NOW)
    monkeypatch.setenv("DESK_USER", "olga")
    return write_config(tmp_path)


def add(capsys, config: Path, start: str, *extra: str) -> tuple[int, str, str]:
    return desk(
        capsys,
        config,
        "window",
        "add",
        "--title",
        "Ledger upgrade",
        "--type",
        "feature",
        "--start",
        start,
        "--duration",
        "120",
        "--features",
        "Trading, Statements",
        *extra,
    )


def test_47_59_before_is_refused_48_00_accepted(config: Path, capsys) -> None:
    code, out, err = add(capsys, config, "2026-06-03T09:59:00Z")
    assert 2 == code
    assert "" == out
    assert (
        "desk: The window would start in 47 h 59 min, less than the 48 hours' notice the policy "
        "requires; start it at 2026-06-03 11:00 BST or later, or pass --force --reason TEXT.\n"
    ) == err

    code, _, err = add(capsys, config, "2026-06-03 11:00", "--json")  # local BST = 10:00 UTC
    assert 0 == code, err
    assert [("W1", "2026-06-03T10:00:00.000Z", "planned")] == [
        (w["id"], w["start_at"], w["status"]) for w in desk_json(capsys, config, "window", "list")
    ]


def test_force_needs_a_reason_and_records_it(config: Path, capsys) -> None:
    code, _, err = add(capsys, config, "2026-06-02T10:00:00Z", "--force")
    assert (2, "desk: --force needs --reason TEXT saying why the notice rule is broken.\n") == (
        code,
        err,
    )
    code, out, err = add(
        capsys, config, "2026-06-02T10:00:00Z", "--force", "--reason", "vendor patch", "--json"
    )
    assert 0 == code, err
    shown = desk_json(capsys, config, "window", "show", "W1")
    assert "vendor patch" == shown["forced_reason"]
    assert [("created", "olga", "vendor patch")] == [
        (e["action"], e["actor"], e["detail"]["forced_reason"]) for e in shown["events"]
    ]
    # The reason on record carries the announcement through the rule too.
    code, _, err = desk(capsys, config, "window", "notice", "W1", "--issue")
    assert 0 == code, err
    assert "announced" == desk_json(capsys, config, "window", "show", "W1")["status"]


def test_announcing_too_late_is_refused(
    config: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert 0 == add(capsys, config, "2026-06-03T12:00:00Z")[0]  # 50 h ahead
    monkeypatch.setenv("DESK_NOW", "2026-06-01T12:00:01Z")  # now 47:59:59 ahead
    code, _, err = desk(capsys, config, "window", "notice", "W1", "--issue")
    assert 2 == code and "47 h 59 min" in err
    assert "planned" == desk_json(capsys, config, "window", "show", "W1")["status"]


def test_notice_ledger_no_duplicates_and_reschedule_supersedes(config: Path, capsys) -> None:
    assert 0 == add(capsys, config, "2026-06-07T01:00:00Z")[0]
    first = desk_json(capsys, config, "window", "notice", "W1", "--issue")
    assert [("banner", True), ("email", True)] == [(n["channel"], n["created"]) for n in first]
    email = next(n for n in first if n["channel"] == "email")["body"]
    for expected in (
        "Sunday 7 June 2026, 02:00–04:00 BST",
        "2026-06-07 01:00–03:00 UTC",
        "  - Trading\n  - Statements",
        "feature update",
        "back up any critical data",
        "log out of your account before the window begins",
    ):
        assert expected in email

    again = desk_json(capsys, config, "window", "notice", "W1", "--kind", "announcement", "--issue")
    assert [False, False] == [n["created"] for n in again]
    assert [n["id"] for n in first] == [n["id"] for n in again]

    code, _, err = desk(capsys, config, "window", "edit", "W1", "--start", "2026-06-14 02:00")
    assert 0 == code, err
    shown = desk_json(capsys, config, "window", "show", "W1")
    assert ("planned", 2, "2026-06-14T03:00:00.000Z") == (
        shown["status"],
        shown["revision"],
        shown["end_at"],
    )  # moved, kept its two hours, and must be announced again
    assert [(1, 1), (1, 1)] == [(n["revision"], n["superseded"]) for n in shown["notices"]]
    renewed = desk_json(capsys, config, "window", "notice", "W1", "--issue")
    assert [(2, True)] * 2 == [(n["revision"], n["created"]) for n in renewed]
    assert "Sunday 14 June 2026" in next(n for n in renewed if n["channel"] == "email")["body"]
    ledger = desk_json(capsys, config, "window", "notice", "W1", "--ledger")
    assert 4 == len(ledger)


def test_a_title_change_supersedes_but_does_not_unannounce(config: Path, capsys) -> None:
    assert 0 == add(capsys, config, "2026-06-07T01:00:00Z")[0]
    desk_json(capsys, config, "window", "notice", "W1", "--issue")
    assert 0 == desk(capsys, config, "window", "edit", "W1", "--title", "Ledger v2")[0]
    shown = desk_json(capsys, config, "window", "show", "W1")
    assert "announced" == shown["status"]
    assert {1} == {n["superseded"] for n in shown["notices"]}
    # What the scheduler would send: the new wording, as a change notice.
    changed = desk_json(capsys, config, "window", "notice", "W1", "--issue")
    assert {"change"} == {n["kind"] for n in changed}
    assert "Changed: Valuit maintenance" in next(n["subject"] for n in changed if n["subject"])


def test_edit_with_a_stale_revision_is_refused(config: Path, capsys) -> None:
    assert 0 == add(capsys, config, "2026-06-07T01:00:00Z")[0]
    assert 0 == desk(capsys, config, "window", "edit", "W1", "--title", "A")[0]
    code, _, err = desk(
        capsys, config, "window", "edit", "W1", "--title", "B", "--if-revision", "1"
    )
    assert 2 == code and "revision 2, not 1" in err


def test_lifecycle_follows_the_clock_and_cancel_is_for_future_windows(
    config: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert 0 == add(capsys, config, "2026-06-07T01:00:00Z")[0]
    assert 0 == add(capsys, config, "2026-06-08T01:00:00Z")[0]
    monkeypatch.setenv("DESK_NOW", "2026-06-07T02:00:00Z")
    assert "active" == desk_json(capsys, config, "window", "show", "W1")["status"]
    code, _, err = desk(capsys, config, "window", "cancel", "W1")
    assert (2, "desk: W1 is active and cannot be cancelled; complete it instead.\n") == (code, err)
    code, _, err = desk(capsys, config, "window", "cancel", "W2", "--reason", "vendor delay")
    assert 0 == code, err
    cancelled = desk_json(capsys, config, "window", "notice", "W2", "--issue")
    assert "Cancelled: Valuit maintenance" in next(n["subject"] for n in cancelled if n["subject"])
    completed = desk_json(capsys, config, "window", "complete", "W1")
    assert ("completed", "2026-06-07T02:00:00.000Z") == (completed["status"], completed["end_at"])
    monkeypatch.setenv("DESK_NOW", "2026-06-09T00:00:00Z")
    assert ["completed", "cancelled"] == [
        w["status"] for w in desk_json(capsys, config, "window", "list")
    ]


ADD = ("window", "add", "--title", "x", "--type", "feature")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("window", "show", "W99"), "There is no window W99"),
        ((*ADD, "--start", "soon", "--duration", "5"), "is not a time"),
        ((*ADD, "--start", "2026-07-01 02:00", "--end", "2026-07-01 01:00"), "end after it starts"),
        (
            (*ADD, "--start", "2026-03-29 01:30", "--zone", "Europe/London", "--duration", "5"),
            "does not exist in Europe/London",
        ),
        (("window", "complete", "W1"), "There is no window W1"),
        (("window", "report", "W1", "--show"), "There is no window W1"),
    ],
)
def test_errors_are_one_sentence_and_non_zero(config: Path, capsys, args, message) -> None:
    code, out, err = desk(capsys, config, *args)
    assert 0 != code
    assert message in err
    assert err.startswith("desk: ") and 1 == len(err.strip().splitlines())


def test_a_window_edit_is_stored_and_recorded_as_the_rule_reads_it(config: Path, capsys) -> None:
    assert 0 == add(capsys, config, "2026-06-07T01:00:00Z")[0]
    args = ("--start", "2026-06-09T01:00:00Z", "--features", "Statements")
    assert 0 == desk(capsys, config, "window", "edit", "W1", *args)[0]
    db = open_db(load(config).database)
    # Times are stored as the ISO text every query compares them as.
    assert ("2026-06-09T01:00:00.000Z", '["Statements"]') == db.execute(
        "SELECT start_at, features FROM window WHERE id = 1"
    ).fetchone()
    code, _, err = desk(
        capsys, config, "window", "edit", "W1", "--title", "B", "--if-revision", "1"
    )
    message = (
        "desk: W1 is at revision 2, not 1: someone changed it; "
        "look at `desk window show` and try again.\n"
    )
    assert (2, message) == (code, err)
    assert 0 == desk(capsys, config, "window", "cancel", "W1", "--reason", "vendor delay")[0]
    code, _, err = desk(capsys, config, "window", "cancel", "W1")
    assert (2, "desk: W1 is cancelled and cannot be cancelled.\n") == (code, err)
    code, _, err = desk(capsys, config, "window", "edit", "W1", "--features", "Trading")
    assert (2, "desk: W1 is cancelled; its times and features can no longer change.\n") == (
        code,
        err,
    )
    shown = desk_json(capsys, config, "window", "show", "W1")
    assert [("created", 1), ("edited", 2), ("cancelled", 3)] == [
        (e["action"], e["revision"]) for e in shown["events"]
    ]
    edited, cancelled = shown["events"][1]["detail"], shown["events"][2]["detail"]
    assert ({"start_at", "end_at", "features"}, "vendor delay") == (
        set(edited),  # what changed, and no overlaps when there were none
        cancelled["reason"],
    )


def test_the_database_layer_names_what_is_missing(config: Path, capsys) -> None:
    assert 0 == add(capsys, config, "2026-06-07T01:00:00Z")[0]
    db = open_db(load(config).database)
    with pytest.raises(DeskError, match="^Say how long: give --by MINUTES or --until TIME.$"):
        windows.extend(db, 1, "olga")
    with pytest.raises(DeskError, match="^'memo' is not a notice kind; use announcement, "):
        windows.issue_notice(db, 1, "memo", "olga")
    start = datetime(2026, 6, 3, 10, tzinfo=UTC)  # exactly the policy's 48 hours ahead
    args = {"kind": "adhoc", "update_type": "feature", "zone": "UTC", "actor": "olga"}
    with pytest.raises(DeskError, match="^'cosmetic' is not an update type; use feature, "):
        windows.add(
            db,
            title="T",
            start=start,
            end=start + timedelta(hours=1),
            **{**args, "update_type": "cosmetic"},
        )
    with pytest.raises(DeskError, match="^Forcing the notice rule needs a reason; pass --reason"):
        windows.add(
            db, title="T", start=start, end=start + timedelta(hours=1), **args, force_reason=" "
        )
    assert (
        start
        == windows.add(
            db, title="On time", start=start, end=start + timedelta(hours=1), **args
        ).start
    )


def test_moving_a_window_earlier_re_judges_the_tickets_opened_in_its_new_span(
    tmp_path: Path, config: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ("--type", "feature", "--start", "2026-06-10T10:00:00Z", "--duration", "60")
    assert 0 == desk(capsys, config, "window", "add", "--title", "Later", *args)[0]
    monkeypatch.setenv("DESK_NOW", "2026-06-05T12:00:00Z")
    drop_mail(tmp_path, "Balance wrong", "My balance is wrong since this morning.")
    ingest(config)
    assert None is ticket(config, "Balance wrong")["during_window_id"]
    monkeypatch.setenv("DESK_NOW", NOW)  # planned in advance, as the clock says
    code, _, err = desk(capsys, config, "window", "edit", "W1", "--start", "2026-06-05T11:30:00Z")
    assert 0 == code, err
    assert 1 == ticket(config, "Balance wrong")["during_window_id"]


def test_the_database_layer_refuses_what_the_rules_forbid_and_says_why(config: Path) -> None:
    db = open_db(load(config).database)
    start = datetime(2026, 6, 2, 10, tzinfo=UTC)  # 24 hours ahead
    args = {"title": "T", "update_type": "feature", "zone": "UTC", "actor": "olga"}
    span = {"start": start, "end": start + timedelta(hours=1)}
    with pytest.raises(windows.NoticeRuleError) as refused:
        windows.add(db, kind="adhoc", **args, **span)
    assert "Too little notice" == refused.value.title
    with pytest.raises(DeskError) as refused:
        windows.add(db, kind="emergency", **args, **span)
    assert str(refused.value).endswith("an emergency starts with `desk window emergency`.")
    w = windows.add(db, kind="adhoc", **args, **span, force_reason="vendor patch")
    with pytest.raises(DeskError, match="^These cannot be edited: kind.$"):
        windows.edit(db, w.id, "olga", {"kind": "monthly"})
    with pytest.raises(
        DeskError, match="^W1 is planned; only a window in force can be completed.$"
    ):
        windows.complete(db, w.id, "olga")
    noted = windows.set_notes(db, w.id, "- Faster statements", "olga")
    assert "release-notes" == windows.events(db, noted.id)[-1]["action"]
    with pytest.raises(DeskError, match="^The expected downtime must be a positive number"):
        windows.emergency(
            db, title="Failover", expected_minutes=0, nature="Disk", actor="olga", zone="UTC"
        )
    e, _ = windows.emergency(
        db, title="Failover", expected_minutes=60, nature="Disk", actor="olga", zone="UTC"
    )
    with pytest.raises(DeskError, match="^--by must be a positive number of minutes.$"):
        windows.extend(db, e.id, "olga", minutes=0)
    with pytest.raises(DeskError, match="^W2 has started; only its end can move now.$"):
        windows.edit(db, e.id, "olga", {"start_at": e.start + timedelta(minutes=5)})


def test_the_database_layer_keeps_what_the_rules_keep(config: Path, monkeypatch) -> None:
    db = open_db(load(config).database)
    start = datetime(2026, 6, 3, 11, tzinfo=UTC)  # 49 hours ahead
    with pytest.raises(DeskError, match="^A window must end after it starts; check --end or"):
        windows.add(
            db,
            title="T",
            kind="adhoc",
            update_type="feature",
            start=start,
            end=start,
            zone="UTC",
            actor="olga",
        )
    w = windows.add(
        db,
        title="T",
        kind="adhoc",
        update_type="feature",
        start=start,
        end=start + timedelta(hours=1),
        zone="UTC",
        actor="olga",
    )
    monkeypatch.setenv("DESK_NOW", "2026-06-01T12:00:00Z")  # too late to announce unforced now
    with pytest.raises(windows.NoticeRuleError):
        windows.issue_notice(db, w.id, "announcement", "olga")
    issued, now = windows.issue_notice(db, w.id, "announcement", "olga", force_reason="late")
    assert ("late", True) == (windows.get(db, w.id).forced_reason, now)
    e, _ = windows.emergency(
        db, title="Failover", expected_minutes=60, nature="Disk", actor="olga", zone="UTC"
    )
    extended, _ = windows.extend(db, e.id, "olga", minutes=30)
    # An emergency stays announced when it runs longer, and has no description it was not given.
    assert (e.announced_at, "") == (extended.announced_at, extended.description)
