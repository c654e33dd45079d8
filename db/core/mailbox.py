"""Mailboxes as the desk reads and writes them: 'Name <addr>', the address alone, checked.

Plain functions, no SQL. Configuration, the parser and the mail the desk sends all read
addresses here, so an address the desk accepts in one place it accepts in every other.
"""

from __future__ import annotations

import functools
import re
from email.utils import parseaddr

import email_validator
from email_validator import ValidatedEmail, validate_email

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
# RFC 6762 lets software treat .local as special, and email-validator does; but a company's
# own mail server delivers to its .local addresses, and its staff write to the desk from them.
if "local" in email_validator.SPECIAL_USE_DOMAIN_NAMES:
    email_validator.SPECIAL_USE_DOMAIN_NAMES.remove("local")


def address(mailbox: str) -> str:
    """The bare, lower-case address in 'Name <addr>' or 'addr'."""
    return parseaddr(mailbox)[1].lower()


def one_line(text: str) -> str:
    """Header-safe text: a customer's subject or name must not add header lines of its own."""
    return _CONTROL.sub(" ", text).strip()


_SPECIALS = re.compile(r'[][\\()<>@,:;".]')


def recipient(name: str, addr: str) -> str:
    """'Name <addr>' as people read it (unencoded), quoted where `parseaddr` needs it."""
    name = one_line(name)
    if not name:
        return addr
    if _SPECIALS.search(name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{addr}>"


def sendable(addr: str) -> bool:
    """Whether the desk can send to `addr` as written: local@domain, no spaces, and ASCII,
    because the desk does not speak SMTPUTF8 (RFC 6531) and the stdlib cannot write such a
    header. `wire_address` also takes an internationalised domain."""
    local, at, domain = addr.rpartition("@")
    return bool(at and local and domain) and addr.isascii() and not any(c.isspace() for c in addr)


def _checked(addr: str) -> ValidatedEmail | None:
    try:
        # Syntax only: a DNS lookup per message would make reading mail depend on the network.
        # Dotless, `.local` and `.test` domains pass (internal and test mail); RFC 6761's
        # reserved names (.invalid, .localhost …) do not.
        return validate_email(
            addr, check_deliverability=False, globally_deliverable=False, test_environment=True
        )
    except ValueError:  # EmailNotValidError, and IDNA errors on broken domains
        return None


@functools.lru_cache(maxsize=4096)  # customers write again and again; the check is costly
def real_address(addr: str) -> str:
    """`addr` as one address mail can be written to, lower-case, its domain in Unicode form
    (RFC 5891): 'jane@bücher.example'; '' when it is not one (RFC 5322 3.4.1 addr-spec: a
    local part, '@', a domain), such as a fragment ('smith'), a quoted local part, a bracketed
    IP address, or a reserved domain. The syntax check is email-validator's."""
    checked = _checked(addr) if "@" in addr else None
    return checked.normalized.lower() if checked is not None else ""


def wire_address(addr: str) -> str | None:
    """`addr` as SMTP and an ASCII header carry it, an internationalised domain in its ASCII
    form (RFC 5891): 'jane@xn--bcher-kva.example'; None when the desk cannot write to it: not
    an address, or non-ASCII before the '@', which needs SMTPUTF8 (RFC 6531)."""
    if sendable(addr):
        return addr
    checked = _checked(addr) if "@" in addr else None
    return checked.ascii_email.lower() if checked is not None and checked.ascii_email else None


def parse_mailbox(entry: str) -> tuple[str, str | None]:
    """(name, lower-case address) of 'Name <addr>' or 'addr'; the address is None when the desk
    cannot send to it."""
    name, addr = parseaddr(entry.strip())
    return (one_line(name), addr.lower()) if sendable(addr) else ("", None)
