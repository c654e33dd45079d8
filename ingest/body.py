"""The body of a message: which parts are its text, which are attachments, the mails forwarded
inside it, and what a delivery report says about the mail it returns.

The text is chosen as a mail client chooses it: in a `multipart/alternative` (RFC 2046 5.1.4)
the plain text unless it is blank, then the HTML, then a calendar; elsewhere every inline text
part in order, a named one too (it is also kept as an attachment, as Thunderbird lists it).
`format=flowed` text is reflowed (RFC 3676), a calendar is rendered as a readable block
(`db.invitation`), Outlook's `winmail.dat` (TNEF) is unpacked, and a forwarded mail
(`message/rfc822`) becomes an attachment and a `Forwarded` entry with its own chosen text.
The MIME tree is walked without recursion and bounded in parts.
"""

from __future__ import annotations

import email
import hashlib
import html
import mimetypes
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC
from email import policy
from email.message import Message

from inscriptis import get_text

from db.invitation import CALENDAR_TYPES, render
from db.model import Attachment, Forwarded, Incoming
from ingest.charsets import (
    WHOLE,
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
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")
_BIDI = dict.fromkeys(
    map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
)
_FORWARD = ("message/rfc822", "message/global")  # RFC 2046 5.2.1, RFC 6532 3.7
_TNEF = ("application/ms-tnef", "application/vnd.ms-tnef")
_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)
_LINE_BREAK = re.compile(r"\r?\n")


@dataclass(slots=True)
class _Node:
    """One MIME part and, once read, what it gives: text pieces in order ("plain", "html" or
    "calendar", text), HTML, TNEF text for a mail with no other, attachments, forwarded mails."""

    part: Message
    parent: int
    inside: int  # how many forwarded mails enclose it
    kind: str = "leaf"  # or "multipart", "alternative", "forward"
    children: list[int] = field(default_factory=list)
    pieces: list[tuple[str, str]] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    fallback: list[tuple[str, str]] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    forwarded: list[Forwarded] = field(default_factory=list)


def read_body(msg: Incoming, body: Message) -> None:
    """Fill `msg`'s text, HTML, charsets, attachments, forwarded mails and, for a delivery
    report, the Message-IDs it returns. Raises only what the stdlib's parts raise on access."""
    nodes = _tree(body, msg)
    declared: list[str] = []
    used: list[str] = []
    for index, node in enumerate(nodes):  # document order: leaves read in the order they came
        if node.kind == "leaf":
            _read_leaf(msg, node, index, declared, used)
    for node in reversed(nodes):  # children before their parents
        _combine(node, [nodes[c] for c in node.children])
    root = nodes[0]
    text, markup = _message_text(root)
    msg.body_html = markup[:MAX_TEXT]
    msg.body_text = text[:MAX_TEXT]
    msg.attachments.extend(root.attachments)
    msg.forwarded.extend(root.forwarded[:MAX_FORWARDED])
    msg.charset_declared = ",".join(dict.fromkeys(c for c in declared if c))
    msg.charset_used = ",".join(dict.fromkeys(c for c in used if c))


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
        ctype = part.get_content_type()
        if ctype in _FORWARD and bounce:  # the returned mail: read by `_returned`
            continue
        if ctype in _FORWARD:
            node.kind = "forward"
            inner = _read_forward(msg, node, index)
            if inner is not None:  # its parts are walked as the forwarded mail's
                stack.append((inner, index, inside + 1))
            continue
        if ctype in WHOLE:
            continue
        # Not `get_payload()` on a leaf: it decodes 8-bit text with the part's charset label,
        # and a label such as "undefined" or one holding a NUL raises.
        payload = part.get_payload() if part.is_multipart() else None
        if payload is None and ctype.startswith("multipart/"):
            payload = _unfolded_boundary(part)
        if isinstance(payload, list):
            node.kind = "alternative" if ctype == "multipart/alternative" else "multipart"
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
    part = node.part
    ctype = part.get_content_type()
    if ctype in ("text/rfc822-headers", "message/delivery-status", *_FORWARD):
        _returned(msg, node, ctype)
        return
    disposition = (part.get_content_disposition() or "").lower()
    filename = _filename(part)
    if ctype in ("text/plain", "text/html") and disposition != "attachment":
        text, charset = payload_text(part, msg.defects)
        if not node.inside:
            declared.append(content_charset(part))
            used.append(charset)
        if ctype == "text/html":
            node.pieces.append(("html", text))
            node.html.append(text)
        else:
            # Most text is not flowed: look at the raw header before parsing its parameters.
            flowed = "flowed" in str(part.get("content-type", "")).lower()
            if flowed and _param(part, "format") == "flowed":
                text = reflow(text, delsp=_param(part, "delsp") == "yes")
            node.pieces.append(("plain", text))
        if filename:
            node.attachments.append(_attachment(part, filename, index))
    elif ctype in CALENDAR_TYPES:
        invite = _attachment(part, filename or "invite.ics", index)
        node.attachments.append(invite)
        if disposition != "attachment":
            node.pieces.append(("calendar", render(invite.data, UTC)))
    elif ctype in _TNEF or filename.lower() == "winmail.dat":
        _read_tnef(msg, node, _attachment(part, filename or "winmail.dat", index), index)
    else:
        node.attachments.append(_attachment(part, filename, index))


