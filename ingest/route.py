"""Routing: which functions a message is for, and whether it is an auto-reply or a bounce."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from db.config import Source

_AUTO_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
_BOUNCE_SENDERS = ("mailer-daemon", "postmaster")


def auto_kind(header: Callable[[str], str], content_type: str, from_addr: str) -> str:
    """'bounce', 'auto-reply' or '' (a person wrote it), from the headers RFC 3834 and
    RFC 3464 define plus the common vendor ones."""
    report = content_type.lower().startswith("multipart/report")
    local = from_addr.lower().split("@", 1)[0]
    if report or local in _BOUNCE_SENDERS:
        return "bounce"
    submitted = header("auto-submitted").strip().lower()
    if submitted and not submitted.startswith("no"):
        return "auto-reply"
    if header("precedence").strip().lower() in _AUTO_PRECEDENCE:
        return "auto-reply"
    if header("x-autoreply") or header("x-autorespond"):
        return "auto-reply"
    if header("return-path").strip() == "<>":
        return "auto-reply"
    return ""


def functions(
    source: Source, recipients: list[str], addresses: Mapping[str, str]
) -> tuple[str, ...]:
    """The functions a message is for, the first one primary.

    A source with its own `addresses` is a shared account: the recipients decide, and its
    `function` is only the fallback. Otherwise the source's function comes first and any other
    support address the mail was also sent to adds its function.
    """
    known = {**addresses, **source.addresses}
    matched = [known[r] for r in recipients if r in known]
    ordered = matched if source.addresses and matched else [source.function, *matched]
    return tuple(dict.fromkeys(ordered))
