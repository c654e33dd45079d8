"""Address headers (From, Sender, To, Cc, Reply-To) read as mail clients read them (RFC 5322 3.4).

A header is split into mailboxes first and its encoded words decoded after, per mailbox: an
encoded word is one word of a name (RFC 2047 5), so a comma inside one, `=?utf-8?q?Doe=2C_Jane?=`,
is part of the name and separates nothing. Then the repairs mail clients make for what real
software sends:

- a name with an unquoted comma, `Smith, Jane <jane.smith@example.com>`: words with no address
  before a comma start the next mailbox's name, `Smith, Jane` (cpython #143938);
- an encoded word holding the whole mailbox, `=?utf-8?q?Jane_Doe_=3Cjane=40example.com=3E?=`,
  which RFC 2047 5 forbids and some mailers send: decoded, then read again;
- a comment as the name, `jane@example.com (Jane Doe)`, the legacy form RFC 5322 3.4 notes;
- a name before an address without angle brackets, `Jane Doe jane@example.com`;
- group syntax, `Team: a@example.com, b@example.com;`: its members (RFC 5322 3.4);
- a missing `>`, words after the address, spaces around `@` and `.` (RFC 5322 4.4 obs-).

Each repair is recorded as a defect of the message. The requester is the From's author, or the
Sender when From names several (RFC 5322 3.6.2), and only ever a real address
(`db.core.mailbox.real_address`); without one the message has the `NoUsableSender` defect and
an empty address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from functools import lru_cache
from typing import NamedTuple

from db.core.mailbox import real_address, recipient
from ingest.charsets import clean, decode_words
from ingest.headers import Fields, header, raw_header

# One token of an address header; specials are the separators of RFC 5322 3.2.3.
_TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<encoded>=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)(?=[\s<>,;:@()"]|$)  # whole, specials inside
    |"(?P<quoted>(?:[^"\\]|\\.?)*)"?
    |(?P<comment>\()
    |(?P<literal>\[[^\]]*\]?)
    |(?P<special>[<>,;:@])
    |(?P<atom>[^\s"(<>,;:@\[]+)
    """,
    re.VERBOSE | re.DOTALL,
)
# The shapes nearly all mail has, `Name <addr>`, `"Name" <addr>` and `addr`, for which the
# tokens would give the same: no comment, quoted pair, group, list, or repair.
_SIMPLE = re.compile(  # possessive throughout, so a long header cannot make it backtrack
    r'\s*+(?:(?:"(?P<quoted>[^"\\]*+)"\s*+|(?P<phrase>[^"\\(),:;<>@\[\]]*+))<)?+'
    r"(?P<addr>[^\s\\\"(),:;<>@\[\]]++@[^\s\\\"(),:;<>@\[\]]++)(?(quoted)>|(?(phrase)>))\s*+"
)
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_SPACES = re.compile(r"\s+")
_ADDR_SPEC = re.compile(r"[^@\s]+@[^@\s]+")
# Decoded text that holds an address: read again, as the mailbox it is.
_HOLDS_ADDRESS = re.compile(r"@|<")
# The same senders and the desk's own addresses come again and again, so a header's mailboxes
# are kept once read; a longer header is rare and is not kept, so the cache stays small.
_CACHED_LENGTH = 300


@dataclass(frozen=True)
class _Token:
    kind: str  # 'word', 'quoted', 'comment', or the special character itself
    text: str  # the word as written (encoded words undecoded); a quoted string's or comment's
    spaced: bool  # white space came before it


@dataclass(frozen=True)
class Mailbox:
    """One mailbox of an address header: its decoded display name ('' when none) and its
    address, lower-case, as written ('' when the header held none where it belongs). The
    address is not checked beyond local@domain; `mailbox.real_address` does that."""

    name: str
    addr: str


class Author(NamedTuple):
    """Who wrote a message, as the desk answers them: `addr` a real address or ''."""

    name: str
    addr: str


def mailboxes(headers: Message | Fields, field: str, defects: list[str]) -> list[Mailbox]:
    """The mailboxes of the first `field` header; the repairs made are added to `defects`."""
    return read(raw_header(headers, field), defects)


def read(value: str, defects: list[str], *, decode: bool = True) -> list[Mailbox]:
    """The mailboxes of an address header's unfolded value (encoded words undecoded); a name
    that no address follows is a mailbox with the address ''. Never raises."""
    if not value:
        return []
    if len(value) > _CACHED_LENGTH:
        return _read(value, defects, decode)
    found, repairs = _read_once(value, decode)
    defects.extend(repairs)
    return list(found)


@lru_cache(maxsize=4096)
def _read_once(value: str, decode: bool) -> tuple[tuple[Mailbox, ...], tuple[str, ...]]:
    defects: list[str] = []
    return tuple(_read(value, defects, decode)), tuple(defects)


