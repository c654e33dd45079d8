"""The text a thread shows after a message's body: its other inline text parts (RFC 2183
section 2.1), a delivery report's fields (RFC 3464) and a read receipt's (RFC 8098).

Ingest keeps each as an attachment marked `inline` whose data is its text in UTF-8, as ingest
read it: charset labels, repairs and detection live in ingest, which neither the desk nor this
package may import, so the text is stored ready to show. HTML stays HTML (a saved copy is the
part as sent) and is shown through `html_text`, the rendering ingest gives an HTML body.
No SQL here: ingest and the desk both call these.
"""

from __future__ import annotations

import re

from inscriptis import get_text

MAX_SHOWN = 400_000  # bytes read of one part: more than the thread shows of it
DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")  # RFC 3464, 6533
MDN_TYPES = (  # RFC 8098, RFC 6533
    "message/disposition-notification",
    "message/global-disposition-notification",
)
REPORT_TITLES = {
    **dict.fromkeys(DSN_TYPES, "Delivery report"),
    **dict.fromkeys(MDN_TYPES, "Read receipt report"),
}
_FOLD = re.compile(r"\r?\n[ \t]+")


def unfold_fields(report: str) -> str:
    """A report's fields with each folded field on one line (RFC 5322 section 2.2.3): a long
    Diagnostic-Code or Original-Message-ID goes on over lines."""
    return _FOLD.sub(" ", report)


def html_text(markup: str) -> str:
    """HTML as the text a reader sees, blocks, lists and tables laid out (inscriptis)."""
    if not markup.strip():
        return ""
    try:
        return get_text(markup).strip()
    except Exception:  # noqa: BLE001 - a renderer failure must not lose the text; show tags
        return markup


def block(display_name: str, content_type: str, data: bytes) -> tuple[str, str]:
    """One inline part as the thread shows it: (title, text). A report is titled by its kind,
    a text part by its name."""
    text = data.decode("utf-8", "replace")
    if content_type == "text/html":
        text = html_text(text)
    return REPORT_TITLES.get(content_type, display_name), text
