"""Demo and benchmark mail for the five Valuit support addresses.

`demo_messages()` is a fixed, hand-written story of about 60 mails over ~5 days around a
maintenance window (`demo_window()`): new requests to every function, replies and quoting,
HTML-only mail, an attachment, an out-of-office reply, a bounce, odd charsets and discrepancy
reports after the window. `write_spool()` drops it into a Maildir spool once, for `make run`.
`demo_work()` then plays the agents' part on the stored story: triage, first replies mostly
within the SLA targets and some late, tickets resolved or waiting on the customer, so the list
shows a realistic few overdue. `generate()` streams any number of seeded messages with a support
inbox's mix of MIME shapes, for benchmarks and crash tests; `write_maildir()` writes either into
Maildirs. Same base date or seed, same bytes. Senders use RFC 2606 example domains only.

What the mail says is data in `ingest/demo_mail/`: the story (`story.txt`), its people
(`cast.toml`), the bounce's wording (`bounce.toml`) and what generated mail is made of
(`generated.toml`); this module turns them into messages and writes them.
"""

from __future__ import annotations

import base64
import html
import os
import random
import socket
import sys
import textwrap
import time
import tomllib
import unicodedata
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from db.core import clock, sla
from db.core.config import MailOut
from db.core.connect import open_db, write
from db.core.migrations import FUNCTIONS
from db.mailout import outbox
from db.maintenance import windows
from db.tickets import replies, tickets

DEMO_BASE = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # a Tuesday; the window ran on Sunday
_DATA = resources.files(__package__) / "demo_mail"


def _load(name: str) -> dict[str, Any]:
    return tomllib.loads((_DATA / name).read_text(encoding="utf-8"))


_CAST = _load("cast.toml")  # the people of the story, and the support teams
_TEAMS: dict[str, str] = _CAST["teams"]
_GREETINGS: list[str] = _CAST["phrases"]["greetings"]
_SIGNOFFS: list[str] = _CAST["phrases"]["signoffs"]
_SENDERS: dict[str, dict[str, Any]] = _CAST["senders"]
_AGENTS: list[str] = _CAST["agents"]["names"]
_REPLIES: list[str] = _CAST["agents"]["replies"]
# The story, one mail a block: its format is described at the top of the file.
_SCRIPT = (_DATA / "story.txt").read_text(encoding="utf-8")
_BOUNCE = _load("bounce.toml")  # the delivery report a `bounce` in the story makes


def demo_window(base: datetime | None = None) -> tuple[datetime, datetime]:
    """Start and end of the maintenance window the demo mail talks about: 56 h to 52 h before
    `base` (Sunday 01:00-05:00 UTC for `DEMO_BASE`)."""
    base = _base(base)
    return base - timedelta(hours=56), base - timedelta(hours=52)


def _base(base: datetime | None) -> datetime:
    if base is None:  # three days ago, so the demo ends about now
        return clock.now().replace(second=0, microsecond=0) - timedelta(days=3)
    if base.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous; pass an aware one")
    return base


def demo_messages(base: datetime | None = None) -> list[tuple[str, bytes]]:
    """The demo set as (function, raw bytes), oldest first, dated from ~61 h before `base` to
    ~68 h after it. `base` defaults to three days before `db.core.clock.now()`."""
    base = _base(base)
    start, _ = demo_window(base)
    fill = {"{day}": f"{start:%A}", "{eve}": f"{start - timedelta(days=1):%A}"}
    notice = f"<notice-{start:%Y%m%d}@valuit.com>"
    rng = random.Random(2026)
    sent: dict[str, tuple[EmailMessage, str, bytes]] = {}
    out: list[tuple[str, bytes]] = []
    previous = base - timedelta(days=30)
    for index, block in enumerate(_SCRIPT.split("\n== ")[1:], start=1):
        head, _, text = block.partition("\n")
        meta, _, subject = head.partition(" | ")
        hours, function, who, *tags = meta.split()
        for key, value in fill.items():
            subject, text = subject.replace(key, value), text.replace(key, value)
        jitter = timedelta(minutes=rng.randint(0, 40), seconds=rng.randint(0, 59))
        moment = base + timedelta(hours=float(hours)) + jitter
        if moment <= previous:
            raise ValueError(f"demo script out of order at message {index}")
        previous = moment
        parent = next((sent[tag[1:]] for tag in tags if tag.startswith("<")), None)
        if "bounce" in tags and parent:
            out.append(
                (
                    function,
                    _received(function, moment).encode()
                    + _bounce(index, moment, function, parent[2]),
                )
            )
            continue
        msg, body = _compose(index, moment, function, who, subject, text, tags, parent, rng)
        if "ooo" in tags:
            msg["In-Reply-To"], msg["References"] = notice, notice
        raw = msg.as_bytes()
        for tag in tags:
            if tag.startswith("#"):
                sent[tag[1:]] = (msg, body, raw)
        out.append((function, _received(function, moment).encode() + raw))
    return out


