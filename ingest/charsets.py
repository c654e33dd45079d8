"""Text out of mail's bytes: charset labels read as mail clients read them, encoded words,
attachment names, raw 8-bit headers, and a detector for text that declares no charset.

A label is resolved through the WHATWG Encoding Standard's label table (the `webencodings`
package), then widened to the superset that the sender's software really wrote with, as mail
clients do: a GB2312 label carries GBK characters, Shift_JIS carries Windows' NEC and IBM
characters, EUC-KR carries the Unified Hangul Code. Bytes a charset cannot read become U+FFFD,
those bytes only; the rest of the part keeps its charset.
"""

from __future__ import annotations

import binascii
import codecs
import re
from email.message import Message
from functools import lru_cache
from typing import NamedTuple

import cchardet
import webencodings

from ingest import iso2022jp

# Parts read whole, though the stdlib parses them into header blocks.
WHOLE = ("message/rfc822", "message/global", "message/delivery-status")
# Where no label helps and the detector is not sure: what mail clients assume in the West
# (WHATWG Encoding Standard, "Preface": the default of legacy content).
DEFAULT = "windows-1252"

# The larger tables mail clients read these WHATWG names with, because Windows wrote them.
_SUPERSETS = {
    "gbk": "gb18030",  # WHATWG's gb2312/gbk labels; GB 18030 holds every GBK character
    "shift_jis": "cp932",  # Windows-31J: NEC row 13 (①, №, ㈱) and the IBM extensions
    "euc-kr": "cp949",  # ks_c_5601-1987 too: Unified Hangul Code
    "big5": "big5hkscs",  # Hong Kong's supplement
    "iso-8859-8-i": "iso-8859-8",  # logical order is a rendering hint, the table is the same
    "windows-874": "cp874",  # tis-620, iso-8859-11
    "iso-2022-jp": iso2022jp.NAME,  # with the NEC/IBM extensions Windows sends (CP50220/1)
}
# Labels mail uses that WHATWG leaves out or maps to its "replacement" decoder (a browser's
# guard against script injection; a mail reader wants the text).
_MAIL_ONLY = {
    "utf-7": "utf-7",
    "unicode-1-1-utf-7": "utf-7",
    "iso-2022-kr": "iso2022_kr",
    "csiso2022kr": "iso2022_kr",
    "hz-gb-2312": "hz",
    "iso-2022-jp-1": iso2022jp.NAME,
    "iso-2022-jp-2": iso2022jp.NAME,
    "iso-2022-jp-3": iso2022jp.NAME,
    "iso-2022-jp-2004": iso2022jp.NAME,
    "iso-2022-jp-ms": iso2022jp.NAME,
    "cp50220": iso2022jp.NAME,
    "cp50221": iso2022jp.NAME,
    "cp50222": iso2022jp.NAME,
}
# Python codecs that are not a charset a mail can be written in.
_NOT_CHARSETS = {"undefined", "unicode_escape", "raw_unicode_escape", "idna", "punycode"}
# What the detector tells apart well enough to trust over the default; its other answers
# (Mac and DOS code pages, the Nordic and Baltic Latin sets) are guesses between look-alike
# Latin tables on short text, where Windows-1252 is the better bet.
_DETECTABLE = {
    "windows-1250",
    "iso-8859-2",
    "windows-1251",
    "iso-8859-5",
    "koi8-r",
    "koi8-u",
    "windows-1253",
    "iso-8859-7",
    "windows-1254",
    "windows-1255",
    "iso-8859-8",
    "windows-1256",
    "iso-8859-6",
    "cp874",
    "gb18030",
    "big5hkscs",
    "cp932",
    "euc-jp",
    "cp949",
}
_CONTENT_TYPE_CHARSET = re.compile(
    rb"^content-type:(?:[^\n]|\n[ \t])*?charset\s*=\s*[\"']?([^\s\"';]+)", re.I | re.M
)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16le"),
    (codecs.BOM_UTF16_BE, "utf-16be"),
)
# The Content-Type nearly all text parts have, `type/subtype; charset=label` with the label
# quoted or not: no other parameter, comment, fold or RFC 2231 form.
_SIMPLE_CHARSET = re.compile(
    r'[ \t]*[A-Za-z0-9.+_-]+/[A-Za-z0-9.+_-]+[ \t]*;[ \t]*charset=("?)([A-Za-z0-9.:+_-]+)\1[ \t]*',
    re.IGNORECASE,
)
_META_CHARSET = re.compile(rb"<meta[^>]*?charset\s*=\s*[\"']?\s*([\w.:-]+)", re.I)
# RFC 2047 section 2 encoded word, read as leniently as the stdlib's `decode_header`.
# The encoded text holds no "?" (RFC 2047 section 2), which keeps the pattern linear in time.
_WORD = re.compile(r"=\?([^?]*)\?([qQbB])\?([^?]*)\?=")
_Q_HEX = re.compile(rb"=([0-9a-fA-F]{2})")


