"""Mail out at the command line: `desk subscribers`, `desk outbox`, and the notice mails that
`desk window notice --issue` and `desk window emergency` queue, previewed word for word."""

from __future__ import annotations

import json
from email.utils import parseaddr
from pathlib import Path

import pytest

from db.core.config import load
from db.core.connect import open_db, write
from db.mailout import outbox
from tests.conftest import write_config_file
from tests.windows_helpers import commands, desk, desk_json
from tui.cli import build_parser

NOTICES = """
[maintenance]
zone = "Europe/London"

[notices]
subscribers = ["ops@example.com"]
"""
WINDOW = (
    "--title", "Ledger upgrade", "--type", "feature", "--start", "2026-06-07 02:00",
    "--duration", "120", "--features", "Trading, Statements",
)  # fmt: skip


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DESK_NOW", "2026-06-01T10:00:00Z")
    monkeypatch.setenv("DESK_USER", "olga")
    return write_config_file(tmp_path, extra=NOTICES)


def people(capsys, config: Path) -> list[tuple[str, str, str]]:
    """(addr, origin, name) of the subscribers, not of those who left."""
    return [
        (p["addr"], p["origin"], p["name"])
        for p in desk_json(capsys, config, "subscribers", "list")
        if p["left_at"] is None
    ]


def mails(capsys, config: Path, *args: str) -> list[tuple[str, str, str]]:
    """(recipient, status, subject) of the outbox's mails, oldest first."""
    rows = desk_json(capsys, config, "outbox", *args)
    return [(m["rcpt"], m["status"], m["subject"]) for m in reversed(rows)]


def test_subscribers_add_list_and_remove(config: Path, capsys) -> None:
    code, out, err = desk(
        capsys, config, "subscribers", "add", "Dana Lee <dana@example.com>", "bo@example.com",
        "no address here", "OPS@example.com",
    )  # fmt: skip
    assert 2 == code  # one entry was refused: a script must notice
    assert "desk: refused 'no address here': not an email address\n" == err
    assert "Added 2 subscribers; 1 already subscribed.\n" == out
    assert [
        ("ops@example.com", "config", ""),
        ("bo@example.com", "desk", ""),
        ("dana@example.com", "desk", "Dana Lee"),
    ] == people(capsys, config)
    code, out, _ = desk(capsys, config, "subscribers", "list")
    assert 0 == code
    assert [
        "ops@example.com                   config",
        "bo@example.com                    desk      (added 2026-06-01 by olga)",
        "dana@example.com                  desk    Dana Lee  (added 2026-06-01 by olga)",
    ] == out.splitlines()

    code, _, err = desk(capsys, config, "subscribers", "remove", "ops@example.com")
    assert 2 == code
    assert "ops@example.com is listed in [notices] subscribers of the configuration" in err
    assert "remove it there" in err
    assert 0 == desk(capsys, config, "subscribers", "remove", "Dana@Example.com")[0]
    assert ["ops@example.com", "bo@example.com"] == [p[0] for p in people(capsys, config)]
    code, _, err = desk(capsys, config, "subscribers", "remove", "dana@example.com")
    assert 2 == code and "dana@example.com is not a subscriber" in err
    left = desk_json(capsys, config, "subscribers", "list")[-1]
    assert ("dana@example.com", "2026-06-01T10:00:00.000Z", "desk", "olga") == (
        left["addr"], left["left_at"], left["left_via"], left["left_by"]
    )  # fmt: skip
    assert (
        "dana@example.com                  left    2026-06-01 10:00 UTC removed olga\n"
        == (desk(capsys, config, "subscribers", "list")[1].splitlines(keepends=True)[-1])
    )
    # Added again by an operator: a subscriber again, no longer among those who left.
    assert 0 == desk(capsys, config, "subscribers", "add", "dana@example.com")[0]
    assert [None] * 3 == [p["left_at"] for p in desk_json(capsys, config, "subscribers", "list")]