def _received(function: str, moment: datetime) -> str:
    """The trace line our own mail server adds on delivery: when the mail really arrived."""
    arrived = format_datetime((moment + timedelta(seconds=4)).astimezone(UTC))
    return (
        f"Received: from mx.example.net by mx.valuit.com (Postfix) with ESMTPS\n"
        f"\tfor <{function}@valuit.com>; {arrived}\n"
    )


def _compose(
    index: int,
    moment: datetime,
    function: str,
    who: str,
    subject: str,
    text: str,
    tags: list[str],
    parent: tuple[EmailMessage, str, bytes] | None,
    rng: random.Random,
) -> tuple[EmailMessage, str]:
    sender = _SENDERS[who]
    name, addr, offset = sender["name"], sender["address"], sender["utc_offset"]
    msg = EmailMessage()
    msg["From"] = Address(name, addr_spec=addr)
    team = _TEAMS[function] if index % 3 else ""
    msg["To"] = Address(team, addr_spec=f"{function}@valuit.com")
    for tag in tags:
        if tag.startswith("cc:"):
            msg["Cc"] = Address(_TEAMS[tag[3:]], addr_spec=f"{tag[3:]}@valuit.com")
    if parent:
        earlier = parent[0]
        if subject == "^":
            subject = "Re: " + str(earlier["Subject"]).removeprefix("Re: ")
        msg["In-Reply-To"] = earlier["Message-ID"]
        msg["References"] = " ".join(filter(None, (earlier["References"], earlier["Message-ID"])))
    msg["Subject"] = subject
    msg["Date"] = format_datetime(moment.astimezone(timezone(timedelta(hours=offset))))
    msg["Message-ID"] = f"<demo-{index:02d}@{addr.partition('@')[2]}>"
    if "ooo" in tags:
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Autoreply"] = "yes"
    if "html" in tags:
        msg.set_content(text.strip() + "\n", subtype="html")
        return msg, text
    body = _paragraphs(text)
    if not parent and "nosig" not in tags and not body.split("\n")[0].endswith(","):
        body = rng.choice(_GREETINGS) + "\n\n" + body
    if name and "nosig" not in tags:
        body += "\n\n" + rng.choice(_SIGNOFFS).format(first=name.split()[0], name=name)
    if parent and "quote" in tags:
        when = parent[0]["Date"].datetime
        wrote = parent[0]["From"].addresses[0].display_name
        quoted = "\n".join(f"> {line}".rstrip() for line in parent[1].splitlines())
        body += f"\n\nOn {when:%a, %d %b %Y at %H:%M}, {wrote} wrote:\n{quoted}"
    charset, cte = ("utf-8", None)
    if "qp" in tags:
        charset, cte = "iso-8859-1", "quoted-printable"
    elif "b64" in tags:
        cte = "base64"
    msg.set_content(body + "\n", charset=charset, cte=cte)
    if "pdf" in tags:
        pdf = _fake_pdf(rng)
        msg.add_attachment(pdf, "application", "pdf", filename="statement-2026-10.pdf")
        msg.set_boundary(f"==demo-{index:02d}-mixed==")
    return msg, body