class Decoded(NamedTuple):
    """Bytes read as text, and how."""

    text: str
    charset: str  # the charset that read the bytes, as recorded in `message.charset_used`
    replaced: bool  # some bytes were not text in that charset and became U+FFFD


@lru_cache(maxsize=256)
def resolve(label: str) -> str | None:
    """The codec name that reads text labelled `label` as mail clients read it; None for a
    label no table knows. The WHATWG Encoding Standard section 4.2 ("Names and labels"), then
    the supersets above; labels only Python knows (`cp850`, `latin9`) are Python's codecs."""
    name = label.strip().strip("\"'").split("*", 1)[0].strip().lower()  # RFC 2231 language
    if not (name.isascii() and name.isprintable()):
        return None  # codecs.lookup raises on a NUL or a surrogate, and no charset has one
    if name in _MAIL_ONLY:
        return _MAIL_ONLY[name]
    encoding = webencodings.lookup(name)
    if encoding is not None and encoding.name not in ("replacement", "x-user-defined"):
        if encoding.name in _SUPERSETS:
            return _SUPERSETS[encoding.name]
        try:
            same = codecs.lookup(encoding.name).name == encoding.codec_info.name
        except LookupError:
            same = False
        # The standard's name where Python knows it (windows-1252, not cp1252).
        return encoding.name if same else encoding.codec_info.name
    try:
        info = codecs.lookup(name)
    except LookupError:
        return None
    return info.name if info._is_text_encoding and info.name not in _NOT_CHARSETS else None


@lru_cache(maxsize=256)
def _is_ascii_label(label: str) -> bool:
    try:
        return codecs.lookup(label.strip().strip("\"'").lower()).name == "ascii"
    except (LookupError, ValueError, UnicodeError):
        return False


