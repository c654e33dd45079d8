"""`desk stats --json`: the counts and source states scripts and ops rely on."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import drop, mail, write_config_file
from tui.cli import main


def test_stats_json_counts_what_was_ingested(tmp_path, capsys):
    config_path = write_config_file(tmp_path, functions=("technical", "sales"))
    drop(tmp_path, "technical", mail(message_id="<s1@example.com>"))
    drop(tmp_path, "technical", mail(subject="Re: x", headers={"In-Reply-To": "<s1@example.com>"}))
    drop(tmp_path, "sales", mail(headers={"Auto-Submitted": "auto-replied"}))
    drop(tmp_path, "sales", b"garbage without headers")
    drop(tmp_path, "sales", mail(headers={"List-Id": "<forum.example.org>"}))
    drop(tmp_path, "sales", mail(sender="Mail Delivery System <MAILER-DAEMON@example.org>"))
    assert (
        0
        == subprocess.run(
            [sys.executable, "-m", "ingest.daemon", "--config", str(config_path), "--once"],
            timeout=60,
        ).returncode
    )
    assert 0 == main(["--config", str(config_path), "stats", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert (6, 3, 1, 1, 1, 1, 0) == (
        data["messages"],
        data["tickets"],
        data["unparsed"],
        data["auto_replies"],
        data["bounces"],
        data["via_list"],
        data["read_receipts"],
    )
    # The list mail was also sent to technical@ (To), so both functions have it.
    assert {"technical": {"new": 2}, "sales": {"new": 2}} == data["tickets_by_function"]
    states = {s["name"]: s["state"] for s in data["sources"]}
    assert {"technical-maildir": "stopped", "sales-maildir": "stopped"} == states
    assert all(s["last_success"] for s in data["sources"])


def test_stats_without_a_config_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DESK_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert 2 == main(["stats"])
    assert "no configuration found" in capsys.readouterr().err