def _paragraphs(text: str) -> str:
    """Rewrap the script's paragraphs at 72 columns; short lines keep their line break."""
    paragraphs = []
    for paragraph in text.strip().split("\n\n"):
        lines, pending = [], ""
        for line in paragraph.splitlines():
            pending = f"{pending} {line}" if pending else line
            if len(line) < 80:
                lines.append(textwrap.fill(pending, 72))
                pending = ""
        if pending:
            lines.append(textwrap.fill(pending, 72))
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def _fake_pdf(rng: random.Random) -> bytes:
    page = b"BT /F1 11 Tf 72 720 Td (Valuit statement October 2026 - closing EUR 12,480.35) Tj ET"
    stream = page + b"\n" + rng.randbytes(3500)
    return (
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        + b"4 0 obj\n<< /Length %d >>\nstream\n" % len(stream)
        + stream
        + b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )


def _bounce(index: int, moment: datetime, function: str, original: bytes) -> bytes:
    """A Postfix-style delivery status notification for `original` (bounce.toml)."""
    headers = original.split(b"\n\n", 1)[0].decode("ascii")
    return (
        _BOUNCE["template"]
        .format(
            index=index,
            date=format_datetime(moment),
            function=function,
            lost=_BOUNCE["lost"],
            boundary=f"{index:02d}.demo-bounce/mx1.example.net",
            headers=headers,
        )
        .encode("ascii")
    )


# ---- generated mail for benchmarks and crash tests ------------------------------------------

_GENERATED = _load("generated.toml")  # what generated mail is made of
_PEOPLE = _GENERATED["people"]
_WEIGHTS = [_GENERATED["weights"][function] for function in FUNCTIONS]
_SUBJECTS: dict[str, list[str]] = _GENERATED["subjects"]
_SENTENCES: dict[str, list[str]] = _GENERATED["sentences"]
_POOLS = {function: _SENTENCES[function] + _SENTENCES["any"] for function in FUNCTIONS}
_SLOTS: dict[str, list[str]] = _GENERATED["slots"]
_SIZES: dict[str, list[int]] = _GENERATED["sizes"]
_ATTACHMENTS = [
    (a["content_type"], a["filename"], bytes.fromhex(a["magic"])) for a in _GENERATED["attachments"]
]
_TO = {function: formataddr((team, f"{function}@valuit.com")) for function, team in _TEAMS.items()}


class _Sent(NamedTuple):  # what a later reply needs from a generated message
    mid: str
    subject: str
    function: str
    refs: str
    person: tuple[str, str, timezone, str]
    when: datetime
    body: str