def decode(data: bytes, label: str | None) -> Decoded:
    """`data` as text. A byte order mark decides first (WHATWG Encoding Standard section 6,
    "decode"); then a known label reads it, bad bytes replaced; no label, an unknown one, or
    US-ASCII over 8-bit bytes (as many mailers write) go to `guess`. Never raises."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return _decode_with(data[len(bom) :], name)
    codec = resolve(label) if label else None
    if codec is not None and not _is_ascii_label(label or ""):
        return _decode_with(data, codec)
    if data.isascii():
        return Decoded(data.decode("ascii"), "us-ascii" if label else "utf-8", False)
    return _decode_with(data, guess(data))


def _decode_with(data: bytes, codec: str) -> Decoded:
    if codec == iso2022jp.NAME:
        text, replaced = iso2022jp.decode(data)
        return Decoded(text, codec, replaced)
    if codec == "euc-jp":
        text, replaced = iso2022jp.decode_euc(data)
        return Decoded(text, codec, replaced)
    try:
        return Decoded(data.decode(codec), codec, False)
    except UnicodeDecodeError:
        return Decoded(data.decode(codec, "replace"), codec, True)
    except (LookupError, UnicodeError, ValueError):
        # A codec Python names but cannot run on these bytes (a stateful one gone wrong).
        return Decoded(data.decode(DEFAULT, "replace"), DEFAULT, True)


def guess(data: bytes) -> str:
    """The charset of 8-bit text that names none: UTF-8 when it is valid UTF-8, else what the
    detector (uchardet, through `faust-cchardet`) finds when it is one it tells apart well and
    it reads the bytes cleanly, else Windows-1252."""
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    found = cchardet.detect(data).get("encoding")
    codec = resolve(found) if found else None
    if codec not in _DETECTABLE:
        return DEFAULT
    try:
        data.decode(codec)
    except (LookupError, UnicodeError):
        return DEFAULT
    return codec


def decode_header_block(head: bytes) -> str:
    """Header lines should be ASCII; real mail has raw UTF-8 or a local charset in them.
    Each line is UTF-8 when it is valid UTF-8; the others are read in the charset the message's
    Content-Type names, else the one the detector finds in them (as mail clients use the body's
    charset, then their own default). A line with ISO-2022-JP escapes, as Japanese mailers
    write unencoded headers, is read as ISO-2022-JP."""
    escaped = b"\x1b" in head
    if head.isascii() and not escaped:
        return head.decode("ascii")
    try:
        if not escaped:
            return head.decode("utf-8")
    except UnicodeDecodeError:
        pass
    lines: list[str | bytes] = []
    for line in head.split(b"\n"):
        try:
            lines.append(iso2022jp.decode(line)[0] if b"\x1b" in line else line.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(line)
    bad = [line for line in lines if isinstance(line, bytes)]
    named = _CONTENT_TYPE_CHARSET.search(head)
    label = named.group(1).decode("ascii", "replace") if named else ""
    codec = resolve(label) if label else None
    if codec in (None, "utf-8", "utf-7", iso2022jp.NAME) or _is_ascii_label(label):
        codec = guess(b"\n".join(bad))
    return "\n".join(
        line if isinstance(line, str) else _decode_with(line, codec).text for line in lines
    )


def decode_words(value: str) -> str:
    """A header value with its RFC 2047 encoded words decoded, each word's charset resolved as
    in `resolve` (an unknown one detected), adjacent words of one charset read as one run (a
    character split across two words is whole again), whitespace between words dropped
    (RFC 2047 section 6.2). A word that is not decodable stays as it came."""
    if "=?" not in value:
        return value
    out: list[str] = []
    run: bytes = b""
    run_label = ""
    pos = 0

    def flush() -> None:
        nonlocal run, run_label
        if run_label:
            out.append(decode(run, run_label).text)
        run, run_label = b"", ""

    for match in _WORD.finditer(value):
        between = value[pos : match.start()]
        pos = match.end()
        label = match.group(1).lower() or "unknown"
        data = _word_bytes(match.group(2), match.group(3))
        if data is None:
            flush()
            out.append(between + match.group(0))
            continue
        if between and not (between.isspace() and run_label):
            flush()
            out.append(between)
        if label != run_label:
            flush()
        run, run_label = run + data, label
    flush()
    out.append(value[pos:])
    return "".join(out)


def _word_bytes(encoding: str, text: str) -> bytes | None:
    raw = text.encode("utf-8", "surrogateescape")
    if encoding in "qQ":
        return _Q_HEX.sub(lambda m: bytes.fromhex(m.group(1).decode()), raw.replace(b"_", b" "))
    raw = re.sub(rb"[^A-Za-z0-9+/]", b"", raw)
    try:
        # Postel's law, as the stdlib: missing padding is added, a stray last character dropped.
        return binascii.a2b_base64(raw[: len(raw) - (len(raw) % 4 == 1)] + b"==")
    except binascii.Error:
        return None


def attachment_name(part: Message) -> str:
    """An attachment's name: Content-Disposition's `filename`, else Content-Type's `name`;
    RFC 2231 `filename*=charset''%..` with the charset resolved, RFC 2047 encoded words (as
    Outlook writes them), or raw 8-bit bytes (UTF-8, else detected). "" when there is none."""
    fields: dict[str, str] = {}  # the first Content-Disposition and Content-Type as written
    for name, raw in part.raw_items():
        key = name.lower()
        if key in ("content-disposition", "content-type") and key not in fields:
            fields[key] = str(raw)
    value = _param(part, "content-disposition", fields.get("content-disposition"), "filename")
    if value is None:
        value = _param(part, "content-type", fields.get("content-type"), "name")
    if value is None:
        return ""
    if isinstance(value, tuple):
        label, _, text = value
        return decode_words(decode(_param_bytes(text), label or None).text).strip()
    return decode_words(value).strip()


def _param(
    part: Message, header: str, raw: str | None, param: str
) -> str | tuple[str, str, str] | None:
    """`param` of the `header` field of `part`, whose first value is `raw`."""
    # A parameter's name is in its field as written (RFC 2231 continuations `name*0*` too):
    # a field without it has none, and the stdlib need not parse the others.
    if raw is None or (raw.isascii() and param not in raw.lower()):
        return None
    if not raw.isascii():
        # Raw 8-bit bytes, which the bytes parser keeps as surrogate escapes and `get_param`
        # would turn into U+FFFD: read them as text first.
        part = Message()
        part[header] = decode(raw.encode("utf-8", "surrogateescape"), None).text
    return part.get_param(param, None, header)


def _param_bytes(text: str) -> bytes:
    """The bytes behind a parameter the stdlib gives as text: %-decoded RFC 2231 octets are
    Latin-1 characters, raw 8-bit bytes are surrogate escapes."""
    try:
        return text.encode("latin-1", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")


def clean(text: str) -> str:
    """`text` stripped, with lone surrogates (undecodable bytes the parser kept as escapes,
    which SQLite cannot store nor the terminal show) as U+FFFD."""
    if not text.isascii():  # ASCII holds no surrogates: most text needs no round trip
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text.strip()


def content_charset(part: Message) -> str:
    """The part's charset label as written, lower case; "" when there is none or it is not
    readable (the stdlib raises on an RFC 2231 `charset*=` whose own charset holds a NUL)."""
    value = part.get("content-type")
    simple = _SIMPLE_CHARSET.fullmatch(value) if isinstance(value, str) else None
    if simple:  # what `get_content_charset` gives for it, without parsing the parameters
        return simple.group(2).lower()
    try:
        return part.get_content_charset() or ""
    except (LookupError, ValueError, UnicodeError):
        return ""


def payload_text(
    part: Message,
    defects: list[str] | None = None,
    label: str | None = None,
    ctype: str | None = None,
) -> tuple[str, str]:
    """A text part's content and the charset that read it. Bytes that charset could not read
    add "CharsetErrors" to `defects`, a label no table knows "UnknownCharset". `label` (the
    part's `content_charset`) and `ctype` (its content type) are read here unless the caller
    has read them already."""
    if ctype is None:
        ctype = part.get_content_type()
    if ctype in WHOLE:
        # Parsed into header blocks: the returned mail, or the report's per-message and
        # per-recipient fields (Action, Status, Diagnostic-Code).
        blocks = part.get_payload() if part.is_multipart() else []
        data = b"\n".join(block.as_bytes() for block in blocks)
    else:
        data = part.get_payload(decode=True) or b""
    if label is None:
        label = content_charset(part)
    if not label and ctype == "text/html" and not data.isascii():
        # What a browser's prescan finds (WHATWG HTML, "prescan a byte stream"), roughly.
        meta = _META_CHARSET.search(data, 0, 4096)
        label = meta.group(1).decode("ascii", "replace") if meta else ""
    decoded = decode(data, label or None)
    if defects is not None:
        if decoded.replaced:
            defects.append("CharsetErrors")
        if label and resolve(label) is None:
            defects.append("UnknownCharset")
    text = decoded.text
    if "\r" in text:  # finding one character is much cheaper than replacing two
        text = text.replace("\r\n", "\n")
    return text, decoded.charset