def _returned(msg: Incoming, node: _Node, ctype: str) -> None:
    """A delivery report's parts: the returned mail or its headers, and the status fields. Only
    a bounce's returned headers name the mail that bounced (RFC 3464 section 2); headers
    anywhere else thread nothing."""
    text = payload_text(node.part)[0]
    if msg.auto == "bounce":
        msg.bounced_ids.extend(MSGID.findall(text)[:5])
        own = _RETURNED_ID.search(text) if ctype != "message/delivery-status" else None
        if own and msg.bounce_of is None:
            msg.bounce_of = own.group(1)
    if ctype == "message/delivery-status":
        node.pieces.append(("plain", text))


def _combine(node: _Node, children: list[_Node]) -> None:
    if node.kind == "forward":
        inner = children[0] if children else None
        if inner is not None:
            text, _ = _message_text(inner)
            node.forwarded.append(
                Forwarded(
                    from_=_inner_header(inner.part, "from"),
                    date=_inner_header(inner.part, "date"),
                    subject=_inner_header(inner.part, "subject"),
                    text=text[:MAX_TEXT],
                )
            )
            node.attachments.extend(inner.attachments)
            node.forwarded.extend(inner.forwarded)
        return
    if node.kind == "leaf":
        return
    for child in children:
        node.attachments.extend(child.attachments)
        node.forwarded.extend(child.forwarded)
        node.fallback.extend(child.fallback)
    if node.kind == "multipart":
        for child in children:
            node.pieces.extend(child.pieces)
            node.html.extend(child.html)
        return
    best = _best_alternative(children)
    if best is not None:
        node.pieces = best.pieces
    richest = [c for c in children if any(h.strip() for h in c.html)]
    if richest:
        node.html = richest[-1].html


def _best_alternative(children: list[_Node]) -> _Node | None:
    """Plain text unless it is blank, then HTML that shows some text, then a calendar; the last
    of equals, as RFC 2046 5.1.4 puts the preferred alternative last."""
    for kind in ("plain", "html", "calendar"):
        chosen = None
        for child in children:
            if any(k == kind and _shows_text(k, t) for k, t in child.pieces):
                chosen = child
        if chosen is not None:
            return chosen
    return None


def _shows_text(kind: str, content: str) -> bool:
    if kind == "html":
        return bool(html.unescape(_TAG.sub("", content)).strip())
    return bool(content.strip())


def _message_text(node: _Node) -> tuple[str, str]:
    """A message's text and HTML; its TNEF text when it has no other."""
    text = _join(node.pieces)
    if text.strip() or not node.fallback:
        return text, "\n".join(node.html)
    markup = "\n".join(h for k, h in node.fallback if k == "html")
    return _join(node.fallback), "\n".join(node.html) or markup


def _join(pieces: list[tuple[str, str]]) -> str:
    texts = (_html_text(c) if k == "html" else c for k, c in pieces)
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
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
    # RFC 2046 5.2.1 forbids encoding a message/rfc822 body; some clients do it anyway.
    encoded = encoding in ("base64", "quoted-printable")
    if node.inside and inner is not None and not encoded:
        return inner
    data = _inner_bytes(part, inner, "\r\n" if b"\r\n" in msg.raw[:10_000] else "\n")
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


def _html_text(html_text: str) -> str:
    if not html_text.strip():
        return ""
    try:
        return get_text(html_text).strip()
    except Exception:  # noqa: BLE001 - a renderer failure must not lose the mail; show tags
        return html_text


def _param(part: Message, name: str) -> str:
    """A Content-Type parameter, lower case, read whole when folded over two lines."""
    value = part.get_param(name)
    if isinstance(value, tuple):
        value = email.utils.collapse_rfc2231_value(value)
    return _LINE_BREAK.sub("", str(value or "")).strip().lower()


def _filename(part: Message) -> str:
    try:
        return clean(_LINE_BREAK.sub("", attachment_name(part)))
    except Exception:  # noqa: BLE001 - malformed RFC 2231 parameters
        return ""


def safe_name(display: str, index: int) -> str:
    """A file name that is only a name: no directories, controls, bidi overrides or dots first."""
    base = unicodedata.normalize("NFC", display).translate(_BIDI)
    base = base.replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE_NAME.sub("_", base).strip(" .")[:120]
    return base or f"attachment-{index}"


def _attachment(part: Message, filename: str, index: int) -> Attachment:
    try:
        data = part.get_payload(decode=True) or b""
    except Exception:  # noqa: BLE001 - keep the undecoded payload rather than nothing
        data = str(part.get_payload()).encode("utf-8", "replace")
    return _file(filename or f"part-{index}", part.get_content_type(), data, index)


def _file(display: str, content_type: str, data: bytes, index: int) -> Attachment:
    return Attachment(
        display_name=display,
        safe_name=safe_name(display, index),
        content_type=content_type,
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def raw_text(raw: bytes) -> str:
    """The message as it came, for showing what could not be parsed."""
    return raw[:MAX_TEXT].decode("utf-8", "replace").replace("\r\n", "\n")