def _read(value: str, defects: list[str], decode: bool) -> list[Mailbox]:
    simple = _SIMPLE.fullmatch(value)
    if simple and "=?" not in simple["addr"]:  # the usual one mailbox, read the same, faster
        name = _name([simple["quoted"] or simple["phrase"] or ""], decode)
        return [Mailbox(name, _addr(simple["addr"]))]
    found: list[Mailbox] = []
    pending: list[str] = []  # names before an unquoted comma, waiting for their address
    encoded = decode and "=?" in value
    for entry in _entries(_tokens(value)):
        words, spec, leading = _mailbox(entry, defects)
        name = _name(words, decode)
        if spec is None and encoded and _HOLDS_ADDRESS.search(name):
            defects.append("AddressInEncodedWord")
            inner = read(name, defects, decode=False)
            if len(inner) != 1:
                found.extend(inner)
                continue
            name, spec, leading = inner[0].name, inner[0].addr, bool(inner[0].name)
        if spec is None:
            if name:
                pending.append(name)
            continue
        if pending and leading:
            defects.append("UnquotedCommaInName")
            name = ", ".join([*pending, name])
        else:
            found.extend(_unaddressed(pending, defects))
        pending = []
        found.append(Mailbox(name, _addr(spec)))
    return found + _unaddressed(pending, defects)


def _unaddressed(names: list[str], defects: list[str]) -> list[Mailbox]:
    if names:
        defects.append("NameWithoutAddress")
    return [Mailbox(name, "") for name in names]


def author(headers: Message | Fields, defects: list[str]) -> Author:
    """The author the desk answers (RFC 5322 3.6.2): the From's one mailbox; when From names
    several, the Sender, who is then required and responsible, else the first with a real
    address (`MultipleFrom`); when From has no real address, the Sender's. Without any the
    address is '' (`NoUsableSender`) and the name is the From's text, whatever it held."""
    authors = [m for m in mailboxes(headers, "from", defects) if m.addr or m.name]
    senders = [m for m in mailboxes(headers, "sender", defects) if m.addr]
    usable = [Author(m.name, a) for m in authors if (a := real_address(m.addr))]
    responsible = [Author(m.name, a) for m in senders if (a := real_address(m.addr))]
    if sum(bool(m.addr) for m in authors) > 1:
        defects.append("MultipleFrom")
        usable = responsible + usable
    else:
        usable += responsible
    if usable:
        return usable[0]
    defects.append("NoUsableSender")
    # What the From held instead, so the agent sees whom the mail claims to be from.
    return Author(_SPACES.sub(" ", header(headers, "from"))[:200], "")


def display(mailbox: Mailbox) -> str:
    """'Name <addr>', quoted where needed so that a stored list reads back as the same
    mailboxes (a name may hold a comma); the name alone when there is no address."""
    return recipient(mailbox.name, mailbox.addr) if mailbox.addr else mailbox.name


