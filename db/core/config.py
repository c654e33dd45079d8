"""Loading and checking `config.toml`: where it is found, what it may say, one-line errors.

Every problem is reported as one line naming the file, the key and what is wrong, so a mail
administrator can fix it without reading code. Relative paths are taken from the file's folder.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import rrule

from db.core import sla
from db.core.errors import ConfigError, DeskError
from db.core.mailbox import address, parse_mailbox, recipient
from db.core.migrations import FUNCTIONS, PRIORITIES, UPDATE_TYPES
from db.core.privacy import OWNER_ONLY, Access, group_id

SOURCE_KINDS = ("maildir", "imap")
SECURITY = ("tls", "starttls", "none")
LOG_LEVELS = ("debug", "info", "warning", "error")
SECRET_KEYS = ("password_env", "password_command", "oauth2_token_command", "password")


@dataclass(frozen=True, kw_only=True)
class Server:
    """A mail server the daemon logs in to (IMAP or SMTP): where, how, and where the secret is."""

    host: str = ""
    port: int = 0
    security: str = "tls"
    username: str = ""
    password_env: str = ""
    password_command: str = ""
    oauth2_token_command: str = ""
    password: str = field(default="", repr=False)
    ca_file: Path | None = None


@dataclass(frozen=True)
class Source(Server):
    """One mailbox the daemon reads: a drop folder or an IMAP folder, for one function."""

    name: str
    function: str
    kind: str
    path: Path | None = None
    folder: str = "INBOX"
    addresses: dict[str, str] = field(default_factory=dict)
    after_ingest: str = "none"
    poll_seconds: float = 30.0


@dataclass(frozen=True)
class Recurring:
    """A recurring maintenance window: an RFC 5545 RRULE, a local start time, a duration."""

    name: str
    rrule: str
    start: time
    duration_minutes: int
    zone: str
    kind: str
    update_type: str
    title: str
    features: tuple[str, ...] = ()
    description: str = ""
    anchor: date = date(2000, 1, 1)  # DTSTART's date: fixed, so INTERVAL counts never drift
    # When an occurrence overlaps a deeper rule's: "skip" it, or "merge" it into the deeper
    # window (its span and features); `db.maintenance.recurrence` says which rule is deeper.
    on_overlap: str = "skip"


@dataclass(frozen=True)
class Maintenance:
    """The `[maintenance]` section: the notice rule, verification period, vocabulary, rules."""

    zone: str = "UTC"
    announce_hours: float = 48.0
    verification_hours: float = 72.0
    horizon_days: int = 120
    vocabulary: tuple[str, ...] | None = None  # None: the built-in discrepancy vocabulary
    vocabulary_extra: tuple[str, ...] = ()  # for whatever language the mail is in
    # (ISO 639-1 code, patterns) for one language's rules: `vocabulary_extra = { de = [...] }`
    vocabulary_by_language: tuple[tuple[str, tuple[str, ...]], ...] = ()
    recurring: tuple[Recurring, ...] = ()


@dataclass(frozen=True)
class Smtp(Server):
    """The `[smtp]` section: the server the daemon's sender loop hands outgoing mail to."""

    timeout: float = 30.0
    batch_size: int = 50  # mails handed over per connection
    retry_seconds: float = 60.0  # first retry after a 4xx or an unreachable server; doubles
    give_up_hours: float = 120.0  # a mail still deferred after this is failed
    name: str = "smtp"  # how secrets.resolve names it in errors


@dataclass(frozen=True)
class Canned:
    """A canned reply from `[[replies.canned]]`; `{placeholders}` are filled in when used."""

    name: str
    title: str
    body: str


@dataclass(frozen=True)
class MailOut:
    """What the desk sends and as whom: `[smtp]`, `[functions.*]`, `[replies]`, `[notices]`."""

    smtp: Smtp | None = None
    senders: dict[str, str] = field(default_factory=dict)  # function -> "Name <address>"
    acknowledge: tuple[str, ...] = ()  # functions whose new tickets are acknowledged
    response_times: dict[str, str] = field(default_factory=dict)
    ack_interval_minutes: float = 60.0
    signature: str = ""
    canned: tuple[Canned, ...] = ()
    subscribers: tuple[str, ...] = ()
    notice_sender: str = "general"
    announce_days: float = 7.0
    reminder_hours: float = 24.0
    # `desk serve`'s https URL (its --public-url): notices offer RFC 8058 one-click unsubscribe
    web_url: str = ""
    ops: str = ""  # `[notices] ops`: reminded when an emergency overruns; "" for nobody
    own_addresses: frozenset[str] = frozenset()  # every address of ours: never acknowledged

    def response_time(self, function: str) -> str:
        return self.response_times.get(function, "within one business day")


