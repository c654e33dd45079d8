"""Text from strangers made safe to show: markup stays text, control characters become visible.

Everything that came in a mail (subjects, names, addresses, bodies, file names) goes through
`text()` or `line()` before it reaches a widget. Rich `Text` is never parsed as markup; control
characters are swapped for their visible symbols (ESC is shown as ␛, BEL as ␇), so a mail can
neither style the screen nor send the terminal an escape sequence.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text

# C0 controls and DEL have visible "control pictures" (U+2400 block); C1 controls and the
# bidirectional overrides that can reorder what is shown get a \x / \u notation instead.
_VISIBLE = {c: chr(0x2400 + c) for c in range(0x20)} | {0x7F: "\u2421"}
_VISIBLE |= {c: f"\\x{c:02x}" for c in range(0x80, 0xA0)}
_VISIBLE |= {
    c: f"\\u{c:04x}"
    for c in (0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0xFEFF)
}
_MULTILINE = {k: v for k, v in _VISIBLE.items() if k not in (0x0A, 0x09)}


def visible(raw: str | None, *, multiline: bool = False) -> str:
    """`raw` with every control character replaced by a visible stand-in."""
    if not multiline:
        return (raw or "").translate(_VISIBLE)
    return (raw or "").replace("\r\n", "\n").translate(_MULTILINE).expandtabs(4)


def text(raw: str | None, style: str | Style = "", *, multiline: bool = False) -> Text:
    """A Rich `Text` of untrusted `raw`: never markup, never a control character."""
    return Text(visible(raw, multiline=multiline), style=style, no_wrap=not multiline)
