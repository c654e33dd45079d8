"""The status site for the platform's users: `desk publish DIR` writes the status page, a
status.json valid against its schema, an Atom feed a feed reader parses with stable ids, the
calendar, release notes and reports; hostile window text stays text; `desk serve` shows it under
/status without a login in a real Chromium; desk-ingest keeps `[publish] dir` current."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from importlib import resources
from pathlib import Path

import feedparser
import icalendar
import jsonschema
import pytest

from db.core import clock
from db.core.connect import open_db
from db.maintenance import reports, updates, windows
from tests.test_serve import CHROMIUM, CHROMIUM_ARGS, _needs_chromium, serving
from tests.tui_helpers import NOW
from tui.cli import main

HOSTILE = '<img src=x onerror="alert(1)">Payments & <b>cards</b>'
REPORT = """# Report

## Summary

The ledger stopped for 20 minutes.

## Impact

Internal: 4 tickets.

## Root cause

A full disk on the primary.

## Steps taken

Moved the logs away and restarted the ledger.
"""


def _at(monkeypatch: pytest.MonkeyPatch, moment: str) -> None:
    monkeypatch.setenv("DESK_NOW", moment)


def _config(tmp_path: Path, extra: str = "") -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\npath = "{tmp_path / "desk.db"}"\n{extra}')
    return config


def _emergency(db, title: str = HOSTILE) -> windows.Window:
    w, _ = windows.emergency(
        db,
        title=title,
        expected_minutes=60,
        nature="the card processor <script>alert(2)</script> is down",
        actor="ops",
        zone="Europe/London",
        features=("Payments",),
    )
    return w


def _history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """W1: an emergency a month ago, completed, with its report; W2: a monthly window in five
    days, announced, with release notes; W3: an emergency in progress now (NOW)."""
    db = open_db(tmp_path / "desk.db")
    _at(monkeypatch, "2026-10-27T09:00:00Z")
    w1 = _emergency(db, "Ledger outage")
    _at(monkeypatch, "2026-10-27T09:20:00Z")
    windows.complete(db, w1.id, "ops")
    windows.issue_notice(db, w1.id, "completion", "ops")
    _at(monkeypatch, "2026-10-27T12:00:00Z")
    reports.write_report(db, w1.id, REPORT, "ops")
    windows.issue_notice(db, w1.id, "report", "ops")
    _at(monkeypatch, NOW)
    start = clock.now() + timedelta(days=5)
    w2 = windows.add(
        db,
        title="Monthly maintenance",
        kind="monthly",
        update_type="feature",
        start=start,
        end=start + timedelta(hours=2),
        zone="Europe/London",
        actor="ops",
        features=("Statements",),
    )
    windows.set_notes(db, w2.id, "Statements can be exported as CSV.", "ops")
    windows.issue_notice(db, w2.id, "announcement", "ops")
    _emergency(db)
    db.close()


def _publish(config: Path, directory: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert 0 == main(["--config", str(config), "publish", str(directory)])
    return capsys.readouterr().out


def test_status_json_follows_its_schema_and_tells_what_is_in_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _history(tmp_path, monkeypatch)
    site = tmp_path / "site"
    _publish(_config(tmp_path), site, capsys)

    status = json.loads((site / "status.json").read_text())
    schema = json.loads((resources.files("publish") / "status.schema.json").read_text())
    jsonschema.validate(status, schema, format_checker=jsonschema.FormatChecker())
    maintenances = status["scheduled_maintenances"]
    assert [("W3", "in_progress"), ("W2", "scheduled"), ("W1", "completed")] == [
        (m["id"], m["status"]) for m in maintenances
    ]
    w3, w2, w1 = maintenances
    assert (HOSTILE, ["Payments"], "major") == (w3["name"], w3["affected_features"], w3["impact"])
    assert ["Payments"] == status["affected_features"]
    assert [{"id": "payments", "name": "Payments", "status": "under_maintenance"}] == (
        w3["components"]
    )
    assert status["banner"].startswith("Emergency maintenance in progress: the card processor")
    assert ["in_progress"] == [u["status"] for u in w3["incident_updates"]]
    assert ("2026-12-01T12:00:00.000Z", "Statements can be exported as CSV.") == (
        w2["scheduled_for"],
        w2["release_notes"],
    )
    assert ["postmortem", "completed", "in_progress"] == [
        u["status"] for u in w1["incident_updates"]
    ]
    assert {
        "Summary": "The ledger stopped for 20 minutes.",
        "Root cause": "A full disk on the primary.",
        "Steps taken": "Moved the logs away and restarted the ledger.",
    } == w1["report"]


def test_feed_parses_with_every_kind_of_entry_and_keeps_its_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _history(tmp_path, monkeypatch)
    site = tmp_path / "site"
    config = _config(tmp_path, '[publish]\nurl = "https://status.valuit.com"\n')
    _publish(config, site, capsys)

    feed = feedparser.parse((site / "feed.atom").read_bytes())
    assert (False, "atom10") == (feed.bozo, feed.version)
    titles = {e.title: e for e in feed.entries}
    assert {
        f"Emergency maintenance in progress: {HOSTILE}",
        "Emergency maintenance in progress: Ledger outage",
        "Emergency maintenance report: Ledger outage",
        "Post-maintenance report: Ledger outage",
        "Release notes: Monthly maintenance",
    } <= set(titles)
    assert any(t.startswith("Valuit maintenance ") and "Monthly" in t for t in titles)
    report = titles["Post-maintenance report: Ledger outage"]
    assert "https://status.valuit.com/reports/W1.html" == report.link
    assert "Root cause:\nA full disk on the primary." in report.summary
    ids = {e.id for e in feed.entries}
    assert len(feed.entries) == len(ids)

    db = open_db(tmp_path / "desk.db")
    windows.set_notes(db, 2, "Statements can be exported as CSV and PDF.", "ops")
    db.close()
    _publish(config, site, capsys)
    again = feedparser.parse((site / "feed.atom").read_bytes())
    notes = next(e for e in again.entries if e.title == "Release notes: Monthly maintenance")
    assert (titles["Release notes: Monthly maintenance"].id, True) == (
        notes.id,
        "CSV and PDF" in notes.summary,
    )
    assert ids <= {e.id for e in again.entries}


def test_release_notes_reports_and_calendar_are_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _history(tmp_path, monkeypatch)
    site = tmp_path / "site"
    out = _publish(_config(tmp_path), site, capsys)
    assert f"Published the status site in {site}: 9 file(s) changed.\n" == out

    notes = (site / "release-notes" / "index.html").read_text()
    feature = notes.split('id="feature-title"')[1].split('id="security-title"')[0]
    assert "Statements can be exported as CSV." in feature
    assert "Statements can be exported" in (site / "release-notes" / "W2.html").read_text()
    report = (site / "reports" / "W1.html").read_text()
    assert "A full disk on the primary." in report and "Internal: 4 tickets." not in report
    assert "reports/W1.html" in (site / "index.html").read_text()
    events = icalendar.Calendar.from_ical((site / "windows.ics").read_bytes()).walk("VEVENT")
    assert 3 == len(events)

    assert f"Published the status site in {site}: 0 file(s) changed.\n" == (
        _publish(_config(tmp_path), site, capsys)
    )


def test_publish_without_a_directory_says_where_to_name_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    assert 2 == main(["--config", str(config), "publish"])
    assert (
        f"desk: Name the directory (desk publish DIR) or set [publish] dir in {config}.\n"
        == capsys.readouterr().err
    )


def test_hostile_window_text_stays_text_in_every_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _at(monkeypatch, NOW)
    db = open_db(tmp_path / "desk.db")
    w = _emergency(db)
    _emergency(db, "Terminal \x1b[31mred\x0b and a NUL\x00")  # XML 1.0 forbids these
    db.close()
    site = tmp_path / "site"
    _publish(_config(tmp_path), site, capsys)
    feed = feedparser.parse((site / "feed.atom").read_bytes())
    assert (
        False,
        {
            f"Emergency maintenance in progress: {HOSTILE}",
            "Emergency maintenance in progress: Terminal [31mred and a NUL",
        },
    ) == (feed.bozo, {e.title for e in feed.entries})
    for page in ("index.html", "feed.atom"):
        text = (site / page).read_text()
        assert ("<img" not in text, "<script" not in text, "<b>" not in text) == (
            True,
            True,
            True,
        ), page
        assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;Payments &amp; &lt;b&gt;cards" in text
    status = json.loads((site / "status.json").read_text())
    assert w.title == status["scheduled_maintenances"][0]["name"]


def test_chromium_sees_the_emergency_and_its_update_under_status_without_a_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_playwright = _needs_chromium()
    _at(monkeypatch, NOW)
    with serving(tmp_path) as served:
        db = open_db(served.db)
        w = _emergency(db)  # after the server started: it renders what is current
        updates.post(db, w.id, "identified", "An expired <b>certificate</b>; renewing it.", "ops")
        db.close()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(java_script_enabled=False)
                page = context.new_page()
                response = page.goto(f"{served.url}/status")
                assert (200, f"{served.url}/status/") == (response.status, page.url)
                assert "en" == page.locator("html").get_attribute("lang")
                assert 1 == page.locator("main").count()
                now = page.locator("section", has=page.locator("h2#now-title"))
                article = now.locator("article.emergency")
                assert HOSTILE == article.locator("h3").inner_text()
                assert 0 == page.locator("img, script, main b").count()
                assert "the card processor <script>alert(2)</script> is down" in (
                    article.locator("dd").nth(3).inner_text()
                )
                progress, update = article.locator("ol.updates li").all()
                assert ("Identified", "An expired <b>certificate</b>; renewing it.") == (
                    progress.locator(".update-status").inner_text(),
                    progress.locator("p.text").inner_text(),
                )
                assert "In progress" == update.locator(".update-status").inner_text()
                assert "Emergency maintenance in progress" in update.inner_text()
                assert "2026-11-26T12:00:00Z" == update.locator("time").get_attribute("datetime")
                assert "Payments" in now.locator("p.state").inner_text()
                banner = page.locator("section.banner")
                assert "Expected downtime about 60 minutes" in banner.inner_text()
                assert 200 == page.goto(f"{served.url}/status/status.json").status
            finally:
                browser.close()
        # A path a browser would have normalised, sent as it is: nothing outside the site.
        host, port = served.url.removeprefix("http://").split(":")
        for path in ("/status/../config.toml", "/status/%2e%2e/config.toml", "/status/.x"):
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
            conn.request("GET", path)
            assert (path, 404) == (path, conn.getresponse().status)
            conn.close()


def test_the_daemon_keeps_the_publish_dir_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    config = _config(tmp_path, f'[publish]\ndir = "{site}"\n')
    env = {k: v for k, v in os.environ.items() if k != "DESK_NOW"}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "ingest.daemon", "--config", str(config)],
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        index = site / "index.html"
        deadline = time.monotonic() + 60
        while not index.exists():
            assert daemon.poll() is None, daemon.stderr.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "desk-ingest did not publish the site"
            time.sleep(0.2)
        assert "All features are available" in index.read_text()

        monkeypatch.delenv("DESK_NOW", raising=False)
        db = open_db(tmp_path / "desk.db")
        _emergency(db, "Card payments failing")
        db.close()
        deadline = time.monotonic() + 90  # it polls every 15 s; the issue allows a minute
        while "Card payments failing" not in index.read_text():
            assert daemon.poll() is None, daemon.stderr.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "desk-ingest did not follow the change"
            time.sleep(0.5)
        status = json.loads((site / "status.json").read_text())
        assert ["Payments"] == status["affected_features"]
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