@dataclass(frozen=True)
class Publish:
    """The `[publish]` section: where the daemon keeps the status site, and the site's URL."""

    dir: Path | None = None  # None: the daemon publishes nothing
    url: str = ""  # e.g. https://status.valuit.com/ ; makes the feed's and JSON's links absolute


@dataclass(frozen=True)
class Config:
    path: Path
    database: Path
    sources: tuple[Source, ...]
    database_access: Access = OWNER_ONLY  # `[database] mode` and `group`
    addresses: dict[str, str] = field(default_factory=dict)
    log_level: str = "info"
    retry_cap_seconds: float = 60.0  # `[ingest]`: the longest wait before a source tries again
    give_up_minutes: float = 30.0  # `[ingest]`: no source progressing this long: exit non-zero
    timezone: str = ""
    maintenance: Maintenance = field(default_factory=Maintenance)
    mail: MailOut = field(default_factory=MailOut)
    publish: Publish = field(default_factory=Publish)
    sla: sla.Policy = field(default_factory=sla.Policy)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def find(explicit: str | Path | None = None) -> Path:
    """The config file to use: `--config`, then `DESK_CONFIG`, `./config.toml`, the XDG dir."""
    if explicit:
        return Path(explicit)
    if os.environ.get("DESK_CONFIG"):
        return Path(os.environ["DESK_CONFIG"])
    local = Path("config.toml")
    if local.exists():
        return local
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    candidate = xdg / "valuit-desk" / "config.toml"
    if candidate.exists():
        return candidate
    raise ConfigError(
        "no configuration found: pass --config PATH, set DESK_CONFIG, or create ./config.toml "
        f"or {candidate} (config.example.toml shows every key)"
    )


def load(explicit: str | Path | None = None) -> Config:
    path = find(explicit)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration: {exc.strerror}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse(data, path)


