"""Copy keys: one mail delivered to several of our mailboxes is one message.

A mail sent To technical@ and Cc sales@ reaches each mailbox as its own copy. The copies carry
the same sender's headers and body but different transport headers: each hop prepends its own
`Received` (RFC 5321 4.4), the delivery agent its `Delivered-To` and `Return-Path`, filters their
verdicts, mail stores their flags. `copy_key` hashes the mail without those, so the store can
tell a copy of a stored message from a new one.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["copy_key"]

# Headers a relay, a filter or the receiving server adds to one delivery, or a mail store
# writes into its files: they differ between copies of one mail and say nothing about its
# content. DKIM signatures go too: the sender's is the same in every copy, but a forwarding
# relay may sign one copy again, and what a signature covers is in the key anyway.
_TRANSPORT = frozenset(
    {
        # trace and delivery (RFC 5321 4.4, RFC 9228 Delivered-To, Postfix, Exim, qmail)
        "received",
        "return-path",
        "delivered-to",
        "x-original-to",
        "envelope-to",
        "x-envelope-to",
        "x-envelope-from",
        "x-apparently-to",
        "x-rcpt-to",
        "x-forwarded-to",
        "x-forwarded-for",
        "x-loop",
        "x-sieve",
        "x-sieve-redirected-from",
        "x-authentication-warning",
        "x-greylist",
        "x-scanned-by",
        "x-quarantine-id",
        # authentication verdicts and stamps (RFC 7208 9.1, RFC 8601, RFC 8617, RFC 6376)
        "received-spf",
        "authentication-results",
        "x-original-authentication-results",
        "arc-seal",
        "arc-message-signature",
        "arc-authentication-results",
        "dkim-signature",
        "domainkey-signature",
        # mbox, Maildir and IMAP-store artefacts (Dovecot, UW-IMAP, Thunderbird, Gmail export)
        "status",
        "x-status",
        "x-uid",
        "x-keywords",
        "x-imap",
        "x-imapbase",
        "content-length",
        "lines",
        "x-account-key",
        "x-gmail-labels",
    }
)
_TRANSPORT_PREFIXES = (
    "x-received",  # Gmail's internal hops
    "x-google-",  # X-Google-Smtp-Source, X-Google-DKIM-Signature
    "x-gm-",  # X-Gm-Message-State, X-GM-THRID
    "x-spam",  # SpamAssassin X-Spam-*, Rspamd X-Spamd-*
    "x-virus",
    "x-rspamd-",
    "x-amavis",
    "x-ms-",  # Exchange and Microsoft 365: X-MS-Exchange-Organization-*, -CrossTenant-*, …
    "x-microsoft-antispam",
    "x-forefront-",
    "x-eopattributedmessage",
    "x-eoptenantattributedmessage",
    "x-proofpoint-",
    "x-mimecast-",
    "x-barracuda-",
    "x-ironport-",
    "x-ses-",
    "x-mozilla-",
)
_TRANSPORT_NAMES = frozenset(name.encode() for name in _TRANSPORT)
_TRANSPORT_STARTS = tuple(prefix.encode() for prefix in _TRANSPORT_PREFIXES)
_HEADER_END = re.compile(rb"\n\r?\n")
_SPACES = re.compile(rb"  +")
_ENVELOPE = re.compile(rb"From (?![ \t]*:)")  # mbox's separator line; "From :" is a field


def copy_key(raw: bytes) -> str | None:
    """The SHA-256 (hex) of `raw` without its transport headers, equal for every copy of one
    mail; None when the mail has neither a Message-ID nor a Date to tell one sending from the
    next (two such mails with the same text may be two sendings, so they stay apart).

    Header fields are compared as DKIM's "relaxed" canonicalization compares them (RFC 6376
    3.4.2: names in lower case, unfolded, runs of white space as one space), so refolding and
    CRLF against LF do not matter; the other fields keep their order. The body is compared
    byte for byte except line endings and trailing empty lines (RFC 6376 3.4.3). An mbox
    envelope line ("From sender date") is not a field and is left out. Never raises.
    """
    end = _HEADER_END.search(raw)
    head, body = (raw[: end.start()], raw[end.end() :]) if end else (raw, b"")
    # Unfolded (a line break before white space goes), then each run of white space as one
    # space: string replacements, which find what they replace far faster than a pattern.
    head = head.replace(b"\r\n", b"\n").replace(b"\n ", b" ").replace(b"\n\t", b"\t")
    head = head.replace(b"\t", b" ")
    if b"  " in head:
        head = _SPACES.sub(b" ", head)
    lines = head.split(b"\n")
    if _ENVELOPE.match(lines[0]):
        del lines[0]
    kept = []
    origin = False
    for line in lines:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name not in _TRANSPORT_NAMES and not name.startswith(_TRANSPORT_STARTS):
            value = value.strip()
            origin = origin or (value != b"" and name in (b"message-id", b"date"))
            kept.append(name + b":" + value)
    if not origin:
        return None
    if b"\r" in body:  # a body without CR needs no copy
        body = body.replace(b"\r\n", b"\n")
    kept.append(b"\n" + body.rstrip(b"\n"))
    return hashlib.sha256(b"\n".join(kept)).hexdigest()
