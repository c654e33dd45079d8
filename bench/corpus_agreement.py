"""Agreement with the standard library: our parser against `email.policy.default` on mail from
public test suites (tests/fixtures/corpus/, see its README).

For each message three fields are compared, each after the normalisation a reader would not
notice (line endings, runs of white space, space at the ends, the case of the address):
- subject: `str(msg["subject"])`;
- sender: the `addr_spec` of the first address in From;
- body: `msg.get_body(preferencelist=("plain", "html"))`'s content (the HTML one when the plain
  alternative is blank, as a mail client shows it); HTML is turned into text
  with inscriptis, as ingest/body.py does.

The null sender `<>` counts as no sender. A field is left out of its count, and listed with our
value, only where policy.default has no answer worth comparing with: it raises or meets a
charset Python does not know; the header holds raw 8-bit bytes (it shows U+FFFD for each);
it rebuilt an invalid From into a quoted local part no one sent, or gives a fragment with no
domain (`From: foo`), where we record "no usable sender"; it misread a boundary and
found no part where compat32 finds them. Separately, every text field of every parsed message
must be text, never a Python object's repr (a list, bytes, an `email` object).

Run: `python -m bench corpus_agreement` (prints per-field agreement and every disagreement).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from inscriptis import get_text

from db.mailin.model import Incoming
from ingest.parse import parse

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "corpus"
FIELDS = ("subject", "sender", "body")
_SPACE = re.compile(r"\s+")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_LOCAL_PART_REBUILT = "local-part is not dot-atom"
# What a Python object looks like when it is printed where text belongs.
_REPR = re.compile(
    r"^\[(?:'[^']*'|\"[^\"]*\")(?:, (?:'[^']*'|\"[^\"]*\"))*\]$"  # a list of str
    r"|^b'[^']*'$|^b\"[^\"]*\"$"  # bytes
    r"|<email\.[\w.]+ object at 0x[0-9a-f]+>"  # an email.* object
    r"|^\(\w+\.\w+,"  # a tuple of objects
)


class Unreadable(Exception):
    """The standard library cannot give a reference value for this field."""


@dataclass
class Disagreement:
    file: str
    field: str
    ours: str
    stdlib: str


@dataclass
class Report:
    files: list[str] = field(default_factory=list)
    agreed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIELDS, 0))
    compared: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIELDS, 0))
    disagreements: list[Disagreement] = field(default_factory=list)
    excluded: list[tuple[str, str, str]] = field(default_factory=list)  # file, field, why
    reprs: list[tuple[str, str, str]] = field(default_factory=list)  # file, field, value

    def share(self, name: str) -> float:
        return self.agreed[name] / self.compared[name] if self.compared[name] else 1.0


def corpus_files(root: Path = CORPUS) -> Iterator[Path]:
    """Every message file under `root`, in a stable order (README.md is not mail)."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name != "README.md":
            yield path


def text(value: str) -> str:
    """What a reader compares: runs of white space (line ends included) count as one space."""
    return _SPACE.sub(" ", value).strip()


def _head(raw: bytes) -> bytes:
    end = _HEADER_END.search(raw)
    return raw[: end.start()] if end else raw


def _reference(raw: bytes) -> dict[str, Callable[[], str]]:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)

    def subject() -> str:
        value = msg["subject"]
        read = "" if value is None else str(value)
        if "\ufffd" in read and not _head(raw).isascii():
            # policy.default reads raw 8-bit header bytes as ASCII: U+FFFD for each byte.
            raise Unreadable("raw 8-bit bytes in the header: policy.default shows U+FFFD")
        return read

    def sender() -> str:
        value = msg["from"]
        addresses = getattr(value, "addresses", ()) if value is not None else ()
        if not addresses:
            return ""
        if any(_LOCAL_PART_REBUILT in str(d) for d in value.defects):
            # "Big Bug bb@bug.com" becomes '"Big Bug bb"@bug.com': an address no one sent.
            raise Unreadable("policy.default rebuilt an invalid local part: " + str(value))
        # RFC 5321 4.5.5: <> is the null sender; policy.default gives its addr_spec as "<>".
        spec = addresses[0].addr_spec
        if spec != "<>" and "@" not in spec:
            # `From: foo`: a fragment no reply can reach; issue 10 asks for "no usable
            # sender" (an empty address) instead.
            raise Unreadable(f"policy.default gives a fragment, not an address: {spec!r}")
        return "" if spec == "<>" else spec

    def body() -> str:
        lenient = message_from_bytes(raw, policy=policy.compat32)
        if lenient.is_multipart() and not msg.is_multipart():
            # An unquoted boundary holding "=" (RFC 2045 tspecial): policy.default cuts it at
            # the "=" and finds no part, where compat32 and mail clients read it whole.
            raise Unreadable(f"policy.default misread the boundary {lenient.get_boundary()!r}")
        part = msg.get_body(preferencelist=("plain", "html"))
        if part is None:
            return ""
        content = part.get_content()
        if not content.strip() and part.get_content_type() == "text/plain":
            # A blank plain alternative beside a real HTML one is a sender's fault (issue 10,
            # item 4): a mail client shows the HTML, so that is the reference.
            html = msg.get_body(preferencelist=("html",))
            part, content = (html, html.get_content()) if html is not None else (part, content)
        if part.get_content_type() == "text/html":
            return get_text(content) if content.strip() else ""
        return content

    return {"subject": subject, "sender": sender, "body": body}