class Reader:
    """Reads keys of one table, naming the file and key in every complaint."""

    def __init__(self, path: Path, where: str, table: Any) -> None:
        self.path = path
        self.where = where
        if not isinstance(table, dict):
            self.fail("", "must be a table")
        self.table: dict[str, Any] = table

    def fail(self, key: str, problem: str) -> None:
        name = ".".join(part for part in (self.where, key) if part)
        raise ConfigError(f"{self.path}: key '{name}': {problem}")

    def get(self, key: str, kind: type, default: Any = None, *, required: bool = False) -> Any:
        if key not in self.table:
            if required:
                self.fail(key, "is required")
            return default
        value = self.table[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.fail(key, f"must be a {kind.__name__}, not {type(value).__name__}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str | None = None) -> str:
        value = self.get(key, str, default, required=default is None)
        if value not in choices:
            self.fail(key, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def path_value(self, key: str, *, required: bool = False) -> Path | None:
        value = self.get(key, str, required=required)
        if value is None:
            return None
        candidate = Path(value).expanduser()
        return candidate if candidate.is_absolute() else (self.path.parent / candidate)

    def unknown(self, allowed: set[str]) -> None:
        for key in self.table:
            if key not in allowed:
                self.fail(key, f"unknown key (known: {', '.join(sorted(allowed))})")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_MAILDIR_KEYS = {"name", "function", "kind", "path", "addresses"}
_IMAP_KEYS = {
    "name",
    "function",
    "kind",
    "host",
    "port",
    "security",
    "username",
    "folder",
    "ca_file",
    "addresses",
    "after_ingest",
    "poll_seconds",
    *SECRET_KEYS,
}


def _addresses(r: Reader, key: str) -> dict[str, str]:
    """An `address = function` table, addresses lower-cased."""
    table = r.get(key, dict, {})
    for addr, fn in table.items():
        if fn not in FUNCTIONS:
            r.fail(f"{key}.{addr}", f"{fn!r} is not one of {', '.join(FUNCTIONS)}")
        if "@" not in addr:
            r.fail(f"{key}.{addr}", "is not an email address")
    return {addr.lower(): fn for addr, fn in table.items()}


def _source(path: Path, index: int, table: Any, names: set[str]) -> Source:
    r = Reader(path, f"source[{index}]", table)
    kind = r.choice("kind", SOURCE_KINDS)
    function = r.choice("function", FUNCTIONS)
    name = r.get("name", str, f"{function}-{kind}")
    if name in names:
        r.fail("name", f"{name!r} is used by another source; give each source its own name")
    names.add(name)
    addresses = _addresses(r, "addresses")
    if kind == "maildir":
        r.unknown(_MAILDIR_KEYS)
        return Source(
            name, function, kind, path=r.path_value("path", required=True), addresses=addresses
        )
    r.unknown(_IMAP_KEYS)
    server = _server(r, {"tls": 993, "starttls": 143, "none": 143}, needs_login=True)
    after = r.get("after_ingest", str, "none")
    if after not in ("none", "seen") and not (after.startswith("move:") and len(after) > 5):
        r.fail("after_ingest", f"{after!r} is not none, seen or move:<folder>")
    poll = r.get("poll_seconds", float, 30.0)
    if poll <= 0:
        r.fail("poll_seconds", "must be positive")
    return Source(
        name,
        function,
        kind,
        **server,
        folder=r.get("folder", str, "INBOX"),
        ca_file=r.path_value("ca_file"),
        addresses=addresses,
        after_ingest=after,
        poll_seconds=poll,
    )


def _server(r: Reader, ports: dict[str, int], *, needs_login: bool) -> dict[str, Any]:
    """Host, port, security and login of a mail server (IMAP or SMTP), as keyword arguments.

    Clear text is refused off loopback; a login needs exactly one way to its secret.
    """
    host = r.get("host", str, required=True)
    security = r.choice("security", SECURITY, "tls")
    if security == "none" and not _is_loopback(host):
        r.fail(
            "security",
            f"'none' sends mail and passwords in clear; refused for {host!r}, "
            "which is not a loopback address (use tls or starttls)",
        )
    port = r.get("port", int, ports[security])
    if not 0 < port < 65536:
        r.fail("port", f"{port} is not a TCP port")
    username = r.get("username", str, "" if not needs_login else None, required=needs_login)
    secrets = [k for k in SECRET_KEYS if k in r.table]
    if (username or needs_login) and len(secrets) != 1:
        r.fail(
            "password_env",
            "give exactly one of "
            + ", ".join(SECRET_KEYS)
            + (f" (found {', '.join(secrets)})" if secrets else ""),
        )
    if secrets and not username:
        r.fail(secrets[0], "is only used with a username; add username or remove it")
    return {
        "host": host,
        "port": port,
        "security": security,
        "username": username,
        "password_env": r.get("password_env", str, ""),
        "password_command": r.get("password_command", str, ""),
        "oauth2_token_command": r.get("oauth2_token_command", str, ""),
        "password": r.get("password", str, ""),
    }


def _zone(r: Reader, key: str, default: str) -> str:
    """An IANA zone name; "" (where it is the default) means the machine's zone."""
    name = r.get(key, str, default)
    if not name:
        return name
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        r.fail(key, f"{name!r} is not an IANA time zone (e.g. Europe/Berlin)")
    return name


# The languages with discrepancy rules (db/maintenance/wording/language.CODES; a test keeps
# the two equal: db.core cannot import db.maintenance).
DISCREPANCY_LANGUAGES = ("en", "de", "fr", "es", "it", "nl")


def _extra_vocabulary(r: Reader) -> dict[str, Any]:
    """`vocabulary_extra` as a list (any language) or a table of language code -> list, where
    `any` stands for every language."""
    value = r.table.get("vocabulary_extra")
    if not isinstance(value, dict):
        return {"vocabulary_extra": _patterns(r, "vocabulary_extra") or ()}
    extra: tuple[str, ...] = ()
    by_language = []
    inner = Reader(r.path, f"{r.where}.vocabulary_extra", value)
    for code in value:
        if code != "any" and code not in DISCREPANCY_LANGUAGES:
            inner.fail(
                code, f"is not a language with rules (any, {', '.join(DISCREPANCY_LANGUAGES)})"
            )
        patterns = _patterns(inner, code) or ()
        if code == "any":
            extra = patterns
        else:
            by_language.append((code, patterns))
    return {"vocabulary_extra": extra, "vocabulary_by_language": tuple(by_language)}


def _patterns(r: Reader, key: str) -> tuple[str, ...] | None:
    values = r.get(key, list)
    if values is None:
        return None
    for i, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            r.fail(f"{key}[{i}]", "must be a non-empty string")
        try:
            re.compile(value)
        except re.error as exc:
            r.fail(f"{key}[{i}]", f"is not a valid regular expression ({exc})")
    return tuple(values)


_RECURRING_KEYS = {
    "name",
    "rrule",
    "start",
    "duration",
    "zone",
    "kind",
    "update_type",
    "title",
    "features",
    "description",
    "anchor",
    "on_overlap",
}
_OVERLAP_CHOICES = ("skip", "merge")
_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_RRULE_FREQS = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY")


def _recurring(path: Path, index: int, table: Any, zone: str, names: set[str]) -> Recurring:
    r = Reader(path, f"maintenance.recurring[{index}]", table)
    r.unknown(_RECURRING_KEYS)
    name = r.get("name", str, required=True)
    if name in names:
        r.fail("name", f"{name!r} is used by another rule; give each rule its own name")
    names.add(name)
    start = _HHMM.fullmatch(r.get("start", str, required=True))
    if start is None:
        r.fail("start", 'must be a local time written HH:MM, e.g. "02:00"')
    duration = r.get("duration", int, required=True)
    if not 0 < duration <= 7 * 24 * 60:
        r.fail("duration", "must be a number of minutes between 1 and 10080")
    anchor_text = r.get("anchor", str, "2000-01-01")
    try:
        anchor = date.fromisoformat(anchor_text)
    except ValueError:
        r.fail("anchor", f"{anchor_text!r} is not a date written YYYY-MM-DD")
    text = r.get("rrule", str, required=True).strip().removeprefix("RRULE:")
    parts = dict(p.split("=", 1) for p in text.upper().split(";") if "=" in p)
    if parts.get("FREQ") not in _RRULE_FREQS:
        r.fail("rrule", f"FREQ must be one of {', '.join(_RRULE_FREQS)}")
    if {"BYHOUR", "BYMINUTE", "BYSECOND", "DTSTART"} & parts.keys():
        r.fail("rrule", "give the time of day with 'start', not BYHOUR/BYMINUTE/BYSECOND/DTSTART")
    try:
        rrule.rrulestr(text, dtstart=datetime.combine(anchor, time()))
    except (ValueError, TypeError) as exc:
        r.fail("rrule", f"is not a valid RFC 5545 RRULE ({exc})")
    features = r.get("features", list, [])
    if not all(isinstance(f, str) and f.strip() for f in features):
        r.fail("features", "must be a list of feature names")
    return Recurring(
        name=name,
        rrule=text,
        start=time(int(start.group(1)), int(start.group(2))),
        duration_minutes=duration,
        zone=_zone(r, "zone", zone),
        kind=r.choice("kind", ("monthly", "quarterly", "adhoc")),
        update_type=r.choice("update_type", UPDATE_TYPES, "performance"),
        title=r.get("title", str, name),
        features=tuple(f.strip() for f in features),
        description=r.get("description", str, ""),
        anchor=anchor,
        on_overlap=r.choice("on_overlap", _OVERLAP_CHOICES, "skip"),
    )


def _maintenance(path: Path, data: dict[str, Any], desk_zone: str) -> Maintenance:
    r = Reader(path, "maintenance", data.get("maintenance", {}))
    r.unknown(
        {
            "zone",
            "announce_hours",
            "verification_hours",
            "horizon_days",
            "vocabulary",
            "vocabulary_extra",
            "recurring",
        }
    )
    zone = _zone(r, "zone", desk_zone or "UTC")
    hours = {}
    for key, default in (("announce_hours", 48.0), ("verification_hours", 72.0)):
        hours[key] = r.get(key, float, default)
        if hours[key] < 0:
            r.fail(key, "must not be negative")
    horizon = r.get("horizon_days", int, 120)
    if not 1 <= horizon <= 3660:
        r.fail("horizon_days", "must be between 1 and 3660 days")
    rules = r.get("recurring", list, [])
    names: set[str] = set()
    return Maintenance(
        zone=zone,
        announce_hours=hours["announce_hours"],
        verification_hours=hours["verification_hours"],
        horizon_days=horizon,
        vocabulary=_patterns(r, "vocabulary"),
        **_extra_vocabulary(r),
        recurring=tuple(_recurring(path, i, t, zone, names) for i, t in enumerate(rules)),
    )


_SMTP_KEYS = {
    "host", "port", "security", "username", "ca_file", "timeout", "batch_size", "retry_seconds",
    "give_up_hours", *SECRET_KEYS,
}  # fmt: skip


def _positive(r: Reader, key: str, kind: type, default: Any) -> Any:
    value = r.get(key, kind, default)
    if value <= 0:
        r.fail(key, "must be positive")
    return value


def _smtp(path: Path, data: dict[str, Any]) -> Smtp | None:
    if "smtp" not in data:
        return None
    r = Reader(path, "smtp", data["smtp"])
    r.unknown(_SMTP_KEYS)
    server = _server(r, {"tls": 465, "starttls": 587, "none": 25}, needs_login=False)
    return Smtp(
        **server,
        ca_file=r.path_value("ca_file"),
        timeout=_positive(r, "timeout", float, 30.0),
        batch_size=_positive(r, "batch_size", int, 50),
        retry_seconds=_positive(r, "retry_seconds", float, 60.0),
        give_up_hours=_positive(r, "give_up_hours", float, 120.0),
    )


def mailbox(r: Reader, key: str, value: str) -> str:
    """'Name <addr@host>' or 'addr@host', checked, as 'Name <addr@host>'."""
    name, addr = parse_mailbox(value)
    if addr is None:
        r.fail(
            key,
            f"{value!r} is not an email address the desk can send to (write 'Name <address>' "
            "or 'address'; the address in ASCII)",
        )
    return recipient(name, addr)


def _mail_out(path: Path, data: dict[str, Any], addresses: dict[str, str]) -> MailOut:
    functions = Reader(path, "functions", data.get("functions", {}))
    functions.unknown(set(FUNCTIONS))
    senders: dict[str, str] = {}
    for fn in FUNCTIONS:  # by default a function writes from its address in [addresses]
        own = next((a for a, f in addresses.items() if f == fn), None)
        if own:
            senders[fn] = recipient(f"Valuit {fn.capitalize()} Support", own)
    acknowledge, response_times = [], {}
    for fn, table in functions.table.items():
        r = Reader(path, f"functions.{fn}", table)
        r.unknown({"sender", "acknowledge", "response_time"})
        if "sender" in r.table:
            senders[fn] = mailbox(r, "sender", r.get("sender", str))
        if r.get("acknowledge", bool, False):
            acknowledge.append(fn)
        if "response_time" in r.table:
            response_times[fn] = r.get("response_time", str)
    for fn in acknowledge:
        if fn not in senders:
            functions.fail(f"{fn}.sender", "is needed to acknowledge: no address of it is known")

    replies = Reader(path, "replies", data.get("replies", {}))
    replies.unknown({"signature", "acknowledge_every_minutes", "canned"})
    canned, names = [], set()
    for i, table in enumerate(replies.get("canned", list, [])):
        r = Reader(path, f"replies.canned[{i}]", table)
        r.unknown({"name", "title", "body"})
        name = r.get("name", str, required=True)
        if name in names:
            r.fail("name", f"{name!r} is used by another canned reply")
        names.add(name)
        canned.append(Canned(name, r.get("title", str, name), r.get("body", str, required=True)))

    notices = Reader(path, "notices", data.get("notices", {}))
    notices.unknown({"subscribers", "sender", "announce_days", "reminder_hours", "web_url", "ops"})
    web_url = notices.get("web_url", str, "").rstrip("/")
    if web_url and not web_url.startswith("https://"):  # RFC 8058 section 3.1
        notices.fail("web_url", "must be an https:// URL (RFC 8058 one-click needs https)")
    subscribers = notices.get("subscribers", list, [])
    for i, value in enumerate(subscribers):
        if not isinstance(value, str):
            notices.fail(f"subscribers[{i}]", "must be an email address")
        subscribers[i] = address(mailbox(notices, f"subscribers[{i}]", value))
    sender = notices.get("sender", str, "general")
    ops = notices.get("ops", str, "")
    if sender in FUNCTIONS:
        if sender not in senders and subscribers:
            notices.fail("sender", f"the function {sender!r} has no known address")
    else:
        sender = mailbox(notices, "sender", sender)
    own = {a.lower() for a in addresses} | {address(s) for s in senders.values()}
    if sender not in FUNCTIONS:
        own.add(address(sender))
    return MailOut(
        smtp=_smtp(path, data),
        senders=senders,
        acknowledge=tuple(acknowledge),
        response_times=response_times,
        ack_interval_minutes=_positive(replies, "acknowledge_every_minutes", float, 60.0),
        signature=replies.get("signature", str, ""),
        canned=tuple(canned),
        subscribers=tuple(dict.fromkeys(subscribers)),
        notice_sender=sender,
        announce_days=_positive(notices, "announce_days", float, 7.0),
        reminder_hours=_positive(notices, "reminder_hours", float, 24.0),
        web_url=web_url,
        ops=address(mailbox(notices, "ops", ops)) if ops else "",
        own_addresses=frozenset(own),
    )


def _access(r: Reader) -> Access:
    """`[database] mode` (an octal string that lets the owner read and write) and `group`."""
    mode = r.table.get("mode", "0600")
    if not isinstance(mode, str) or not re.fullmatch(r"0?[0-7]{3}", mode):
        r.fail("mode", f'{mode!r} is not an octal permission such as "0600" or "0640"')
    value = int(mode, 8)
    if value & 0o600 != 0o600:
        r.fail("mode", f'{mode!r} must let the owner read and write (e.g. "0600")')
    group = r.get("group", str, "")
    if group:
        try:
            group_id(group)
        except DeskError as exc:
            r.fail("group", f"{exc.message}; create it (groupadd {group}) or remove the key")
    return Access(value, group)


def _publish(path: Path, data: dict[str, Any]) -> Publish:
    r = Reader(path, "publish", data.get("publish", {}))
    r.unknown({"dir", "url"})
    url = r.get("url", str, "")
    if url and not re.match(r"https?://[^/\s]+", url):
        r.fail("url", f"{url!r} is not an http(s) URL such as https://status.valuit.com/")
    return Publish(dir=r.path_value("dir"), url=url.rstrip("/") + "/" if url else "")


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)")
_DURATION = re.compile(r"(?:(\d{1,5})h)?(?:(\d{1,6})m)?")
_CALENDAR_KEYS = {"timezone", "weekdays", "hours", "country", "subdivision", "closed"}
_CLOCKS = ("first_response", "resolution")


def _targets(r: Reader, key: str) -> dict[str, int]:
    """`{priority = "4h"}`: business minutes by priority."""
    table = Reader(r.path, f"{r.where}.{key}", r.get(key, dict, {}))
    table.unknown(set(PRIORITIES))
    found = {}
    for priority in table.table:
        text = table.get(priority, str)
        match = _DURATION.fullmatch(text.strip())
        minutes = int(match.group(1) or 0) * 60 + int(match.group(2) or 0) if match else 0
        if not minutes:
            table.fail(priority, f'{text!r} is not a duration such as "30m", "4h" or "1h30m"')
        found[priority] = minutes
    return found


def _calendar(r: Reader, base: sla.Calendar) -> sla.Calendar | None:
    """The business calendar keys of `r`, over `base`; None when `r` names none of them."""
    if not _CALENDAR_KEYS & r.table.keys():
        return None
    zone = _zone(r, "timezone", base.zone) or "UTC"
    days = r.get("weekdays", list, [_WEEKDAYS[d] for d in base.weekdays])
    if not days or any(d not in _WEEKDAYS for d in days):
        r.fail("weekdays", f'must list days among {", ".join(_WEEKDAYS)}, e.g. ["mon", "fri"]')
    opens, closes = base.opens, base.closes
    if "hours" in r.table:
        hours = _HOURS.fullmatch(r.get("hours", str))
        if hours is None:
            r.fail("hours", 'must be local opening hours written "HH:MM-HH:MM", e.g. "09:00-18:00"')
        opens = int(hours.group(1)) * 60 + int(hours.group(2))
        closes = int(hours.group(3)) * 60 + int(hours.group(4))
        if not opens < closes <= 24 * 60:
            r.fail("hours", "must close after it opens, at 24:00 at the latest")
    country = r.get("country", str, base.country).upper()
    subdivision = r.get("subdivision", str, base.subdivision if "country" not in r.table else "")
    if subdivision and not country:
        r.fail("subdivision", "needs a country (an ISO 3166 code such as DE)")
    if country:
        try:
            sla.public_holidays(country, subdivision.upper())
        except NotImplementedError:
            where = f"{country}-{subdivision}" if subdivision else country
            r.fail(
                "subdivision" if subdivision else "country",
                f"{where!r} has no public holiday calendar (write an ISO 3166 code such as "
                '"DE", and a subdivision such as "BE"; "" for none)',
            )
    closed = r.get("closed", list, list(base.closed))
    for i, value in enumerate(closed):
        try:
            date.fromisoformat(value if isinstance(value, str) else "")
        except ValueError:
            r.fail(f"closed[{i}]", f"{value!r} is not a date written YYYY-MM-DD")
    return sla.Calendar(
        zone=zone,
        weekdays=tuple(sorted(_WEEKDAYS.index(d) for d in set(days))),
        opens=opens,
        closes=closes,
        country=country,
        subdivision=subdivision.upper(),
        closed=tuple(sorted(set(closed))),
    )


def _sla(path: Path, data: dict[str, Any], desk_zone: str) -> sla.Policy:
    """`[sla]`: a base calendar and targets, and `[sla.FUNCTION]` tables overriding them."""
    r = Reader(path, "sla", data.get("sla", {}))
    r.unknown({*_CALENDAR_KEYS, *_CLOCKS, "pause_when_pending", *FUNCTIONS})
    base = _calendar(r, sla.Calendar(zone=desk_zone or "UTC")) or sla.Calendar(
        zone=desk_zone or "UTC"
    )
    functions = {}
    for fn in FUNCTIONS:
        if fn in r.table:
            own = Reader(path, f"sla.{fn}", r.table[fn])
            own.unknown({*_CALENDAR_KEYS, *_CLOCKS})
            functions[fn] = sla.Override(
                _calendar(own, base), _targets(own, "first_response"), _targets(own, "resolution")
            )
    return sla.Policy(
        calendar=base,
        first_response=sla.FIRST_RESPONSE | _targets(r, "first_response"),
        resolution=sla.RESOLUTION | _targets(r, "resolution"),
        functions=functions,
        pause_when_pending=r.get("pause_when_pending", bool, True),
    )


def parse(data: dict[str, Any], path: Path) -> Config:
    """Check a parsed TOML document; `path` is named in errors and anchors relative paths."""
    top = Reader(path, "database", data.get("database", {}))
    database = top.path_value("path", required=True)
    raw_sources = data.get("source", [])
    if not isinstance(raw_sources, list):
        raise ConfigError(f"{path}: key 'source': write each mailbox as a [[source]] table")
    names: set[str] = set()
    sources = tuple(_source(path, i, t, names) for i, t in enumerate(raw_sources))
    ingest = Reader(path, "ingest", data.get("ingest", {}))
    desk = Reader(path, "desk", data.get("desk", {}))
    timezone = _zone(desk, "timezone", "")
    addresses = _addresses(Reader(path, "", data), "addresses")
    known = {k: v for s in sources for k, v in s.addresses.items()} | addresses
    return Config(
        path=path,
        database=database,
        sources=sources,
        database_access=_access(top),
        addresses=addresses,
        log_level=ingest.choice("log_level", LOG_LEVELS, "info"),
        retry_cap_seconds=_positive(ingest, "retry_cap_seconds", float, 60.0),
        give_up_minutes=_positive(ingest, "give_up_minutes", float, 30.0),
        timezone=timezone,
        maintenance=_maintenance(path, data, timezone),
        mail=_mail_out(path, data, known),
        publish=_publish(path, data),
        sla=_sla(path, data, timezone),
        raw=data,
    )