def test_subscribers_import_names_each_refused_line(tmp_path: Path, config: Path, capsys) -> None:
    listing = tmp_path / "people.txt"
    listing.write_text(
        "# customers who asked for notices\n"
        "Ann Example <ann@example.com>\n"
        "\n"
        "ann at example.com\n"
        "   # an indented comment\n"
        "cy@example.com\n"
        "ops@example.com\n"
        "<@nowhere>\n",
        encoding="utf-8",
    )
    code, out, err = desk(capsys, config, "subscribers", "import", str(listing))
    assert 2 == code
    assert [
        f"desk: {listing}, line 4: refused 'ann at example.com': not an email address",
        f"desk: {listing}, line 8: refused '<@nowhere>': not an email address",
    ] == err.splitlines()
    assert "Added 2 subscribers; 1 already subscribed.\n" == out
    assert [
        ("ops@example.com", "config", ""),
        ("ann@example.com", "desk", "Ann Example"),
        ("cy@example.com", "desk", ""),
    ] == people(capsys, config)

    # A clean file exits 0; importing it again adds nobody twice.
    listing.write_text("cy@example.com\nDee <dee@example.com>\n", encoding="utf-8")
    assert (0, "Added 1 subscriber; 1 already subscribed.\n", "") == desk(
        capsys, config, "subscribers", "import", str(listing)
    )
    code, _, err = desk(capsys, config, "subscribers", "import", str(tmp_path / "missing.txt"))
    assert 2 == code and f"Cannot read {tmp_path / 'missing.txt'}" in err


def test_preview_is_what_issue_records_and_mails(config: Path, capsys) -> None:
    assert 0 == desk(capsys, config, "subscribers", "add", "Bo <bo@example.com>")[0]
    assert 0 == desk(capsys, config, "window", "add", *WINDOW)[0]

    code, out, err = desk(capsys, config, "window", "notice", "W1", "--preview")
    assert 0 == code
    assert out.startswith("Subject: Valuit maintenance Sunday 7 June 2026, 02:00–04:00 BST: ")
    assert "Banner: Scheduled maintenance Sunday 7 June 2026" in out
    assert "--issue records it and mails it to 2 subscribers" in err
    assert out == desk(capsys, config, "window", "notice", "W1")[1]  # the old default
    preview = desk_json(capsys, config, "window", "notice", "W1", "--preview")
    # Nothing went out: no ledger entry, no mail, still unannounced.
    shown = desk_json(capsys, config, "window", "show", "W1")
    assert ("planned", []) == (shown["status"], shown["notices"])
    assert [] == mails(capsys, config)

    issued = desk_json(capsys, config, "window", "notice", "W1", "--issue")
    assert {n["channel"]: (n["subject"], n["body"]) for n in preview} == {
        n["channel"]: (n["subject"], n["body"]) for n in issued
    }
    email = next(n for n in issued if n["channel"] == "email")
    queued = desk_json(capsys, config, "outbox")
    assert ["bo@example.com", "ops@example.com"] == sorted(m["rcpt"] for m in queued)
    for mail in queued:
        sent = desk_json(capsys, config, "outbox", "show", str(mail["id"]))
        headers = dict(sent["headers"])
        assert (email["subject"], mail["rcpt"]) == (headers["Subject"], parseaddr(headers["To"])[1])
        assert email["body"] == sent["text"]

    # Once issued, a preview says it will not go out again.
    code, _, err = desk(capsys, config, "window", "notice", "W1", "--kind", "announcement")
    assert 0 == code and "so --issue would not send it again" in err


