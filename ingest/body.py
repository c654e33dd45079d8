"""The body of a message: which part is its text, which parts are attachments, the other text
shown after it, the mails forwarded inside it, and what a delivery report says.

The body is one part, chosen as the standard library's `EmailMessage.get_body(preferencelist=
("plain", "html"))` and a mail client choose it: depth first, skipping parts whose
`Content-Disposition` is `attachment` (RFC 2183), and within a `multipart/related` only its
start part (RFC 2387 section 3.2); the first `text/plain` unless it is blank, then the first
HTML that shows some text, then any plain text that does, then a calendar, then the text inside
Outlook's `winmail.dat` (TNEF). An inline text part with a filename is a candidate like any
other (and kept as an attachment too, as Thunderbird lists it).

Nothing else a mail client would show is lost: the other inline text parts (Apple Mail's text
after an image, a list's footer; not the unchosen alternatives of a `multipart/alternative`,
RFC 2046 section 5.1.4) and the fields of a delivery report (RFC 3464) or a read receipt
(RFC 8098) are kept as attachments marked `inline`, their text in UTF-8, and the thread shows
them after the body (`db.mailin.inline`).

`format=flowed` text is reflowed (RFC 3676), a calendar is rendered as a readable block
(`db.mailin.invitation`), TNEF is unpacked, and a forwarded mail (`message/rfc822`) becomes an
attachment and a `Forwarded` entry with its own body and other text. The MIME tree is walked
without recursion and bounded in parts.
"""

from __future__ import annotations

import email
import hashlib
import html
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import UTC
from email import policy
from email.message import Message

from db.mailin.inline import DSN_TYPES, REPORT_TITLES, html_text
from db.mailin.invitation import CALENDAR_TYPES, render
from db.mailin.model import Attachment, Forwarded, Incoming
from db.mailin.names import safe_name
from ingest.charsets import (
    attachment_name,
    clean,
    content_charset,
    decode_header_block,
    decode_words,
    payload_text,
)
from ingest.headers import unfold

MAX_PARTS = 500  # beyond this a message is hostile or broken; keep what came first
MAX_TEXT = 2_000_000
MAX_FORWARDED = 20  # entries shown in the thread; a longer chain is in the .eml
MSGID = re.compile(r"<[^<>\s]{1,900}>")
_RETURNED_ID = re.compile(r"^message-id:[ \t]*(<[^<>\s]{1,900}>)", re.IGNORECASE | re.MULTILINE)
# RFC 2046 5.2.1, RFC 6532 3.7; message/news, which RFC 5537 retired for message/rfc822.
_FORWARD = ("message/rfc822", "message/global", "message/news")
_TNEF = ("application/ms-tnef", "application/vnd.ms-tnef")
_TAG = re.compile(r"<[^<>]*>")
_HIDDEN = ("script", "style")  # elements whose content a mail client does not show
_LINE_BREAK = re.compile(r"\r?\n")
_KINDS = {"multipart/alternative": "alternative", "multipart/related": "related"}
# The text a mail client shows of an alternative, best first (as get_body() ranks them).
_PREFERENCE = ("plain", "html", "calendar")
# A blank first plain text gives way to the HTML beside it before any later plain text, which
# may be a list's footer.
_AFTER_BLANK = ("html", "plain", "calendar")
_EXACT = policy.compat32.clone(max_line_length=0)  # fields written back as they came


@dataclass(slots=True)
class _Node:
    """One MIME part and, once read, what it gives: its text when it may be the body ("plain",
    "html" or "calendar", text), TNEF text for a mail with no other, and attachments."""

    part: Message
    parent: int
    inside: int  # how many forwarded mails enclose it
    ctype: str = ""  # the part's content type, read once
    kind: str = "leaf"  # or "multipart", "alternative", "related", "forward"
    children: list[int] = field(default_factory=list)
    candidate: tuple[str, str] | None = None
    shows: bool | None = None  # whether the candidate shows any text, once asked
    filename: str = ""
    fallback: list[tuple[str, str]] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)


@dataclass(slots=True)
class _Reading:
    """What one mail (the outer one or a forwarded one) shows: its body's text and HTML, and
    its other inline text parts (node indexes, in document order)."""

    text: str = ""
    html: str = ""
    body: int | None = None
    extras: list[int] = field(default_factory=list)