def generate(count: int, seed: int = 7) -> Iterator[tuple[str, bytes]]:
    """Yield `count` (function, raw bytes) messages, deterministic for `seed`, in constant memory:
    ~70% short text/plain, ~15% multipart/alternative, ~8% replies quoting an earlier generated
    message, ~5% multipart/mixed with a 5-60 KB attachment, ~2% auto-replies."""
    rng = random.Random(seed)
    people = [_person(rng) for _ in range(300)]
    recent: deque[_Sent] = deque(maxlen=100)
    moment = DEMO_BASE.timestamp() - 30 * 86400
    for i in range(count):
        moment += rng.uniform(1.0, 120.0)
        roll = rng.random()
        kind = "plain" if roll < 0.70 else "alternative" if roll < 0.85 else "reply"
        kind = kind if roll < 0.93 else "mixed" if roll < 0.98 else "auto"
        parent = rng.choice(recent) if kind in ("reply", "auto") and recent else None
        slots = {key: rng.choice(values) for key, values in _SLOTS.items()}
        slots.update(n=str(rng.randint(2, 60)), ref=f"TRX-{rng.randint(10000, 99999)}",
                     amount=f"EUR {rng.randint(5, 9999)}.{rng.randint(0, 99):02d}",
                     amount2=f"EUR {rng.randint(5, 9999)}.{rng.randint(0, 99):02d}")  # fmt: skip
        if parent:  # a follow-up (or its sender's autoresponder) stays in the parent's thread
            function, person = parent.function, parent.person
            subject = "Re: " + parent.subject.removeprefix("Re: ")
        else:
            kind = "plain" if kind in ("reply", "auto") else kind
            function = rng.choices(FUNCTIONS, _WEIGHTS)[0]
            person = rng.choice(people)
            subject = rng.choice(_SUBJECTS[function]).format_map(slots)
        name, addr, tz, sender = person
        when = datetime.fromtimestamp(moment, tz)
        mid = f"<gen-{seed}-{i}.{rng.getrandbits(40):010x}@{addr.partition('@')[2]}>"
        head = _received(function, when)
        head += f"From: {sender}\nTo: {_TO[function]}\nDate: {format_datetime(when)}\n"
        head += f"Message-ID: {mid}\n"
        token = f"Account reference: VA-{seed}-{i:07d}"
        if parent and kind == "auto":
            head += f"Subject: Automatic reply: {parent.subject}\nIn-Reply-To: {parent.mid}\n"
            head += "Auto-Submitted: auto-replied\nX-Autoreply: yes\n"
            text = "I am out of the office until next week and will read your message when I am"
            yield function, _plain(head, f"{text} back.\n\n{token}")
            continue
        sign = rng.choice(_SIGNOFFS).format(first=name.split(" ")[0], name=name) if name else ""
        prose = _prose(rng, _POOLS[function], slots, rng.randint(*_SIZES[kind]))
        body = "\n\n".join([rng.choice(_GREETINGS), *prose, token, sign]).rstrip()
        refs = ""
        if parent:
            refs = " ".join([*parent.refs.split()[-8:], parent.mid])
            head += f"In-Reply-To: {parent.mid}\nReferences: {refs}\n"
            quoted = "\n".join(f"> {line}".rstrip() for line in parent.body.splitlines())
            wrote = parent.person[0] or parent.person[1]
            body += f"\n\nOn {parent.when:%a, %d %b %Y at %H:%M}, {wrote} wrote:\n{quoted}"
        head += f"Subject: {subject}\n"
        if kind == "alternative":
            raw = _alternative(head, body, slots, f"alt-{seed}-{i}")
        elif kind == "mixed":
            content_type, filename, magic = rng.choice(_ATTACHMENTS)
            data = magic + rng.randbytes(rng.randint(3700, 44000))
            raw = _mixed(head, body, content_type, filename, data, f"mixed-{seed}-{i}")
        else:
            raw = _plain(head, body)
        recent.append(_Sent(mid, subject, function, refs, person, when, body[:1500]))
        yield function, raw


def _person(rng: random.Random) -> tuple[str, str, timezone, str]:
    first, last = rng.choice(_PEOPLE["first"]), rng.choice(_PEOPLE["last"])
    ascii_name = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore")
    addr = f"{ascii_name.decode().lower()}{rng.randint(1, 99)}@{rng.choice(_PEOPLE['domains'])}"
    name = f"{first} {last}" if rng.random() < 0.9 else ""
    tz = timezone(timedelta(hours=rng.choice(_PEOPLE["utc_offsets"])))
    return name, addr, tz, formataddr((name, addr))


def _prose(
    rng: random.Random, pool: tuple[str, ...], slots: dict[str, str], target: int
) -> list[str]:
    """Paragraphs of 2-5 sentences, about `target` characters in all (at least one paragraph)."""
    paragraphs: list[str] = []
    size = 0
    while True:
        chosen = rng.sample(pool, rng.randint(2, 5))
        paragraph = " ".join(sentence.format_map(slots) for sentence in chosen)
        if paragraphs and size + len(paragraph) > target:
            return paragraphs
        paragraphs.append(paragraph)
        size += len(paragraph) + 2


_TEXT = "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n"


def _plain(head: str, body: str) -> bytes:
    return f"{head}MIME-Version: 1.0\n{_TEXT}\n{body}\n".encode()