def test_issue_queues_one_mail_per_subscriber_and_only_once(config: Path, capsys) -> None:
    assert 0 == desk(capsys, config, "subscribers", "add", "dana@example.com")[0]
    assert 0 == desk(capsys, config, "window", "add", *WINDOW)[0]
    code, _, err = desk(capsys, config, "window", "notice", "W1", "--issue")
    assert 0 == code
    assert [
        "Issued announcement notice for W1; 2 mails queued to the subscribers.",
        f"desk: no [smtp] in {config}: queued mail is not sent.",
    ] == err.splitlines()
    subject = "Valuit maintenance Sunday 7 June 2026, 02:00–04:00 BST: Ledger upgrade"
    expected = [("ops@example.com", "queued", subject), ("dana@example.com", "queued", subject)]
    assert expected == mails(capsys, config)

    code, _, err = desk(
        capsys, config, "window", "notice", "W1", "--kind", "announcement", "--issue"
    )
    assert 0 == code and "Already issued announcement notice for W1" in err
    assert expected == mails(capsys, config)

    code, out, _ = desk(capsys, config, "window", "show", "W1")
    assert "  r1 announcement email; mails: 2 queued\n  r1 announcement banner\n" in out
    assert 2 == desk_json(capsys, config, "stats")["outbox"]["queued"]
    stats = desk(capsys, config, "stats")[1]
    assert "outbox  queued 2  sending 0  sent 0  failed 0  cancelled 0\n" in stats


def test_issue_without_subscribers_says_no_mail_went(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("DESK_NOW", "2026-06-01T10:00:00Z")
    config = write_config_file(tmp_path, extra='[maintenance]\nzone = "Europe/London"\n')
    assert 0 == desk(capsys, config, "window", "add", *WINDOW)[0]
    code, _, err = desk(capsys, config, "window", "notice", "W1", "--issue")
    assert 0 == code
    assert "no mail queued (no subscribers; `desk subscribers add` adds them)" in err
    assert "no [smtp]" not in err
    assert "No mail in the outbox.\n" == desk(capsys, config, "outbox")[1]
    out = desk(capsys, config, "window", "show", "W1")[1]
    assert "  r1 announcement email; no mail queued\n" in out


def test_emergency_mails_its_start_notice_to_the_subscribers(config: Path, capsys) -> None:
    assert 0 == desk(capsys, config, "subscribers", "add", "dana@example.com")[0]
    code, out, _ = desk(
        capsys, config, "window", "emergency", "--title", "Database failover", "--expect", "45",
        "--nature", "the primary database stopped answering",
    )  # fmt: skip
    assert 0 == code
    assert out.startswith(
        "Emergency W1 started; its start notice is in the ledger, 2 mails queued to the "
        "subscribers.\n"
    )
    subject = "Emergency maintenance in progress: Database failover"
    assert [
        ("ops@example.com", "queued", subject),
        ("dana@example.com", "queued", subject),
    ] == mails(capsys, config)
    text = desk(capsys, config, "outbox", "show", "1")[1]
    assert "Nature of the issue: the primary database stopped answering" in text


def test_outbox_show_retry_and_cancel(config: Path, capsys) -> None:
    assert 0 == desk(capsys, config, "subscribers", "add", "Bo <bo@example.com>")[0]
    assert 0 == desk(capsys, config, "window", "add", *WINDOW)[0]
    assert 0 == desk(capsys, config, "window", "notice", "W1", "--issue")[0]

    code, out, err = desk(capsys, config, "outbox")
    assert 0 == code
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "KIND", "STATUS", "TO", "TRIES", "WHEN", "SUBJECT"]
    assert "2 notice queued bo@example.com 0 next 2026-06-01 10:00Z Valuit maintenance" == " ".join(
        lines[1].split()[:10]
    )
    assert f"desk: no [smtp] in {config}: queued mail is not sent.\n" == err

    code, out, _ = desk(capsys, config, "outbox", "show", "2")
    assert 0 == code
    assert out.startswith("Mail 2: notice, window W1; queued, 0 attempts; next 2026-06-01 10:00Z\n")
    assert "\nTo: Bo <bo@example.com>\n" in out
    assert "\nSubject: Valuit maintenance Sunday 7 June 2026, 02:00–04:00 BST:" in out
    assert "\nAuto-Submitted: auto-generated\n" in out
    assert "  - Trading\n  - Statements\n" in out  # the text, decoded from quoted-printable

    assert (0, "Cancelled mail 2 to bo@example.com; it will not be sent.\n") == desk(
        capsys, config, "outbox", "cancel", "2"
    )[:2]
    code, _, err = desk(capsys, config, "outbox", "cancel", "2")
    assert (2, "desk: Mail 2 is cancelled; only a queued one can be cancelled.\n") == (code, err)
    assert ["bo@example.com"] == [m[0] for m in mails(capsys, config, "--status", "cancelled")]
    shown = desk(capsys, config, "outbox", "show", "2")[1]
    assert shown.startswith("Mail 2: notice, window W1; cancelled, 0 attempts\n")
    assert "\nlast error: cancelled by olga\n" in shown
    assert 0 == desk(capsys, config, "outbox", "retry", "2")[0]
    assert [("ops@example.com", "queued"), ("bo@example.com", "queued")] == [
        m[:2] for m in mails(capsys, config, "list", "--status", "queued,cancelled")
    ]

    # The daemon hands mail 1 to the server; sent is final.
    db = open_db(load(config).database)
    with write(db):
        outbox.begin(db, 1)
        outbox.sent(db, 1)
    code, _, err = desk(capsys, config, "outbox", "retry", "1")
    assert (2, "desk: Mail 1 is sent; only a failed or cancelled one can be retried.\n") == (
        code,
        err,
    )
    sent = desk(capsys, config, "outbox", "list", "--status", "sent")[1].splitlines()[1]
    assert ["1", "notice", "sent", "ops@example.com", "1", "sent"] == sent.split()[:6]
    assert 2 == desk(capsys, config, "outbox", "cancel", "1")[0]
    assert {"queued": 1, "sending": 0, "sent": 1, "failed": 0, "cancelled": 0} == desk_json(
        capsys, config, "stats"
    )["outbox"]

    assert "There is no mail 9 in the outbox" in desk(capsys, config, "outbox", "show", "9")[2]
    code, _, err = desk(capsys, config, "outbox", "--status", "lost")
    assert 2 == code and "'lost' is not a mail status" in err
    # Options before or after `list` mean the same.
    newest = desk_json(capsys, config, "outbox", "--limit", "1")
    assert [2] == [m["id"] for m in newest]
    assert newest == json.loads(desk(capsys, config, "outbox", "--json", "--limit", "1", "list")[1])
    assert newest == json.loads(desk(capsys, config, "outbox", "list", "--limit", "1", "--json")[1])


