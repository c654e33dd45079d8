"""Ops commands end to end: `desk now` exit codes and JSON, the emergency flow to its report,
the iCalendar feed parsed back, and --help with an example everywhere."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import icalendar
import pytest

from tests.windows_helpers import (
    MONTHLY,
    commands,
    desk,
    desk_json,
    drop_mail,
    ingest,
    write_config,
)
from tui.cli import build_parser

WINDOW_KEYS = {
    "id", "number", "title", "kind", "update_type", "status", "start_at", "end_at",
    "planned_end_at", "zone", "start_local", "end_local", "features", "description",
    "release_notes", "nature", "expected_minutes", "announced_at", "forced_reason",
    "cancelled_at", "completed_at", "rule", "flags", "rule_gone", "detached_at", "report_due",
    "report_written_at", "revision", "created_at", "created_by",
}  # fmt: skip


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DESK_NOW", "2026-06-01T10:00:00Z")
    monkeypatch.setenv("DESK_USER", "olga")
    return write_config(tmp_path)


def test_desk_now_exit_codes_and_json_shape(
    config: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = desk(capsys, config, "now")
    assert (0, "Nothing in force: no window active or starting within 48 hours.\n") == (code, out)
    clear = desk_json(capsys, config, "now")
    assert {
        "now": "2026-06-01T10:00:00.000Z",
        "state": "clear",
        "within_hours": 48.0,
        "active": [],
        "upcoming": [],
        "overdue_reports": [],
        "open_discrepancies": [],
        "impact": [],
        "rule_gone": [],
        "sync": {
            "synced_at": None,
            "config": None,
            "synced_by": None,
            "same_config": False,
            "same_rules": False,
        },
    } == clear

    args = ("--type", "security", "--start", "2026-06-03T10:00:00Z", "--duration", "60")
    assert 0 == desk(capsys, config, "window", "add", "--title", "Patch", *args)[0]
    monkeypatch.setenv("DESK_NOW", "2026-06-01T09:59:59Z")
    assert 0 == desk(capsys, config, "now")[0]  # 48 h and a second away
    monkeypatch.setenv("DESK_NOW", "2026-06-01T10:00:00Z")
    code, out, _ = desk(capsys, config, "now")
    assert 11 == code and "SOON    W1 Patch starts" in out and "(not announced)" in out
    soon = desk_json(capsys, config, "now")
    assert ("upcoming", ["W1"]) == (soon["state"], [w["id"] for w in soon["upcoming"]])
    assert WINDOW_KEYS == set(soon["upcoming"][0])

    monkeypatch.setenv("DESK_NOW", "2026-06-03T10:30:00Z")
    code, out, _ = desk(capsys, config, "now")
    assert 10 == code
    assert "ACTIVE  W1 Patch until Wed 2026-06-03 12:00 BST; unavailable: none listed" in out
    code, out, _ = desk(capsys, config, "now", "--json")
    assert (10, "active", "2026-06-03T11:00:00.000Z") == (
        code,
        json.loads(out)["state"],
        json.loads(out)["active"][0]["end_at"],
    )
    monkeypatch.setenv("DESK_NOW", "2026-06-03T11:00:00Z")
    assert 0 == desk(capsys, config, "now")[0]


def test_emergency_flow_to_report(
    tmp_path: Path, config: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = desk(
        capsys,
        config,
        "window",
        "emergency",
        "--title",
        "Database failover",
        "--expect",
        "45",
        "--features",
        "Trading, Statements",
        "--nature",
        "the primary database stopped answering",
    )
    assert 0 == code, err
    assert "Nature of the issue: the primary database stopped answering" in out
    assert "Expected downtime: about 45 minutes, until 11:45 BST (10:45 UTC)." in out
    assert "Banner: Emergency maintenance in progress" in out
    assert 10 == desk(capsys, config, "now")[0]

    drop_mail(tmp_path, "Cannot log in", "The site says maintenance.", function="sales")
    drop_mail(tmp_path, "Trading down?", "Is trading down?", sender="bo@example.com")
    ingest(config)

    monkeypatch.setenv("DESK_NOW", "2026-06-01T10:30:00Z")
    assert "completed" == desk_json(capsys, config, "window", "complete", "W1")["status"]
    now = desk_json(capsys, config, "now")
    assert (["W1"], True) == (
        [w["id"] for w in now["overdue_reports"]],
        now["overdue_reports"][0]["report_due"],
    )

    code, template, _ = desk(capsys, config, "window", "report", "W1", "--template")
    assert 0 == code
    for section in ("Summary", "Impact", "Timeline", "Root cause", "Steps taken", "Follow-ups"):
        assert f"\n## {section}\n" in template
    during = template.split("Tickets received during the window: 2\n")[1].split("Discrepancy")[0]
    assert ["- technical: 1", "- sales: 1"] == [
        line.split(" (#")[0] for line in during.splitlines()
    ]
    assert "Downtime: expected 45 min, actual 30 min" in template
    assert "10:00 UTC  created (olga)" in template and "10:30 UTC  completed (olga)" in template

    empty = tmp_path / "empty.md"
    empty.write_text(template.replace("## Summary\n", "## Summary\nTrading was down.\n"))
    code, _, err = desk(capsys, config, "window", "report", "W1", "--file", str(empty))
    assert 2 == code
    assert "desk: The report's Root cause, Steps taken sections are empty" in err
    assert ["W1"] == [w["id"] for w in desk_json(capsys, config, "now")["overdue_reports"]]

    # $EDITOR gets the pre-filled template and its saved text becomes the report.
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys, pathlib\np = pathlib.Path(sys.argv[1])\nt = p.read_text()\n"
        "for h, s in (('Summary', 'Trading was down for 30 minutes.'),"
        " ('Root cause', 'A full disk on the primary.'),"
        " ('Steps taken', 'Failed over; grew the disk.')):\n"
        "    t = t.replace('## ' + h + '\\n', '## ' + h + '\\n' + s + '\\n')\n"
        "p.write_text(t)\n"
    )
    editor.chmod(editor.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("EDITOR", f"{sys.executable} {editor}")
    code, out, err = desk(capsys, config, "window", "report", "W1")
    assert (0, "Saved the report for W1 (revision 3).\n") == (code, out), err
    assert [] == desk_json(capsys, config, "now")["overdue_reports"]
    report = desk_json(capsys, config, "window", "report", "W1")
    assert "A full disk on the primary." == report["sections"]["Root cause"]
    assert report["sections"]["Impact"].startswith("Live counts as of 2026-06-01 10:30 UTC")


def test_report_without_an_editor_says_what_to_do(config: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("EDITOR", raising=False)
    monkeypatch.delenv("VISUAL", raising=False)
    args = ("--title", "Outage", "--expect", "10")
    assert 0 == desk(capsys, config, "window", "emergency", *args)[0]
    code, _, err = desk(capsys, config, "window", "report", "W1")
    assert (2, "desk: W1 is active; a report is written after it completes.\n") == (code, err)
    assert 0 == desk(capsys, config, "window", "complete", "W1")[0]
    code, _, err = desk(capsys, config, "window", "report", "W1")
    assert 2 == code
    assert "desk: Set $VISUAL or $EDITOR to write in your own editor. Or pass --file FILE.\n" == err


def test_ics_round_trip(config: Path, capsys, tmp_path: Path, monkeypatch) -> None:
    args = ("--type", "feature", "--start", "2026-06-07 02:00", "--duration", "120")
    assert 0 == desk(capsys, config, "window", "add", "--title", "Upgrade", *args)[0]
    assert (
        0 == desk(capsys, config, "window", "add", "--title", "Spare", *args, "--allow-overlap")[0]
    )
    feed = tmp_path / "w.ics"
    assert 0 == desk(capsys, config, "window", "ics", "-o", str(feed))[0]
    before = icalendar.Calendar.from_ical(feed.read_bytes())
    events = before.walk("VEVENT")
    assert ["W1 Upgrade (adhoc maintenance)", "W2 Spare (adhoc maintenance)"] == [
        str(e["SUMMARY"]) for e in events
    ]
    assert ("20260607T010000Z", "20260607T030000Z", 1, "TENTATIVE") == (
        events[0]["DTSTART"].to_ical().decode(),
        events[0]["DTEND"].to_ical().decode(),
        events[0]["SEQUENCE"],
        str(events[0]["STATUS"]),
    )

    desk(capsys, config, "window", "edit", "W1", "--start", "2026-06-14 02:00")
    desk(capsys, config, "window", "cancel", "W2")
    code, out, _ = desk(capsys, config, "window", "ics")
    after = sorted(
        icalendar.Calendar.from_ical(out.encode()).walk("VEVENT"), key=lambda e: e["UID"]
    )
    assert [str(e["UID"]) for e in events] == [str(e["UID"]) for e in after]  # stable
    assert (2, "20260614T010000Z") == (after[0]["SEQUENCE"], after[0]["DTSTART"].to_ical().decode())
    assert (2, "CANCELLED") == (after[1]["SEQUENCE"], str(after[1]["STATUS"]))


def test_every_ops_command_has_help_with_an_example() -> None:
    ops = [
        (path, sub)
        for path, sub in commands(build_parser())
        if path[0] in ("now", "window", "discrepancies")
    ]
    assert 19 == len(ops)
    for path, sub in ops:
        assert "example: desk " in (sub.epilog or ""), path
    json_needed = {("now",), ("discrepancies",), ("window", "list"), ("window", "show")}
    for path, sub in ops:
        if path in json_needed:
            assert "--json" in sub.format_help(), path


def test_desk_now_as_a_process_documents_its_exit_codes(config: Path) -> None:
    env = {**os.environ, "DESK_NOW": "2026-06-01T10:00:00Z"}
    desk_bin = Path(sys.executable).with_name("desk")
    helped = subprocess.run([desk_bin, "now", "--help"], capture_output=True, text=True, env=env)
    assert "10  a maintenance window is active now" in helped.stdout
    ran = subprocess.run(
        [desk_bin, "--config", str(config), "now", "--json"], capture_output=True, env=env
    )
    assert (0, "clear") == (ran.returncode, json.loads(ran.stdout)["state"])


def test_output_cut_short_by_its_reader_ends_quietly(tmp_path: Path) -> None:
    """`desk window preview … | head -c 100`: no traceback, and the status a pipe's writer gets."""
    config = write_config(tmp_path, MONTHLY)
    proc = subprocess.Popen(
        [Path(sys.executable).with_name("desk"), "--config", str(config), "window", "preview",
         "--count", "3000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(100)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert (141, "") == (proc.wait(), err)