def _alternative(head: str, body: str, slots: dict[str, str], boundary: str) -> bytes:
    paragraphs = "".join(
        f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>\n" for p in body.split("\n\n")
    )
    table = (
        '<table border="1"><tr><th>Reference</th><th>Expected</th><th>Shown</th></tr>\n'
        f"<tr><td>{slots['ref']}</td><td>{slots['amount']}</td><td>{slots['amount2']}</td></tr>"
        '</table>\n<p><a href="https://app.example.com/help">Help centre</a></p>\n'
    )
    page = f"<html><body>\n{paragraphs}{table}</body></html>"
    return (
        f'{head}MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="{boundary}"\n\n'
        f"--{boundary}\n{_TEXT}\n{body}\n"
        f"--{boundary}\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 8bit\n"
        f"\n{page}\n--{boundary}--\n"
    ).encode()


def _mixed(head: str, body: str, kind: str, name: str, data: bytes, boundary: str) -> bytes:
    encoded = base64.encodebytes(data).decode("ascii")
    return (
        f'{head}MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="{boundary}"\n\n'
        f"--{boundary}\n{_TEXT}\n{body}\n"
        f'--{boundary}\nContent-Type: {kind}; name="{name}"\n'
        f'Content-Disposition: attachment; filename="{name}"\nContent-Transfer-Encoding: base64\n'
        f"\n{encoded}--{boundary}--\n"
    ).encode()


# ---- Maildir ----------------------------------------------------------------------------------


