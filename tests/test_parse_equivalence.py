"""Parsing gives the same `Incoming`, field for field, as the parser frozen in
`tests/fixtures/parse-equivalence.json` did: every mail file under tests/fixtures and the first
messages of the bench's generated mail (`ingest.demo.generate`, the bench's seed).

The expectation holds a digest per message and one per field over all messages, so a failure
names the messages and the fields that changed. A change to the parser that is meant to change
what it reads bumps `ingest.parse.PARSER_VERSION` (so `desk-ingest --reparse` reads stored mail
again) and rewrites the expectation: `python tests/test_parse_equivalence.py`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from db.core import clock
from db.mailin.model import Incoming
from ingest.demo import generate
from ingest.parse import parse

pytestmark = pytest.mark.timeout(120)

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED = FIXTURES / "parse-equivalence.json"
GENERATED = 2000  # the bench's first messages (`python -m bench ingest_drop`, seed 7)
# The year a date may reach before it is implausible depends on today: read at one moment.
NOW = "2026-11-29T12:00:00+00:00"
FIELDS = [f.name for f in dataclasses.fields(Incoming)]


def inputs() -> Iterator[tuple[str, bytes]]:
    """(name, raw bytes) of every mail file under tests/fixtures (not the READMEs, the JSON
    of this test, nor the JSON Lines texts of the discrepancy bench), then the generated mail."""
    for path in sorted(FIXTURES.rglob("*")):
        if path.is_file() and path.suffix not in (".md", ".json", ".jsonl"):
            yield path.relative_to(FIXTURES).as_posix(), path.read_bytes()
    for number, (_, raw) in enumerate(generate(GENERATED)):
        yield f"generated/{number}", raw


def _digest(value: object) -> str:
    return hashlib.sha256(repr(value).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def digests() -> dict[str, dict[str, str]]:
    """{"messages": {name: digest of all its fields}, "fields": {field: digest over all
    messages}} of what `parse` reads now."""
    messages: dict[str, str] = {}
    per_field: dict[str, list[str]] = {name: [] for name in FIELDS}
    with clock.fixed_at(NOW):
        for name, raw in inputs():
            msg = parse(raw)
            values = [_digest(getattr(msg, field)) for field in FIELDS]
            for field, value in zip(FIELDS, values, strict=True):
                per_field[field].append(value)
            messages[name] = _digest(values)
    return {
        "messages": messages,
        "fields": {field: _digest(values) for field, values in per_field.items()},
    }


def test_every_message_parses_as_the_frozen_parser_read_it() -> None:
    expected = json.loads(EXPECTED.read_text())
    actual = digests()
    changed = [n for n, d in actual["messages"].items() if expected["messages"].get(n) != d]
    fields = [f for f, d in actual["fields"].items() if expected["fields"].get(f) != d]
    assert (expected["messages"].keys(), [], []) == (actual["messages"].keys(), changed, fields)


if __name__ == "__main__":
    EXPECTED.write_text(json.dumps(digests(), indent=0, sort_keys=True) + "\n")
    sys.exit(0)