def _reference_value(read: Callable[[], str]) -> str:
    try:
        return read()
    except Unreadable:
        raise
    except LookupError as exc:  # a charset Python does not know
        raise Unreadable(f"unknown charset: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - whatever policy.default raises is its failure
        raise Unreadable(f"{type(exc).__name__}: {exc}") from exc


def _ours(msg: Incoming) -> dict[str, str]:
    return {"subject": msg.subject, "sender": msg.from_addr, "body": msg.body_text}


def _normalised(name: str, value: str) -> str:
    value = text(value)
    return value.lower() if name == "sender" else value


def text_fields(msg: Incoming) -> Iterator[tuple[str, object]]:
    """Every field of a parsed message that a person reads as text."""
    for name in ("subject", "from_name", "from_addr", "body_text", "body_html", "headers"):
        yield name, getattr(msg, name)
    for name in ("to_addrs", "cc_addrs", "reply_to", "recipients", "references"):
        for i, item in enumerate(getattr(msg, name)):
            yield f"{name}[{i}]", item
    for i, att in enumerate(msg.attachments):
        yield f"attachments[{i}].display_name", att.display_name
        yield f"attachments[{i}].safe_name", att.safe_name


def looks_like_repr(value: object) -> bool:
    """True when `value` is not text, or is text that prints a Python object."""
    if not isinstance(value, str):
        return True
    return any(_REPR.search(line.strip()) for line in value.splitlines()[:3] or [""])


def compare(paths: list[Path], root: Path = CORPUS) -> Report:
    report = Report()
    for path in paths:
        name = str(path.relative_to(root))
        report.files.append(name)
        raw = path.read_bytes()
        msg = parse(raw)
        for field_name, value in text_fields(msg):
            if looks_like_repr(value):
                report.reprs.append((name, field_name, repr(value)[:200]))
        ours = _ours(msg)
        try:
            readers = _reference(raw)
        except Exception as exc:  # noqa: BLE001 - the stdlib could not parse it at all
            for field_name in FIELDS:
                report.excluded.append((name, field_name, f"{type(exc).__name__}: {exc}"))
            continue
        for field_name in FIELDS:
            try:
                expected = _reference_value(readers[field_name])
            except Unreadable as exc:
                why = f"{exc}; ours: {text(ours[field_name])[:80]!r}"
                report.excluded.append((name, field_name, why))
                continue
            report.compared[field_name] += 1
            if _normalised(field_name, ours[field_name]) == _normalised(field_name, expected):
                report.agreed[field_name] += 1
            else:
                report.disagreements.append(
                    Disagreement(name, field_name, ours[field_name], expected)
                )
    return report


def _clip(value: str, width: int) -> str:
    value = text(value)
    return value if len(value) <= width else value[: width - 1] + "…"


def render(report: Report, width: int = 160) -> str:
    suites: dict[str, int] = {}
    for name in report.files:
        suite = name.split("/", 1)[0]
        suites[suite] = suites.get(suite, 0) + 1
    lines = [
        f"{len(report.files)} messages: "
        + ", ".join(f"{suite} {count}" for suite, count in sorted(suites.items()))
    ]
    for name in FIELDS:
        lines.append(
            f"{name:8s} {report.share(name):7.2%}  ({report.agreed[name]}/{report.compared[name]}"
            f" agree, {sum(1 for e in report.excluded if e[1] == name)} excluded)"
        )
    lines.append(f"text fields that print a Python object: {len(report.reprs)}")
    for file, field_name, value in report.reprs:
        lines.append(f"  REPR {file} {field_name}: {value}")
    for d in report.disagreements:
        lines.append(f"  DIFF {d.file} [{d.field}]")
        lines.append(f"       ours:   {_clip(d.ours, width)!r}")
        lines.append(f"       stdlib: {_clip(d.stdlib, width)!r}")
    for file, field_name, why in report.excluded:
        lines.append(f"  EXCLUDED {file} [{field_name}]: {_clip(why, width)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args(argv)
    print(render(compare(list(corpus_files(args.corpus)), args.corpus)))


if __name__ == "__main__":
    main(sys.argv[1:])