def write_maildir(
    root: Path, messages: Iterable[tuple[str, bytes]], *, per_function: bool = True
) -> int:
    """Write `messages` as Maildir files into `root/<function>/new` (or `root/new` when not
    `per_function`), each first into `tmp/` and then renamed, so a reader never sees half a
    file. Names sort in write order. Returns how many were written."""
    root = Path(root)
    for folder in [root / function for function in FUNCTIONS] if per_function else [root]:
        for sub in ("tmp", "new", "cur"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
    stamp = time.time_ns()
    host = socket.gethostname().replace("/", "\\057").replace(":", "\\072") or "localhost"
    prefix = f"{stamp // 10**9}.M{stamp // 1000 % 10**6:06d}P{os.getpid()}Q"
    count = 0
    for count, (function, raw) in enumerate(messages, start=1):
        if function not in FUNCTIONS:
            raise ValueError(f"unknown function {function!r}; expected one of {FUNCTIONS}")
        folder = root / function if per_function else root
        name = f"{prefix}{count:08d}.{host}"
        with open(folder / "tmp" / name, "xb") as handle:
            handle.write(raw)
        os.rename(folder / "tmp" / name, folder / "new" / name)
    return count


def write_spool(root: Path, base: datetime | None = None) -> int:
    """Seed `root` with the demo set once: returns 0 without writing when `root/.seeded` exists,
    else writes the demo messages per function and then creates the marker."""
    marker = Path(root) / ".seeded"
    if marker.exists():
        return 0
    count = write_maildir(Path(root), demo_messages(base))
    marker.write_text(f"{count} demo messages, {clock.now_iso()}\n")
    return count


def record_demo_window(database: Path, base: datetime | None = None) -> None:
    """The completed monthly window the demo mail talks about, so the desk links the tickets
    sent during it and the discrepancy reports after it."""
    start, end = demo_window(base)
    db = open_db(database)
    with write(db):
        windows.insert(
            db,
            title="Monthly maintenance: ledger and statements",
            kind="monthly",
            update_type="performance",
            start=start,
            end=end,
            zone="UTC",
            actor="demo",
            features=("Transfers", "Statements", "API"),
            announced=True,
            description="Routine database maintenance and statement service upgrade.",
        )
    db.close()


# Triage: the share of tickets at each priority; discrepancy reports keep the rule's "high".
_PRIORITY_MIX = {"low": 15, "normal": 60, "high": 18, "urgent": 7}
LATE_SHARE = 0.15  # of first replies that come after their due time


def demo_work(database: Path) -> int:
    """Play the agents' part on the tickets the stored demo mail opened, once (a second call
    finds their work and does nothing); the tickets worked. Each ticket is triaged minutes
    after it came; its first reply comes after a share of its first-response target in
    business time (`db.core.sla`, the policy the daemon saved), about one in seven late; a
    reply not yet due at the present stays unwritten. A ticket opened by a machine's mail is
    closed unanswered. Replies are recorded as sent: the demo has no mail server."""
    with closing(open_db(database)) as db:
        if tickets.acted(db, _AGENTS):
            return 0
        policy, rng, now = sla.load(db), random.Random(2026), clock.now()
        mail = MailOut(
            senders={fn: formataddr((team, f"{fn}@valuit.com")) for fn, team in _TEAMS.items()},
            own_addresses=frozenset(f"{fn}@valuit.com" for fn in FUNCTIONS),
        )
        rows = tickets.openings(db)
        for row in rows:
            _work(db, row, mail, policy, rng, now)
        return len(rows)


def _work(
    db: Any,
    row: dict[str, Any],
    mail: MailOut,
    policy: sla.Policy,
    rng: random.Random,
    now: datetime,
) -> None:
    """One ticket's agent work (`demo_work`; `row` from `tickets.openings`), each action at its
    moment in the past."""
    ticket_id, function, created = row["id"], row["function"], clock.parse(row["created_at"])
    agent = rng.choice(_AGENTS)

    def change(moment: datetime, **changes: Any) -> None:
        with clock.fixed_at(moment):
            tickets.update(db, ticket_id, tickets.get(db, ticket_id)["version"], agent, **changes)

    if row["auto"]:
        change(created + timedelta(minutes=10), status="closed")
        return
    priority = rng.choices(list(_PRIORITY_MIX), list(_PRIORITY_MIX.values()))[0]
    if row["kind"] != "discrepancy" and priority != "normal":
        change(created + timedelta(minutes=5), priority=priority)
    priority = tickets.get(db, ticket_id)["priority"]
    calendar = policy.calendar_of(function)
    late = rng.random() < LATE_SHARE
    share = rng.uniform(1.2, 2.5) if late else rng.uniform(0.1, 0.9)
    answered = calendar.add(created, policy.target("first_response", function, priority) * share)
    if answered >= now:
        return
    with clock.fixed_at(answered):
        outbox_id = replies.send(db, ticket_id, rng.choice(_REPLIES), agent, mail)
        with write(db):
            outbox.sent(db, outbox_id)
    target = policy.target("resolution", function, priority)
    # Settled after the customer's last word, or their mail would have reopened it.
    after = max(answered, clock.parse(row["last_message_at"]))
    settled = calendar.add(after, target * rng.uniform(0.05, 0.5))
    roll = rng.random()
    if roll < 0.7:
        if settled < now:
            change(settled, status="resolved")
    elif roll < 0.85:
        change(answered + timedelta(minutes=2), status="pending")


def main(argv: list[str] | None = None) -> int:
    """`python -m ingest.demo DIR [DATABASE]`: seed DIR with the demo set once (and record its
    maintenance window in DATABASE); `python -m ingest.demo DIR COUNT [SEED]`: write COUNT
    generated messages; `python -m ingest.demo --work DATABASE`: the agents' part on the stored
    demo mail, once (`demo_work`)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "--work":
        print(f"{demo_work(Path(args[1]))} demo tickets worked")
        return 0
    if not args or len(args) > 3:
        print(main.__doc__, file=sys.stderr)
        return 2
    root = Path(args[0])
    if len(args) == 1 or not args[1].isdigit():
        written = write_spool(root)
        if written and len(args) == 2:
            record_demo_window(Path(args[1]))
        print(f"{written} demo messages written to {root}")
    else:
        seed = int(args[2]) if len(args) > 2 else 7
        print(f"{write_maildir(root, generate(int(args[1]), seed))} messages written to {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
