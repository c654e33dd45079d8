"""Safety rules tested on every path that enforces them, so that a one-line slip in any one of
those places fails a test: exactly once by the whole content, no acknowledgement to automatic
mail (threading and the acknowledgement's own guard), the notice rule on window edits at the
database level, saving an attachment never over a file (with its error paths), and untrusted
text shown as text."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from db.core import clock
from db.core import config as config_module
from db.core.connect import open_db
from db.core.errors import DeskError
from db.maintenance import windows
from ingest import daemon
from ingest.parse import parse
from tests.conftest import drop, mail, write_config_file
from tests.smtp import SmtpServer
from tui import files, safe

ACKS = """
[functions.technical]
acknowledge = true
response_time = "within 4 hours"
"""


def test_two_mails_that_share_their_first_kilobytes_are_stored_as_two(tmp_path):
    """Same sender, Message-ID, date and subject, and the same first 4 KB: still two mails."""
    config = config_module.load(write_config_file(tmp_path, ("technical",)))
    shared = "All the lines of the long log we were asked for.\n" * 100  # ~5 KB
    for ending in ("The first ending.", "The second ending."):
        raw = mail(subject="Log", body=shared + ending, message_id="<same@example.com>")
        assert len(raw) > 4096
        drop(tmp_path, "technical", raw)
    daemon.run(config, once=True)
    db = open_db(config.database)
    endings = [
        body.strip().rsplit("\n", 1)[-1]
        for (body,) in db.execute("SELECT body_text FROM message ORDER BY id")
    ]
    assert ["The first ending.", "The second ending."] == sorted(endings)


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-generated"},
        {"X-Autorespond": "yes"},
        {"Precedence": "junk"},
        {"Precedence": "auto_reply"},
        {"Precedence": "bulk", "Subject": "Out of office"},
    ],
)
def test_automatic_mail_through_ingest_opens_no_ticket_and_queues_no_acknowledgement(
    tmp_path, smtp_server: SmtpServer, headers
):
    config = config_module.load(write_config_file(tmp_path, extra=smtp_server.toml() + ACKS))
    headers = dict(headers)  # the parameter is shared by every run of the test (mutmut's too)
    subject = headers.pop("Subject", "Help please")
    drop(tmp_path, "technical", mail(subject=subject, headers=headers))
    daemon.run(config, once=True)
    db = open_db(config.database)
    assert [("auto-reply",)] == db.execute("SELECT kind FROM message").fetchall()
    assert (0, 0) == (
        db.execute("SELECT count(*) FROM ticket").fetchone()[0],
        db.execute("SELECT count(*) FROM outbox").fetchone()[0],
    )


@pytest.mark.parametrize(
    "headers",
    [{"Precedence": "list"}, {"Precedence": "bulk"}, {"List-Id": "<news.example.com>"}],
)
def test_a_person_writing_through_a_list_gets_a_ticket_and_no_acknowledgement(
    tmp_path, smtp_server: SmtpServer, headers
):
    config = config_module.load(write_config_file(tmp_path, extra=smtp_server.toml() + ACKS))
    drop(tmp_path, "technical", mail(headers=headers))
    daemon.run(config, once=True)
    db = open_db(config.database)
    assert [("list", 1)] == db.execute(
        "SELECT message.kind, ticket.via_list FROM message JOIN ticket ON ticket.id = ticket_id"
    ).fetchall()
    assert 0 == db.execute("SELECT count(*) FROM outbox").fetchone()[0]


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Auto-Submitted": "auto-replied"}, "it is an auto-reply"),
        ({"X-Autorespond": "yes"}, "it is an auto-reply"),
        ({"Precedence": "auto_reply"}, "it is an auto-reply"),
        ({"Precedence": "junk"}, "it is an auto-reply"),
    ],
)
def test_the_acknowledgement_refuses_automatic_mail_on_its_own(tmp_path, headers, reason):
    """Threading keeps automatic mail out of new tickets; the acknowledgement's own guard must
    hold too, should a ticket ever be opened for one (RFC 3834 section 2)."""
    config = config_module.load(write_config_file(tmp_path, extra=ACKS))
    from db.mailin import acks

    msg = parse(mail(headers=headers))
    planned = acks.plan(open_db(config.database), msg, 1, "technical", config.mail)
    assert reason == planned


# --------------------------------------------------------------- the notice rule on edits

NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def window_db(tmp_path, monkeypatch):
    monkeypatch.setenv("DESK_NOW", clock.iso(NOW))
    config = config_module.load(write_config_file(tmp_path, ("technical",)))
    db = open_db(config.database)
    start = NOW + timedelta(days=10)
    w = windows.add(
        db,
        title="Database upgrade",
        kind="adhoc",
        update_type="security",
        start=start,
        end=start + timedelta(hours=2),
        zone="Europe/London",
        actor="ops",
    )
    return db, w


@pytest.mark.parametrize(
    "move",
    [
        {"start_at": NOW + timedelta(hours=47, minutes=59)},
        {"start_at": NOW + timedelta(hours=3), "end_at": NOW + timedelta(hours=5)},
    ],
)
def test_an_edit_moving_a_window_within_48_hours_is_refused_by_the_database_layer(window_db, move):
    db, w = window_db
    with pytest.raises(windows.NoticeRuleError, match="less than the 48 hours' notice"):
        windows.edit(db, w.id, "ops", move)
    assert (w.start, w.revision) == (windows.get(db, w.id).start, windows.get(db, w.id).revision)


def test_an_edit_within_48_hours_goes_through_with_a_reason_on_record(window_db):
    db, w = window_db
    start = NOW + timedelta(hours=3)
    changed = windows.edit(
        db, w.id, "ops", {"start_at": start, "end_at": start + timedelta(hours=1)},
        force_reason="The vendor moved the patch",
    )  # fmt: skip
    assert (start, "The vendor moved the patch") == (changed.start, changed.forced_reason)


def test_an_edit_48_hours_ahead_or_more_needs_no_reason(window_db):
    db, w = window_db
    start = NOW + timedelta(hours=48)
    changed = windows.edit(db, w.id, "ops", {"start_at": start})
    assert start == changed.start


# ------------------------------------------------------------------- saving attachments


def test_saving_never_overwrites_a_file_that_was_there(tmp_path):
    (tmp_path / "report.pdf").write_bytes(b"the agent's own file")
    saved = files.save(tmp_path, "report.pdf", b"from the mail")
    assert tmp_path / "report (2).pdf" == saved
    assert (b"the agent's own file", b"from the mail") == (
        (tmp_path / "report.pdf").read_bytes(),
        saved.read_bytes(),
    )


def test_saving_never_writes_through_a_symbolic_link(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"keep me")
    folder = tmp_path / "saves"
    folder.mkdir()
    (folder / "notes.txt").symlink_to(outside)
    saved = files.save(folder, "notes.txt", b"from the mail")
    assert (folder / "notes (2).txt", b"keep me") == (saved, outside.read_bytes())


def test_saving_into_something_that_is_not_a_folder_says_so(tmp_path):
    (tmp_path / "a-file").write_bytes(b"")
    for target in (tmp_path / "missing", tmp_path / "a-file"):
        with pytest.raises(DeskError) as caught:
            files.save(target, "x.txt", b"data")
        assert f"{target} is not a folder; name an existing folder" == str(caught.value)


def test_saving_where_writing_is_refused_names_the_file_and_the_reason(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    if os.geteuid() == 0:
        folder = Path("/sys")  # root may write anywhere in a normal folder; not in sysfs
    else:
        folder.chmod(0o500)
    with pytest.raises(DeskError) as caught:
        files.save(folder, "x.txt", b"data")
    assert f"cannot write {folder / 'x.txt'}: Permission denied" == str(caught.value)


def test_a_folder_full_of_copies_is_refused_rather_than_overwritten(tmp_path):
    names = ["a.txt"] + [f"a ({n}).txt" for n in range(2, 1000)]
    for name in names:
        (tmp_path / name).write_bytes(b"old")
    with pytest.raises(DeskError) as caught:
        files.save(tmp_path, "a.txt", b"new")
    assert f"{tmp_path} already holds too many copies of a.txt" == str(caught.value)
    assert {b"old"} == {(tmp_path / n).read_bytes() for n in names}


# ------------------------------------------------------------------------- safe text


def test_one_line_of_untrusted_text_shows_every_control_and_never_wraps():
    shown = safe.text("a\nb\r\tc\x1b[1m\u202e", "bold")
    assert ("a␊b␍␉c␛[1m\\u202e", "bold", True) == (shown.plain, shown.style, shown.no_wrap)
    assert ("a␊b", "", "") == (
        safe.visible("a\nb"),
        safe.text(None).plain,
        safe.visible(None, multiline=True),
    )


def test_a_body_keeps_its_lines_and_tabs_and_still_shows_every_other_control():
    shown = safe.text("line 1\r\n\tline 2\x07\x1b]0;x\n", multiline=True)
    assert ("line 1\n    line 2␇␛]0;x\n", False) == (shown.plain, shown.no_wrap)
