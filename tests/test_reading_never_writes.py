"""Reading never writes (issue 13): the read commands, run as processes, leave the database's
bytes as they were whatever config they are given; recurring rules are materialised only by
desk-ingest and `desk window sync`; a rule that leaves the config cancels nothing users were
told of; `desk now` says when the windows came from another config."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from db.core import migrations
from db.core.connect import open_db, open_reader
from tests.conftest import write_config_file

BIN = Path(sys.executable).parent
EXAMPLE = Path(__file__).parents[1] / "config.example.toml"
NOTICES = '\n[notices]\nsubscribers = ["ops@example.com"]\nannounce_days = 7\nreminder_hours = 24\n'
# The first monthly window (Sun 2026-12-06 02:00 GMT) is within announce_days: announced.
# The next ones (2027-01-02 quarterly, 2027-02-07 monthly …) are not yet.
T0 = "2026-12-01T12:00:00Z"
READS = [
    ("now",),
    ("now", "--json"),
    ("window", "list"),
    ("window", "list", "--all", "--json"),
    ("window", "show", "W1"),
    ("window", "show", "W1", "--json"),
    ("window", "preview"),
    ("window", "ics"),
    ("window", "notice", "W1", "--preview"),
    ("window", "notice", "W1", "--ledger"),
    ("window", "notes", "W1"),
    ("window", "report", "W1", "--template"),
    ("discrepancies",),
    ("discrepancies", "--open", "--json"),
    ("search", "maintenance", "--json"),
    ("export", "--format", "json"),
    ("stats",),
    ("stats", "--json"),
    ("subscribers", "list", "--json"),
]


def example_rules() -> str:
    """The `[[maintenance.recurring]]` tables of config.example.toml, as written there."""
    text = EXAMPLE.read_text(encoding="utf-8")
    start = text.index("[[maintenance.recurring]]")
    return text[start : text.index("\n# Mail out", start)]


@pytest.fixture
def configs(tmp_path: Path) -> tuple[Path, Path]:
    """The ops host's config (the example's rules) and a monitoring host's, the same but
    without recurring rules, on one database."""
    full = write_config_file(
        tmp_path, extra=f'\n[maintenance]\nzone = "Europe/London"\n{example_rules()}\n{NOTICES}'
    )
    minimal = tmp_path / "monitor.toml"
    minimal.write_text(full.read_text().replace(example_rules(), ""), encoding="utf-8")
    return full, minimal


def run(program: str, config: Path, *args: str, now: str = T0) -> subprocess.CompletedProcess:
    env = {**os.environ, "DESK_NOW": now, "DESK_USER": "olga"}
    return subprocess.run(
        [BIN / program, "--config", str(config), *args],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def ingest(config: Path, now: str = T0) -> subprocess.CompletedProcess:
    done = run("desk-ingest", config, "--once", "--log-level", "info", now=now)
    assert 0 == done.returncode, done.stderr
    return done


def database(config: Path) -> Path:
    return config.parent / "desk.db"


def fingerprint(db: Path) -> tuple[str, str]:
    """The database's bytes and its write-ahead log's (none and empty alike): writes change
    one of them."""
    wal = db.with_name(db.name + "-wal")
    return (
        hashlib.sha256(db.read_bytes()).hexdigest(),
        hashlib.sha256(wal.read_bytes() if wal.exists() else b"").hexdigest(),
    )


def windows_and_mail(db: Path) -> tuple[list[tuple], list[tuple]]:
    """(id, rule, occurrence, cancelled_at, rule_gone) of every window; (kind, subject) of every
    notice mail."""
    with closing(open_reader(db)) as conn:
        found = conn.execute(
            "SELECT id, rule, occurrence, cancelled_at, rule_gone FROM window ORDER BY id"
        ).fetchall()
        mails = conn.execute(
            "SELECT n.kind, o.subject FROM outbox o JOIN notice n ON n.id = o.notice_id "
            "ORDER BY o.id"
        ).fetchall()
    return found, mails


def test_read_commands_leave_the_database_byte_for_byte_as_it_was(configs) -> None:
    full, minimal = configs
    ingest(full)
    db = database(full)
    db.chmod(0o400)  # as root this stops nothing; the fingerprint does
    before = fingerprint(db)
    # Every read with the config that used to wreck the schedule; the common ones with both.
    for config, reads in ((minimal, READS), (full, READS[:4])):
        for args in reads:
            done = run("desk", config, *args)
            assert (args, 0) == (args, 0 if done.returncode == 11 else done.returncode), done.stderr
    assert before == fingerprint(db)


def test_a_read_only_connection_refuses_writes(tmp_path: Path) -> None:
    open_db(tmp_path / "desk.db").close()
    with (
        closing(open_reader(tmp_path / "desk.db")) as conn,
        pytest.raises(sqlite3.OperationalError) as err,
    ):
        conn.execute("DELETE FROM window")
    assert "readonly" in str(err.value)


def test_a_read_command_refuses_an_older_schema_and_leaves_it_as_it_was(
    configs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upgrade is a write: `desk now` from a newer desk on a monitoring host must not change
    the schema under the older daemon still running on it."""
    full, _ = configs
    db = database(full)
    with monkeypatch.context() as older:
        older.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:4])  # the last release's
        open_db(db).close()
    before = fingerprint(db)
    done = run("desk", full, "now")
    assert (2, True) == (done.returncode, "does not upgrade it" in done.stderr), done.stderr
    assert before == fingerprint(db)
    ingest(full)  # the newer daemon upgrades it; then reading works
    assert run("desk", full, "now").returncode in (0, 10, 11)


