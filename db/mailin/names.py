"""Attachment file names that are only names, safe to save on any system the agent may use.

The rule runs when mail is read (`attachment.safe_name`) and again when an agent saves a file,
so a name stored by an older version is made safe too.
"""

from __future__ import annotations

import re
import unicodedata

MAX_CHARS = 120
# Most file systems allow 255 bytes; this leaves room for the " (2)" a second copy gets.
MAX_BYTES = 200
MAX_EXTENSION = 16  # a longer "extension" is part of the name, cut like the rest
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")
_BIDI = dict.fromkeys(
    map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
)
# Windows opens a device, not a file, for these names with any extension and in any case
# (Microsoft, "Naming Files, Paths, and Namespaces"; CreateFile, "Consoles"). The superscript
# digits count as digits there, as Node's path.win32 also holds.
_DEVICE = re.compile(r"con|prn|aux|nul|conin\$|conout\$|com[1-9¹²³]|lpt[1-9¹²³]", re.IGNORECASE)


def safe_name(display: str, index: int | None = None) -> str:
    """A file name that is only a name: no directories, controls, bidi overrides, dots or
    spaces at either end, no Windows device name (`con.txt` -> `_con.txt`), at most 120
    characters and 200 bytes of UTF-8 with its extension kept. Empty: `attachment-INDEX`
    (`attachment` without an index)."""
    base = unicodedata.normalize("NFC", display).translate(_BIDI)
    base = base.replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).strip(" .")
    if _DEVICE.fullmatch(base.split(".", 1)[0].rstrip(" ")):
        base = "_" + base
    base = _shorten(base)
    if base:
        return base
    return "attachment" if index is None else f"attachment-{index}"


def _shorten(name: str) -> str:
    if len(name) <= MAX_CHARS and len(name.encode()) <= MAX_BYTES:
        return name
    dot = name.rfind(".")
    extension = name[dot:] if dot > 0 and len(name) - dot <= MAX_EXTENSION else ""
    stem = name[: len(name) - len(extension)][: MAX_CHARS - len(extension)]
    # Cut on a character boundary: "ignore" drops a character the byte limit split.
    stem = stem.encode()[: MAX_BYTES - len(extension.encode())].decode("utf-8", "ignore")
    return stem.rstrip(" .") + extension
