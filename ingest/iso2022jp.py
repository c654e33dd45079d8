"""Japanese mail as Windows writes it: ISO-2022-JP (CP50220/CP50221/CP50222) and EUC-JP with
NEC's row 13 (①, №, ㈱) and the NEC-selected IBM extensions (rows 89-92), which Python's
`iso2022_jp` and `euc_jp` codecs reject, as the WHATWG Encoding Standard reads them (sections
12.1 "EUC-JP" and 12.2 "ISO-2022-JP", whose JIS X 0208 index holds those rows).

Each JIS X 0208 pair is moved to its Shift_JIS code by the fixed arithmetic of JIS X 0208
Annex 1 and read by Python's `cp932` (Windows-31J), which holds the extensions. Half-width
katakana (ESC ( I, SO/SI, EUC's 0x8E), JIS X 0212 (ESC $ ( D, EUC's 0x8F), JIS X 0213 and the
ISO-2022-JP-2 sets are read too. Python's strict codec goes first: it is faster, and most mail
needs no more.
"""

from __future__ import annotations

import re
from collections.abc import Callable

NAME = "iso-2022-jp"

# RFC 1468 and RFC 1554 designations, and the shifts of CP50222's katakana.
_ESCAPE = re.compile(
    rb"\x1b(\(B|\(J|\(I|\$@|\$B|&@\x1b\$B|\$\(D|\$\(O|\$\(Q|\$\(P|\$A|\$\(C)|[\x0e\x0f]"
)
_MODES = {b"&@\x1b$B": b"$B", b"$@": b"$B"}  # JIS C 6226 and the 1990 revision: one table


def decode(data: bytes) -> tuple[str, bool]:
    """ISO-2022-JP `data` as text, and whether some bytes were not text (became U+FFFD)."""
    try:
        return data.decode("iso2022_jp"), False
    except UnicodeDecodeError:
        pass
    out: list[str] = []
    replaced = False
    mode = shifted_from = b"(B"
    pos = 0
    for match in _ESCAPE.finditer(data):
        text, bad = _segment(data[pos : match.start()], mode)
        out.append(text)
        replaced |= bad
        pos = match.end()
        if match.group(0) == b"\x0e":
            shifted_from, mode = mode, b"(I"
        elif match.group(0) == b"\x0f":
            mode = shifted_from
        else:
            mode = _MODES.get(match.group(1), match.group(1))
    text, bad = _segment(data[pos:], mode)
    out.append(text)
    return "".join(out), replaced | bad


def _segment(seg: bytes, mode: bytes) -> tuple[str, bool]:
    if mode == b"$B":
        return _pairs(seg, _sjis, "cp932")
    if mode == b"$(D":
        return _pairs(seg, lambda a, b: bytes((0x8F, a | 0x80, b | 0x80)), "euc_jp")
    if mode == b"$A":
        return _pairs(seg, lambda a, b: bytes((a | 0x80, b | 0x80)), "gb18030")
    if mode == b"$(C":
        return _pairs(seg, lambda a, b: bytes((a | 0x80, b | 0x80)), "cp949")
    if mode in (b"$(O", b"$(Q", b"$(P"):
        text = (b"\x1b" + mode + seg).decode("iso2022_jp_2004", "replace")
        return text, "\ufffd" in text
    if mode == b"(I":
        # Half-width katakana are Shift_JIS's single bytes 0xA1-0xDF.
        kana = bytes(b | 0x80 if 0x21 <= b <= 0x5F else b for b in seg)
        return _strict_or_replace(kana, "cp932")
    text, replaced = _strict_or_replace(seg, "ascii")
    if b"\x1b" in seg:  # a designation no table here knows
        text, replaced = text.replace("\x1b", "\ufffd"), True
    if mode == b"(J":  # JIS X 0201 Roman
        text = text.replace("\\", "\u00a5").replace("~", "\u203e")
    return text, replaced


def _pairs(seg: bytes, to_bytes: Callable[[int, int], bytes], codec: str) -> tuple[str, bool]:
    """Two-byte text: each pair through `to_bytes` into `codec`. Line ends and spaces written
    inside two-byte text are kept as they are, not taken for half a character."""
    out: list[str] = []
    run = bytearray()
    replaced = False
    i = 0
    while i < len(seg):
        first = seg[i]
        if 0x21 <= first <= 0x7E and i + 1 < len(seg) and 0x21 <= seg[i + 1] <= 0x7E:
            run += to_bytes(first, seg[i + 1])
            i += 2
            continue
        text, bad = _strict_or_replace(bytes(run), codec)
        out.append(text)
        run.clear()
        replaced |= bad
        if first <= 0x20:
            out.append(chr(first))
        else:
            out.append("\ufffd")
            replaced = True
        i += 1
    text, bad = _strict_or_replace(bytes(run), codec)
    out.append(text)
    return "".join(out), replaced | bad


def _sjis(j1: int, j2: int) -> bytes:
    """The Shift_JIS code of the JIS X 0208 pair (j1, j2), both 0x21-0x7E."""
    s1 = (j1 + 1) // 2 + (0x70 if j1 <= 0x5E else 0xB0)
    # Odd rows take the lower half of the trail range (skipping 0x7F), even rows the upper.
    s2 = (j2 + (0x1F if j2 <= 0x5F else 0x20)) if j1 % 2 else j2 + 0x7E
    return bytes((s1, s2))


def _strict_or_replace(data: bytes, codec: str) -> tuple[str, bool]:
    try:
        return data.decode(codec), False
    except UnicodeDecodeError:
        return data.decode(codec, "replace"), True


def decode_euc(data: bytes) -> tuple[str, bool]:
    """EUC-JP `data` as text, and whether some bytes were not text (became U+FFFD)."""
    try:
        return data.decode("euc_jp"), False
    except UnicodeDecodeError:
        pass
    out: list[str] = []
    run = bytearray()  # as Shift_JIS
    replaced = False
    i = 0
    while i < len(data):
        b = data[i]
        nxt = data[i + 1] if i + 1 < len(data) else 0
        if b < 0x80:
            run.append(b)
            i += 1
        elif b == 0x8E and 0xA1 <= nxt <= 0xDF:
            run.append(nxt)  # half-width katakana
            i += 2
        elif 0xA1 <= b <= 0xFE and 0xA1 <= nxt <= 0xFE:
            run += _sjis(b & 0x7F, nxt & 0x7F)
            i += 2
        else:
            text, bad = _strict_or_replace(bytes(run), "cp932")
            out.append(text)
            run.clear()
            replaced |= bad
            if b == 0x8F and i + 2 < len(data):  # JIS X 0212
                text, bad = _strict_or_replace(data[i : i + 3], "euc_jp")
                i += 3
            else:
                text, bad = "\ufffd", True
                i += 1
            out.append(text)
            replaced |= bad
    text, bad = _strict_or_replace(bytes(run), "cp932")
    out.append(text)
    return "".join(out), replaced | bad
