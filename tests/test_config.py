"""Configuration: found in the documented order; every mistake is one line naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from db.core import config
from db.core.errors import ConfigError


def check(tmp_path, text: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        config.load(path)
    message = info.value.message
    assert "\n" not in message and str(path) in message
    return message


BASE = '[database]\npath = "desk.db"\n'


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("", "database.path", "is required"),
        (
            BASE + '[[source]]\nkind = "maildir"\nfunction = "billing"\npath = "x"\n',
            "source[0].function",
            "'billing' is not one of",
        ),
        (BASE + '[[source]]\nkind = "pop3"\nfunction = "sales"\n', "source[0].kind", "'pop3'"),
        (BASE + '[[source]]\nkind = "maildir"\nfunction = "sales"\n', "source[0].path", "required"),
        (
            BASE + '[[source]]\nkind = "maildir"\nfunction = "sales"\npath = "x"\nhots = 1\n',
            "source[0].hots",
            "unknown key",
        ),
        (
            BASE + '[[source]]\nkind = "imap"\nfunction = "sales"\nhost = "mail.example.com"\n'
            'security = "none"\nusername = "u"\npassword_env = "P"\n',
            "source[0].security",
            "not a loopback address",
        ),
        (
            BASE + '[[source]]\nkind = "imap"\nfunction = "sales"\nhost = "h"\nusername = "u"\n',
            "source[0].password_env",
            "exactly one of",
        ),
        (
            BASE + '[[source]]\nkind = "imap"\nfunction = "sales"\nhost = "h"\nusername = "u"\n'
            'password_env = "P"\nport = "993"\n',
            "source[0].port",
            "must be a int",
        ),
        (BASE + '[desk]\ntimezone = "Mars/Olympus"\n', "desk.timezone", "not an IANA time zone"),
        (
            BASE + '[addresses]\n"sales@valuit.com" = "billing"\n',
            "addresses.sales@valuit.com",
            "'billing'",
        ),
        ('[database\npath = "x"', "", "not valid TOML"),
        (
            BASE + '[smtp]\nhost = "smtp.example.com"\nsecurity = "none"\n',
            "smtp.security",
            "not a loopback address",
        ),
        (BASE + '[smtp]\nhost = "h"\nusername = "desk"\n', "smtp.password_env", "exactly one"),
        (BASE + '[smtp]\nhost = "h"\npassword_env = "P"\n', "smtp.password_env", "username"),
        (BASE + '[smtp]\nhost = "h"\nretry_seconds = 0\n', "smtp.retry_seconds", "positive"),
        (BASE + '[smtp]\nhots = "h"\n', "smtp.hots", "unknown key"),
        (BASE + "[functions.billing]\nacknowledge = true\n", "functions.billing", "unknown"),
        (
            BASE + '[functions.sales]\nsender = "sales at valuit"\n',
            "functions.sales.sender",
            "not an email address",
        ),
        (
            BASE + "[functions.sales]\nacknowledge = true\n",
            "functions.sales.sender",
            "no address of it is known",
        ),
        (
            BASE + '[notices]\nsubscribers = ["ops@example.com", "ops"]\n',
            "notices.subscribers[1]",
            "not an email address",
        ),
        (
            BASE + '[functions.sales]\nsender = "Verkauf <verkäufe@valuit.com>"\n',
            "functions.sales.sender",
            "not an email address the desk can send to",
        ),
        (
            BASE + '[[replies.canned]]\nname = "a"\nbody = "x"\n[[replies.canned]]\nname = "a"\n'
            'body = "y"\n',
            "replies.canned[1].name",
            "used by another",
        ),
        (
            BASE + "[replies]\nacknowledge_every_minutes = -1\n",
            "replies.acknowledge_every_minutes",
            "positive",
        ),
    ],
)
def test_mistakes_name_file_key_and_problem(tmp_path, text, key, problem):
    message = check(tmp_path, text)
    assert problem in message
    if key:
        assert f"key '{key}'" in message


def test_search_order_flag_then_env_then_cwd(tmp_path, monkeypatch):
    for name in ("flag.toml", "env.toml", "config.toml"):
        (tmp_path / name).write_text(BASE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DESK_CONFIG", str(tmp_path / "env.toml"))
    assert "flag.toml" == config.find("flag.toml").name
    assert "env.toml" == config.find().name
    monkeypatch.delenv("DESK_CONFIG")
    assert "config.toml" == config.find().name


def test_relative_paths_are_taken_from_the_files_folder(tmp_path, monkeypatch):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "c.toml").write_text(
        BASE + '[[source]]\nkind = "maildir"\nfunction = "sales"\npath = "spool/sales"\n'
    )
    monkeypatch.chdir("/")
    loaded = config.load(tmp_path / "etc" / "c.toml")
    assert (tmp_path / "etc" / "desk.db", tmp_path / "etc" / "spool" / "sales") == (
        loaded.database,
        loaded.sources[0].path,
    )


def test_the_example_config_is_valid():
    loaded = config.load(Path(__file__).parents[1] / "config.example.toml")  # from any folder
    assert 5 == len(loaded.sources)


def test_senders_default_to_the_functions_addresses_and_our_addresses_are_known(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(
        BASE + '[addresses]\n"sales@valuit.com" = "sales"\n'
        '[functions.technical]\nsender = "Tech <tech@valuit.com>"\nacknowledge = true\n'
        '[notices]\nsender = "Valuit Ops <ops@valuit.com>"\n'
    )
    mail = config.load(path).mail
    assert "Valuit Sales Support <sales@valuit.com>" == mail.senders["sales"]
    assert "Tech <tech@valuit.com>" == mail.senders["technical"]
    assert ("technical",) == mail.acknowledge
    assert {"sales@valuit.com", "tech@valuit.com", "ops@valuit.com"} == mail.own_addresses
    assert mail.smtp is None  # no [smtp]: mail waits in the outbox