def read_body(msg: Incoming, body: Message) -> None:
    """Fill `msg`'s text, HTML, charsets, attachments, forwarded mails and, for a delivery
    report, the Message-IDs it returns. Raises only what the stdlib's parts raise on access."""
    nodes = _tree(body, msg)
    declared: list[str] = []
    used: list[str] = []
    for index, node in enumerate(nodes):  # document order: leaves read in the order they came
        if node.kind == "leaf":
            _read_leaf(msg, node, index, declared, used)
    reading = _choose(nodes, 0)
    for index in reading.extras:  # shown after the body, and saveable
        node = nodes[index]
        kind, content = node.candidate or ("plain", "")
        suffix = ".html" if kind == "html" else ".txt"
        data = content[:MAX_TEXT].encode("utf-8", "replace")
        name = node.filename or f"part-{index}{suffix}"
        node.attachments.append(_file(name, f"text/{kind}", data, index, inline=True))
    shown = set(reading.extras)
    for index, node in enumerate(nodes):
        if node.filename and index not in shown:  # the part as sent, as a mail client saves it
            node.attachments.append(_attachment(node.part, node.filename, index))
    msg.body_text = reading.text[:MAX_TEXT]
    msg.body_html = reading.html[:MAX_TEXT]
    msg.forwarded.extend(_forwarded(nodes))
    msg.attachments.extend(a for node in nodes for a in node.attachments)
    msg.charset_declared = ",".join(dict.fromkeys(filter(None, declared)))
    msg.charset_used = ",".join(dict.fromkeys(filter(None, used)))


def _tree(body: Message, msg: Incoming) -> list[_Node]:
    """The parts in document order (pre-order), each with its parent; without recursion."""
    bounce = msg.auto == "bounce"
    nodes: list[_Node] = []
    stack: list[tuple[Message, int, int]] = [(body, -1, 0)]
    while stack and len(nodes) < MAX_PARTS:
        part, parent, inside = stack.pop()
        index = len(nodes)
        node = _Node(part, parent, inside)
        nodes.append(node)
        if parent >= 0:
            nodes[parent].children.append(index)
        ctype = node.ctype = part.get_content_type()
        if ctype in _FORWARD and bounce:  # the returned mail: read by `_returned`
            continue
        if ctype in _FORWARD:
            node.kind = "forward"
            inner = _read_forward(msg, node, index)
            if inner is not None:  # its parts are walked as the forwarded mail's
                stack.append((inner, index, inside + 1))
            continue
        # Other message/* parts (a report's fields, message/partial, message/external-body)
        # are leaves: the stdlib parses them as mails, but no mail client shows them as one.
        if not ctype.startswith("multipart/"):
            continue
        # Not `get_payload()` on a leaf: it decodes 8-bit text with the part's charset label,
        # and a label such as "undefined" or one holding a NUL raises.
        payload = part.get_payload() if part.is_multipart() else _unfolded_boundary(part)
        if isinstance(payload, list):
            node.kind = _KINDS.get(ctype, "multipart")
            stack.extend((child, index, inside) for child in reversed(payload))
    if stack:
        msg.defects.append("TooManyParts")
    return nodes


def _unfolded_boundary(part: Message) -> list[Message] | None:
    """The parts of a multipart whose `boundary` was folded over two lines, so the stdlib read
    it with the line break inside and found no parts. RFC 5322 2.2.3 unfolding keeps the blank
    after the break; senders that fold inside a quoted value meant none: try both."""
    boundary = part.get_param("boundary")
    payload = part.get_payload()
    if not isinstance(boundary, str) or "\n" not in boundary or not isinstance(payload, str):
        return None
    for candidate in (_LINE_BREAK.sub("", boundary), re.sub(r"\r?\n[ \t]*", "", boundary)):
        if not re.search(rf"^--{re.escape(candidate)}(--)?[ \t]*\r?$", payload, re.MULTILINE):
            continue
        head = f'Content-Type: {part.get_content_type()}; boundary="{candidate}"\r\n\r\n'
        whole = email.message_from_bytes(
            (head + payload).encode("utf-8", "surrogateescape"), policy=policy.compat32
        )
        parts = whole.get_payload()
        if isinstance(parts, list):
            part.set_payload(parts)
            return parts
    return None