def test_desk_now_with_a_config_without_rules_changes_nothing_and_the_daemon_sends_no_cancel(
    configs,
) -> None:
    """The issue's reproduction: a monitoring host's `desk now`, then the ops daemon."""
    full, minimal = configs
    ingest(full)
    db = database(full)
    windows, mails = windows_and_mail(db)
    assert ["announcement"] == [kind for kind, _ in mails]
    before = fingerprint(db)

    now = run("desk", minimal, "now")
    assert 0 == now.returncode, now.stderr
    assert before == fingerprint(db)
    assert (
        f"SYNC    windows last synced at 2026-12-01 12:00 UTC from {full.resolve()}, whose "
        f"recurring rules differ from {minimal.resolve()}'s"
    ) in now.stdout
    as_json = json.loads(run("desk", minimal, "now", "--json").stdout)["sync"]
    assert (str(full.resolve()), False, False) == (
        as_json["config"],
        as_json["same_config"],
        as_json["same_rules"],
    )
    assert "SYNC" not in run("desk", full, "now").stdout

    ingest(full, now="2026-12-01T12:05:00Z")
    assert (windows, mails) == windows_and_mail(db)
    assert not any(subject.startswith("Cancelled") for _, subject in mails)


def test_a_rule_that_leaves_the_config_withdraws_what_no_one_knows_and_flags_the_rest(
    configs,
) -> None:
    full, minimal = configs
    ingest(full)
    db = database(full)
    windows, mails = windows_and_mail(db)
    announced = windows[0]
    assert ("monthly", "2026-12-06T02:00") == announced[1:3]

    # A monitoring host's daemon, without the rules: nothing is cancelled, nobody is mailed.
    done = ingest(minimal, now="2026-12-01T12:05:00Z")
    after, mails_after = windows_and_mail(db)
    gone = "its rule is gone: 'monthly' is no longer in the config"
    assert [(*announced[:4], gone)] == after
    assert mails == mails_after
    assert f"W{windows[1][0]} (quarterly@2027-01-02T22:00) withdrawn before it was announced" in (
        done.stderr
    )
    assert f"W1: {gone}; it stays until an operator cancels it" in done.stderr

    shown = run("desk", minimal, "now")
    assert (
        f"RULE    W1 Monthly routine maintenance starts Sun 2026-12-06 02:00 GMT: {gone}; "
        "desk window cancel W1 or desk window keep W1"
    ) in shown.stdout
    assert [("W1", gone)] == [
        (w["id"], w["rule_gone"])
        for w in json.loads(run("desk", minimal, "now", "--json").stdout)["rule_gone"]
    ]
    listed = run("desk", minimal, "window", "list").stdout
    assert f"[{gone}]" in listed

    # Kept: the flag clears, no sync flags it again, and its rule's return makes no twin.
    kept = run("desk", minimal, "window", "keep", "W1")
    assert 0 == kept.returncode, kept.stderr
    assert "RULE" not in run("desk", minimal, "now").stdout
    assert (
        "  rule: monthly (kept apart from it)\n"
        in run("desk", minimal, "window", "show", "W1").stdout
    )
    ingest(minimal, now="2026-12-01T12:10:00Z")
    ingest(full, now="2026-12-01T12:15:00Z")
    back, _ = windows_and_mail(db)
    assert [(1, "monthly", "2026-12-06T02:00", None, None)] == [
        w for w in back if w[2] == "2026-12-06T02:00"
    ]
    assert {w[2] for w in windows} == {w[2] for w in back}  # the withdrawn ones are made again