def _tokens(value: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos, spaced = 0, False
    while pos < len(value):
        match = _TOKEN.match(value, pos)
        assert match is not None  # every character starts one kind of token or another
        kind = match.lastgroup
        if kind == "space":
            spaced = True
        elif kind == "comment":
            text, end = _comment(value, match.end())
            tokens.append(_Token("comment", text, spaced))
            pos, spaced = end, False
            continue
        elif kind == "quoted":
            tokens.append(_Token("quoted", _ESCAPE.sub(r"\1", match.group("quoted")), spaced))
            spaced = False
        elif kind == "special":
            tokens.append(_Token(match.group(), match.group(), spaced))
            spaced = False
        else:
            tokens.append(_Token("word", match.group(), spaced))
            spaced = False
        pos = match.end()
    return tokens


def _comment(value: str, pos: int) -> tuple[str, int]:
    """The text of a comment opened before `pos` (nested, with quoted pairs: RFC 5322 3.2.2)
    and where it ends; an unclosed comment runs to the end."""
    depth, out = 1, []
    while pos < len(value):
        char = value[pos]
        if char == "\\" and pos + 1 < len(value):
            out.append(value[pos + 1])
            pos += 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return "".join(out), pos + 1
        out.append(char)
        pos += 1
    return "".join(out), pos


def _entries(tokens: list[_Token]) -> list[list[_Token]]:
    """The tokens of each mailbox: split at commas and semicolons outside angle brackets,
    a group's name dropped at its colon."""
    entries: list[list[_Token]] = [[]]
    angle = route = False
    for token in tokens:
        current = entries[-1]
        if token.kind == "<":
            angle, route = True, False
        elif token.kind == ">":
            angle = False
        elif angle and token.kind == "@" and current and current[-1].kind == "<":
            route = True  # <@relay,@relay:jane@example.com>, RFC 5322 4.4 obs-route
        elif angle and route and token.kind == ":":
            route = False
        elif token.kind in (",", ";") and not route:
            angle = False  # a missing `>` ends at the next mailbox
            entries.append([])
            continue
        elif token.kind == ":" and not angle and not any(t.kind in ("<", "@") for t in current):
            current.clear()  # a group's display name; its members follow
            continue
        current.append(token)
    return [e for e in entries if e]


def _mailbox(tokens: list[_Token], defects: list[str]) -> tuple[list[str], str | None, bool]:
    """(name's words, the address as written or None when there is none, whether the name came
    before the address) of one mailbox's tokens."""
    kinds = [t.kind for t in tokens]
    if "<" in kinds:
        start = kinds.index("<")
        end = kinds.index(">", start) if ">" in kinds[start:] else len(tokens)
        inner = tokens[start + 1 : end]
        if inner and inner[0].kind == "@" and ":" in (t.kind for t in inner):
            inner = inner[[t.kind for t in inner].index(":") + 1 :]
        if end == len(tokens):
            defects.append("MissingAngleBracket")
        spec = _spec(inner, defects) if "@" in (t.kind for t in inner) else _join(inner)
        before, after = tokens[:start], [*tokens[end + 1 :], *_comments(inner)]
    elif "@" in kinds:
        at = kinds.index("@")
        first, last = _extent(tokens, at)
        spec = _spec(tokens[first : last + 1], defects)
        before, after = tokens[:first], tokens[last + 1 :]
        if before and any(t.kind != "comment" for t in before):
            defects.append("MissingAngleBracket")
    else:
        return _words(tokens), None, False
    name = _words(before)
    if any(t.kind != "comment" for t in after):
        defects.append("JunkAfterAddress")
    if not name:  # jane@example.com (Jane Doe): the comment names her
        name = [t.text for t in after if t.kind == "comment"][:1]
    return name, spec, bool(before)


def _extent(tokens: list[_Token], at: int) -> tuple[int, int]:
    """The first and last token of the addr-spec around the `@` at `at`: one word each side,
    and the words a dot joins to them (`jane . doe @ example . com`, obs-local-part)."""
    first = at - 1 if at > 0 and tokens[at - 1].kind in ("word", "quoted") else at
    while first > 0 and _dotted(tokens[first - 1], tokens[first]):
        first -= 1
    last = at + 1 if at + 1 < len(tokens) and tokens[at + 1].kind == "word" else at
    while last + 1 < len(tokens) and _dotted(tokens[last], tokens[last + 1]):
        last += 1
    return first, last


def _dotted(left: _Token, right: _Token) -> bool:
    return (
        left.kind in ("word", "quoted")
        and right.kind in ("word", "quoted")
        and (left.text.endswith(".") or right.text.startswith("."))
    )


def _spec(tokens: list[_Token], defects: list[str]) -> str:
    """An addr-spec's text without its comments and folding white space. Encoded words in it,
    which RFC 2047 5 forbids there, are decoded: Python's own `email` writes an
    internationalised domain so (`jane@=?utf-8?q?b=C3=BCcher?=.example`)."""
    spec = "".join(
        f'"{t.text}"' if t.kind == "quoted" else t.text for t in tokens if t.kind != "comment"
    )
    if "=?" in spec:
        decoded = _ENCODED_WORD.sub(lambda m: decode_words(m.group()), spec)
        if decoded != spec:
            defects.append("EncodedWordInAddress")
            spec = decoded
    return spec


def _join(tokens: list[_Token]) -> str:
    return " ".join(t.text for t in tokens if t.kind != "comment")


def _comments(tokens: list[_Token]) -> list[_Token]:
    return [t for t in tokens if t.kind == "comment"]


def _words(tokens: list[_Token]) -> list[str]:
    """A display name's words as written, comments kept in their parentheses (as Thunderbird
    shows them), adjacent words without white space between them joined."""
    words: list[str] = []
    for token in tokens:
        text = f"({token.text})" if token.kind == "comment" else token.text
        if words and not token.spaced and token.kind != "comment":
            words[-1] += text
        else:
            words.append(text)
    return words


def _name(words: list[str], decode: bool = True) -> str:
    text = " ".join(words)
    text = _SPACES.sub(" ", clean(decode_words(text) if decode else text))
    if len(text) > 1 and text[0] == text[-1] == '"':  # quotes encoded along with the name
        text = text[1:-1].strip()
    return text


def _addr(spec: str) -> str:
    spec = clean(spec).lower()
    return spec if _ADDR_SPEC.fullmatch(spec) else ""