def _read_leaf(
    msg: Incoming, node: _Node, index: int, declared: list[str], used: list[str]
) -> None:
    part, ctype = node.part, node.ctype
    if ctype == "text/rfc822-headers" or ctype in _FORWARD:  # what a bounce returns
        _returned(msg, payload_text(part)[0])
        return
    if ctype in REPORT_TITLES:
        _read_report(msg, node, index, ctype)
        return
    disposition = (part.get_content_disposition() or "").lower()
    filename = _filename(part)
    if ctype in ("text/plain", "text/html") and disposition != "attachment":
        label = content_charset(part)
        text, charset = payload_text(part, msg.defects, label, ctype)
        if not node.inside:
            declared.append(label)
            used.append(charset)
        if ctype == "text/plain":
            # Most text is not flowed: look at the raw header before parsing its parameters.
            flowed = "flowed" in str(part.get("content-type", "")).lower()
            if flowed and _param(part, "format") == "flowed":
                text = reflow(text, delsp=_param(part, "delsp") == "yes")
        node.candidate = (ctype.removeprefix("text/"), text)
        node.filename = filename  # kept as an attachment once it is known whether it is shown
    elif ctype in CALENDAR_TYPES:
        invite = _attachment(part, filename or "invite.ics", index)
        node.attachments.append(invite)
        if disposition != "attachment":
            node.candidate = ("calendar", render(invite.data, UTC))
            if not node.inside:  # iCalendar is UTF-8 whatever the label (RFC 5545 3.1.4)
                declared.append(content_charset(part))
                used.append("utf-8")
    elif ctype in _TNEF or filename.lower() == "winmail.dat":
        _read_tnef(msg, node, _attachment(part, filename or "winmail.dat", index), index)
    elif part.get_content_maintype() == "message":  # parsed as a mail: written back as it came
        data = _payload_bytes(part) or _inner_bytes(part, _inner(part), _linesep(msg))
        node.attachments.append(_file(filename or f"part-{index}", ctype, data, index))
    else:
        node.attachments.append(_attachment(part, filename, index))


def _read_report(msg: Incoming, node: _Node, index: int, ctype: str) -> None:
    """A delivery report's fields (RFC 3464 section 2) or a read receipt's (RFC 8098 section
    3): an attachment the thread shows after the body. Only a bounce's fields name the mail
    it returns; the fields of a report inside a forwarded mail are in that mail's .eml."""
    text = report_text(node.part)
    if ctype in DSN_TYPES:
        _returned(msg, text, own=False)
    if not node.inside:
        name = "delivery-status.txt" if ctype in DSN_TYPES else "disposition-notification.txt"
        node.attachments.append(_file(name, ctype, text.encode("utf-8"), index, inline=True))


def report_text(part: Message) -> str:
    """A report part's fields as text, however the parser held them: header blocks
    (message/delivery-status), a mail (the others under compat32), or one string. Long fields
    keep their own folding."""
    try:
        payload = part.get_payload()
        if isinstance(payload, list):
            blocks = [block.as_bytes(policy=_EXACT) for block in payload]
        else:
            blocks = [part.get_payload(decode=True) or b""]
    except Exception:  # noqa: BLE001 - a broken report still leaves a stored, classified mail
        return ""
    texts = (clean(b.decode("utf-8", "replace").replace("\r\n", "\n")) for b in blocks)
    return "\n\n".join(t for t in texts if t) + "\n"


def _returned(msg: Incoming, text: str, own: bool = True) -> None:
    """What a bounce returns: the returned mail or its headers, or the report's fields. Only a
    bounce's returned headers name the mail that bounced (RFC 3464 section 2); headers
    anywhere else thread nothing."""
    if msg.auto != "bounce":
        return
    msg.bounced_ids.extend(MSGID.findall(text)[:5])
    found = _RETURNED_ID.search(text) if own else None
    if found and msg.bounce_of is None:
        msg.bounce_of = found.group(1)


def _choose(nodes: list[_Node], root: int) -> _Reading:
    """The body of the mail whose top part is `root`, its HTML and its other inline text parts,
    as the module docstring tells. A forwarded mail inside is read on its own."""
    order: list[tuple[int, bool]] = []  # candidates in document order; may each be the body?
    fallback: list[tuple[str, str]] = []
    stack = [(root, True)]
    while stack:  # for a mail of one part, once
        index, eligible = stack.pop()
        node = nodes[index]
        if node.kind == "forward":
            continue
        if node.candidate is not None:
            order.append((index, eligible))
        fallback = fallback or node.fallback
        start = _start(nodes, node) if node.kind == "related" else None
        stack.extend(
            (c, eligible and (start is None or c == start)) for c in reversed(node.children)
        )
    reading = _Reading(body=_body(nodes, order))
    # Most mail is one text part: no other part to show, no alternative to look into.
    paths = {i: _path(nodes, i, root) for i, _ in order} if len(order) > 1 else {}
    if paths:
        reading.extras = _others(nodes, order, paths, reading.body)
    if reading.body is None:
        reading.text = _join(fallback)  # TNEF's text, when it has any
        reading.html = "\n".join(h for k, h in fallback if k == "html")
        return reading
    kind, content = nodes[reading.body].candidate or ("", "")
    reading.text = html_text(content) if kind == "html" else content
    if kind == "html":
        reading.html = content
    elif paths:
        reading.html = _html_beside(nodes, reading.body, order, paths)
    return reading