def test_mail_commands_have_help_with_an_example() -> None:
    found = [path for path, _ in commands(build_parser()) if path[0] in ("subscribers", "outbox")]
    assert 10 == len(found)  # both, with four actions each
    for path, sub in commands(build_parser()):
        if path[0] in ("subscribers", "outbox"):
            assert "example: desk " in (sub.epilog or ""), path


def test_hostile_text_in_the_outbox_reaches_the_terminal_as_text(config: Path, capsys) -> None:
    desk(capsys, config, "window", "add", *WINDOW)
    desk(capsys, config, "window", "notice", "W1", "--issue")
    db = open_db(load(config).database)
    with write(db):
        db.execute(
            "UPDATE outbox SET subject = ?, last_error = ?",
            ["\x1b[31mred \x9b31m \u202eexe.pdf [bold]x[/]", "550 \x1b]0;owned\x07 no"],
        )
    for args in (("outbox", "list"), ("outbox", "list", "--json"), ("outbox", "show", "1")):
        code, out, _ = desk(capsys, config, *args)
        assert 0 == code
        assert not any(c in out for c in ("\x1b", "\x9b", "\u202e", "\x07")), args
    rows = desk_json(capsys, config, "outbox", "list")
    assert "\u202eexe.pdf" in rows[0]["subject"]  # JSON escapes it and parses back the same