def test_a_rule_that_comes_back_unflags_its_windows_and_cancel_stays_the_operators(configs) -> None:
    full, minimal = configs
    ingest(full)
    db = database(full)
    ingest(minimal, now="2026-12-01T12:05:00Z")
    assert "W1" in run("desk", minimal, "now").stdout
    done = ingest(full, now="2026-12-01T12:10:00Z")
    assert "W1: its rule 'monthly' makes it again" in done.stderr
    assert "RULE" not in run("desk", full, "now").stdout

    ingest(minimal, now="2026-12-01T12:15:00Z")
    cancelled = run("desk", minimal, "window", "cancel", "W1", "--reason", "rule retired")
    assert 0 == cancelled.returncode, cancelled.stderr
    ingest(minimal, now="2026-12-01T12:20:00Z")
    _, mails = windows_and_mail(db)
    assert ["announcement", "cancellation"] == [kind for kind, _ in mails]


@pytest.mark.anyio
async def test_the_desk_reads_without_writing_and_its_banner_names_a_window_whose_rule_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from db.maintenance import recurrence, windows
    from tests.tui_helpers import NOW, build_config, fill, until
    from tui.app import DeskApp
    from tui.screens.ticket import TicketScreen
    from tui.widgets.banner import Banner

    monkeypatch.setenv("DESK_NOW", NOW)  # 2026-11-26: the first Sunday of December is 10 days off
    rule = {"name": "monthly", "rrule": "FREQ=MONTHLY;BYDAY=1SU", "start": "02:00",
            "duration": 120, "kind": "monthly", "title": "Monthly routine maintenance"}  # fmt: skip
    with_rule = build_config(tmp_path, maintenance={"recurring": [rule]})
    without = build_config(tmp_path)
    fill(with_rule.database, 3)
    with closing(open_db(with_rule.database)) as db:
        recurrence.sync(db, with_rule.maintenance, "ops.toml", "test")
        windows.issue_notice(db, 1, "announcement", "ops")
        recurrence.sync(db, without.maintenance, "monitor.toml", "test")
    before = fingerprint(with_rule.database)

    app = DeskApp(without)
    async with app.run_test(size=(200, 40)) as pilot:
        banner = app.screen.query_one(Banner)
        await until(pilot, lambda: "its rule is gone" in str(banner.render()))
        assert (
            "W1 Monthly routine maintenance (2026-12-06 02:00 UTC): its rule is gone: 'monthly' "
            "is no longer in the config; desk window cancel W1 or desk window keep W1"
        ) in str(banner.render())
        await pilot.press("down", "enter")  # read a ticket, too
        await until(pilot, lambda: isinstance(app.screen, TicketScreen))
        await pilot.press("escape")
    assert before == fingerprint(with_rule.database)