def _body(nodes: list[_Node], order: list[tuple[int, bool]]) -> int | None:
    """The part `get_body(preferencelist=("plain", "html"))` returns, unless it is a blank
    plain text: that hides nothing (issue 10 item 4), the HTML beside it is what shows."""
    plain = next((i for i, ok in order if ok and _kind(nodes, i) == "plain"), None)
    if plain is not None and _showing(nodes[plain]):
        return plain
    for kind in _AFTER_BLANK:
        for index, eligible in order:
            if eligible and _kind(nodes, index) == kind and _showing(nodes[index]):
                return index
    return None


def _others(
    nodes: list[_Node],
    order: list[tuple[int, bool]],
    paths: dict[int, dict[int, int]],
    body: int | None,
) -> list[int]:
    """The text parts other than the body that a mail client shows: all that show some text,
    but in a multipart/alternative only those of the one alternative it shows, the body's or
    else the best (RFC 2046 section 5.1.4)."""
    # multipart/alternative -> the child a mail client shows: the body's, where it is one
    chosen: dict[int, int] = dict(paths[body]) if body is not None else {}

    def visible(index: int) -> bool:
        for ancestor, child in paths[index].items():
            if nodes[ancestor].kind != "alternative":
                continue
            if ancestor not in chosen:
                best = (
                    paths[i][ancestor]
                    for kind in _PREFERENCE
                    for i, _ in order
                    if _kind(nodes, i) == kind and ancestor in paths[i] and _showing(nodes[i])
                )
                chosen[ancestor] = next(best, child)
            if chosen[ancestor] != child:
                return False
        return True

    return [
        i
        for i, _ in order
        if i != body and _kind(nodes, i) != "calendar" and visible(i) and _showing(nodes[i])
    ]


def _showing(node: _Node) -> bool:
    """Whether the part's text shows anything; read once (HTML costs a pass over its tags)."""
    if node.shows is None:
        node.shows = node.candidate is not None and _shows_text(*node.candidate)
    return node.shows


def _kind(nodes: list[_Node], index: int) -> str:
    return (nodes[index].candidate or ("", ""))[0]


def _path(nodes: list[_Node], index: int, root: int) -> dict[int, int]:
    """Each ancestor of `index` up to `root`, nearest first, with its child on the way."""
    path: dict[int, int] = {}
    while index != root and index >= 0:
        path[nodes[index].parent] = index
        index = nodes[index].parent
    return path


def _start(nodes: list[_Node], node: _Node) -> int | None:
    """A multipart/related's start part: the one whose Content-ID its `start` parameter names,
    else the first (RFC 2387 section 3.2)."""
    start = _param(node.part, "start").strip("<> ")
    if start:
        for child in node.children:
            content_id = str(nodes[child].part.get("content-id", "")).strip().strip("<> ")
            if content_id.lower() == start:
                return child
    return node.children[0] if node.children else None


def _html_beside(
    nodes: list[_Node], body: int, order: list[tuple[int, bool]], paths: dict[int, dict[int, int]]
) -> str:
    """The HTML alternative of a plain text body: the last one not blank in the nearest
    multipart/alternative holding the body (RFC 2046 5.1.4 puts the richest last)."""
    group = next((a for a in paths[body] if nodes[a].kind == "alternative"), None)
    if group is None:
        return ""
    markup = ""
    for index, _ in order:
        kind, content = nodes[index].candidate or ("", "")
        if kind == "html" and group in paths[index] and content and not content.isspace():
            markup = content
    return markup


