"""Mail from public test suites (Python's, mail-parser's, Ruby mail's, flanker's, mime4j's) reads
as the standard library's `policy.default` reads it: subject, sender and body agree for at least
99 % of the messages, and no text field ever shows a Python object.

Parse only, no database: the whole corpus takes about a second.
"""

from __future__ import annotations

import pytest

from bench.corpus_agreement import (
    FIELDS,
    Report,
    compare,
    corpus_files,
    looks_like_repr,
    render,
)

pytestmark = pytest.mark.timeout(60)

AGREEMENT = 0.99


@pytest.fixture(scope="module")
def report() -> Report:
    return compare(list(corpus_files()))


def test_the_corpus_holds_every_suite(report: Report) -> None:
    suites = {name.split("/", 1)[0] for name in report.files}
    assert {"python", "mail-parser", "ruby-mail", "flanker", "mime4j"} == suites


@pytest.mark.parametrize("field", FIELDS)
def test_field_agrees_with_the_standard_library(report: Report, field: str) -> None:
    shown = render(report)
    assert report.share(field) >= AGREEMENT, f"{field}: {report.share(field):.2%}\n{shown}"


def test_no_text_field_prints_a_python_object(report: Report) -> None:
    assert [] == report.reprs


@pytest.mark.parametrize(
    "value",
    [
        ["Jane <jane@example.com>"],
        b"Invoice",
        "['Jane <jane@example.com>', 'bob@example.com']",
        "b'=?utf-8?q?Rechnung?='",
        "<email.header.Header object at 0x7f3a2c1d9e50>",
    ],
)
def test_a_python_object_where_text_belongs_is_caught(value: object) -> None:
    assert looks_like_repr(value)


@pytest.mark.parametrize(
    "value", ["[#42] Printer on fire", "Re: b'day party", "Smith, Jane <jane@example.com>", ""]
)
def test_text_that_merely_resembles_a_repr_is_text(value: str) -> None:
    assert not looks_like_repr(value)