def _forwarded(nodes: list[_Node]) -> list[Forwarded]:
    """The mails forwarded as attachments, in document order, each with its text: its body and
    then its other inline text."""
    found: list[Forwarded] = []
    for node in nodes:
        if node.kind != "forward" or not node.children:
            continue
        if len(found) == MAX_FORWARDED:
            break
        inner = nodes[node.children[0]]
        reading = _choose(nodes, node.children[0])
        others = (nodes[i].candidate or ("", "") for i in reading.extras)
        text = _join([("plain", reading.text), *others])
        found.append(
            Forwarded(
                from_=_inner_header(inner.part, "from"),
                date=_inner_header(inner.part, "date"),
                subject=_inner_header(inner.part, "subject"),
                text=text[:MAX_TEXT],
            )
        )
    return found


def _shows_text(kind: str, content: str) -> bool:
    if kind == "html":
        content = html.unescape(_TAG.sub("", _without_hidden(content)))
    return bool(content) and not content.isspace()


def _without_hidden(markup: str) -> str:
    """`markup` without its script and style elements (an unclosed one runs to the end), cut
    by search rather than a backtracking pattern, so hostile HTML costs linear time."""
    lower, kept, at = markup.lower(), [], 0
    while True:
        starts = [(i, name) for name in _HIDDEN if (i := lower.find(f"<{name}", at)) >= 0]
        if not starts:
            return "".join([*kept, markup[at:]])
        start, name = min(starts)
        kept.append(markup[at:start])
        end = lower.find(f"</{name}", start)
        if end < 0:
            return "".join(kept)
        close = lower.find(">", end)
        at = len(markup) if close < 0 else close + 1


def _join(pieces: list[tuple[str, str]]) -> str:
    texts = (html_text(c) if k == "html" else c for k, c in pieces)
    return "\n\n".join(t for t in texts if t.strip())


def reflow(text: str, delsp: bool) -> str:
    """`format=flowed` text as paragraphs (RFC 3676 section 4): a line ending in a space goes on
    in the next line of the same quote depth, without that space when `delsp`; one space after
    the quote marks is stuffing; the signature separator `-- ` is never flowed."""
    out: list[str] = []
    paragraph: list[str] = []
    depth = 0

    def flush() -> None:
        line = "".join(paragraph)
        out.append(f"{'>' * depth} {line}" if depth and line else f"{'>' * depth}{line}")
        paragraph.clear()

    for raw in text.split("\n"):
        line = raw.removesuffix("\r")
        quotes = len(line) - len(line.lstrip(">"))
        content = line[quotes:].removeprefix(" ")
        signature = content == "-- "
        if paragraph and (quotes != depth or signature):  # 4.5: depth changed, 4.3: signature
            flush()
        depth = quotes
        flowed = content.endswith(" ") and not signature
        paragraph.append(content[:-1] if flowed and delsp else content)
        if not flowed:
            flush()
    if paragraph:
        flush()
    return "\n".join(out)


def _read_forward(msg: Incoming, node: _Node, index: int) -> Message | None:
    """A mail attached as message/rfc822: kept as a `.eml` attachment with its own bytes; the
    mail parsed, for the walk to read as the forwarded mail's parts. A mail forwarded inside a
    forwarded one is in the outer `.eml` already: it gets an entry but no copy of its bytes,
    so a chain of forwards costs time and space in proportion to its size."""
    part = node.part
    inner = _inner(part)
    encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
    # RFC 2046 5.2.1 forbids encoding a message/rfc822 body; some clients do it anyway.
    encoded = encoding in ("base64", "quoted-printable")
    if node.inside and inner is not None and not encoded:
        return inner
    data = _inner_bytes(part, inner, _linesep(msg))
    if not data:
        msg.defects.append("ForwardedMailNotWritable")
    if encoded or inner is None:
        if encoded:
            wrapped = f"Content-Transfer-Encoding: {encoding}\r\n\r\n".encode() + data
            data = email.message_from_bytes(wrapped).get_payload(decode=True) or b""
        try:
            inner = email.message_from_bytes(data, policy=policy.compat32)
        except Exception:  # noqa: BLE001 - nested too deep to parse: the bytes are kept
            inner = None
    if not node.inside:
        subject = _inner_header(inner, "subject") if inner is not None else ""
        display = _filename(part) or subject or "forwarded"
        if not display.lower().endswith(".eml"):
            display += ".eml"
        node.attachments.append(_file(display, part.get_content_type(), data, index))
    return inner


def _inner(part: Message) -> Message | None:
    """The mail a message/* part holds, as the stdlib parsed it."""
    payload = part.get_payload()
    return payload[0] if isinstance(payload, list) and payload else None


def _linesep(msg: Incoming) -> str:
    return "\r\n" if b"\r\n" in msg.raw[:10_000] else "\n"


def _inner_bytes(part: Message, inner: Message | None, linesep: str) -> bytes:
    """The forwarded mail's bytes as they came: the stdlib parsed it, and writes it back
    unchanged when told not to fold lines and to end them as the message does."""
    exact = policy.compat32.clone(linesep=linesep, max_line_length=0)
    try:
        return inner.as_bytes(policy=exact) if inner is not None else _payload_bytes(part)
    except Exception:  # noqa: BLE001 - nested beyond the generator's recursion: no bytes
        return b""


def _payload_bytes(part: Message) -> bytes:
    payload = part.get_payload()
    return payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""


def _inner_header(inner: Message, name: str) -> str:
    """A forwarded mail's header as text; raw 8-bit bytes read as for the outer mail's."""
    # raw_items(): `get` turns raw 8-bit bytes into replacement characters under compat32.
    value = unfold(next((v for k, v in inner.raw_items() if k.lower() == name), ""))
    if any("\udc80" <= c <= "\udcff" for c in value):
        value = decode_header_block(value.encode("utf-8", "surrogateescape"))
    return clean(decode_words(value)).replace("\r", "").replace("\n", " ")


def _read_tnef(msg: Incoming, node: _Node, winmail: Attachment, index: int) -> None:
    """Outlook's TNEF (`winmail.dat`, MS-OXTNEF): kept as it came, and unpacked with tnefparse:
    its files become attachments, its text the body of a mail that has no other."""
    node.attachments.append(winmail)
    try:
        from tnefparse import TNEF  # only mail that carries TNEF pays for the import

        tnef = TNEF(winmail.data, do_checksum=False)
        files = [(str(a.long_filename() or ""), a.data) for a in tnef.attachments[:MAX_PARTS]]
        text = _tnef_text(tnef)
    except Exception:  # noqa: BLE001 - broken TNEF: winmail.dat is still there to save
        msg.defects.append("UnreadableTnef")
        return
    for number, (name, data) in enumerate(files, 1):
        display = clean(name.replace("\x00", "")) or f"part-{index}-{number}"
        ctype = mimetypes.guess_type(display)[0] or "application/octet-stream"
        node.attachments.append(_file(display, ctype, bytes(data or b""), index))
    node.fallback.extend(text)


def _tnef_text(tnef: object) -> list[tuple[str, str]]:
    """TNEF's own text: plain, else HTML, else RTF (compressed, MS-OXRTFCP) as text."""
    codepage = getattr(tnef, "codepage", None) or "cp1252"
    for kind, value in (("plain", tnef.body), ("html", tnef.htmlbody)):  # type: ignore[attr-defined]
        if isinstance(value, bytes):
            value = value.decode(codepage, "replace")
        text = clean(str(value or "").replace("\x00", ""))
        if _shows_text(kind, text):
            return [(kind, text)]
    rtf = tnef.rtfbody  # type: ignore[attr-defined]
    if not rtf:
        return []
    from striprtf.striprtf import rtf_to_text

    text = rtf_to_text(rtf.decode("latin-1"), errors="replace").replace("\x00", "")
    return [("plain", clean(text))] if text.strip() else []


def _param(part: Message, name: str) -> str:
    """A Content-Type parameter, lower case, read whole when folded over two lines."""
    value = part.get_param(name)
    if isinstance(value, tuple):
        value = email.utils.collapse_rfc2231_value(value)
    return _LINE_BREAK.sub("", str(value or "")).strip().lower()


def _filename(part: Message) -> str:
    try:
        name = attachment_name(part)
    except Exception:  # noqa: BLE001 - malformed RFC 2231 parameters
        return ""
    return clean(_LINE_BREAK.sub("", name)) if name else ""


def _attachment(part: Message, filename: str, index: int) -> Attachment:
    try:
        data = part.get_payload(decode=True) or b""
    except Exception:  # noqa: BLE001 - keep the undecoded payload rather than nothing
        data = str(part.get_payload()).encode("utf-8", "replace")
    return _file(filename or f"part-{index}", part.get_content_type(), data, index)


def _file(
    display: str, content_type: str, data: bytes, index: int, inline: bool = False
) -> Attachment:
    return Attachment(
        display_name=display,
        safe_name=safe_name(display, index),
        content_type=content_type,
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        inline=inline,
    )


def raw_text(raw: bytes) -> str:
    """The message as it came, for showing what could not be parsed."""
    return raw[:MAX_TEXT].decode("utf-8", "replace").replace("\r\n", "\n")
