"""One language's rules, read from its data file (`en.toml`, `de.toml`, … beside this module).

A data file holds word lists and regular expressions over folded text (see `text.fold`: lower
case, no accents, ä as ae). `[terms]` are named alternations that the patterns use as
`{name}`; a few are built in for every language:

- `{amount}` a sum of money ("EUR 4,120.55", "1.200 €", "87.20"), `{num}` any number;
- `{gap}` one word that is no negator, `{gaps}` and `{subj}` up to six such words
  (the rest of a subject: "deposits from 3 June are missing");
- `{line}` the middle of a reply header, which may wrap onto a second line.

`patterns` are whole phrases ("my balance is wrong"). `problems` are words that report a
problem only near a `topic` (in the same sentence, within TOPIC_CHARS): "took the interest out
twice", "the dividend was never credited"; `vague` ones ("something's wrong there") may find
their topic in the sentence before. All are judged alike (denials, hypotheticals …).

The other keys of `[rules]`:
- `negators`: words that deny a match in the five words before it ("-n't" a suffix, "n'-" a
  prefix); `post_negators` deny it right after ("es fehlt nichts"); `not_negating` are
  phrases whose negation denies nothing ("no idea why", "not sure if");
- `gap_stops`: words a gap never crosses ("if"); `clause_breaks`: words ending a clause;
  `conjunctions`: words ("and") that also part a problem word from its topic;
- `hypothetical`: a clause with one is no report ("if", "falls", "s'il");
- `procedure` and `own_doing`: a sentence asking how to report, or telling the writer's own
  slip or plan ("by mistake", "I typed"), what someone else said, or good news ("returns
  higher than expected"); a body with one backs no subject either;
- `void_after`: words later in the mail that take a report back or say it is resolved;
- `reply_headers`: where quoted text begins (multi-line regular expressions);
- `support`: what a body must name for its subject to count;
- `records`: personal data and lists ("address", "IBAN", "history") that, besides a `topic`,
  a sentence the classifier flags may name (judge.py);
- `disowned`: the writer saying a change was not theirs ("I never changed it", "without my
  consent", "a number I don't know"); it reports a discrepancy when a `records` item stands
  within DISOWNED_CHARS before it or in its sentence (find.py): "the mobile number listed
  isn't mine … I've never changed it". Being negations, they are not denied by negators;
- `common`: frequent words, to tell the language of a mail; `typo_targets`: words typos are
  repaired towards; `not_typos`: real words never "repaired".

The keys are described in README.md ("Discrepancy reports: how they are found").
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from db.core.errors import DeskError

HERE = Path(__file__).resolve().parent
CODES = ("en", "de", "fr", "es", "it", "nl")  # ISO 639-1; one data file each

_CURRENCY = r"(?:eur|euros?|usd|gbp|chf|dollars?|pounds?|€|\$|£|k\b)"
_NUMBER = r"\d{1,3}(?:(?:[.,' ]\d{3})+|\d*)(?:[.,]\d{1,2})?"
_CENTS = r"\d{1,3}(?:[.,' ]\d{3})*[.,]\d{2}\b"  # 87.20, 1.020,00: a sum without a currency
# The lookahead lets the engine pass over the many places no sum can start, cheaply.
_STARTS = r"(?=[\d€$£]|eur|usd|gbp|chf)"
BUILT_IN = {
    "amount": rf"{_STARTS}(?:{_CURRENCY}\s?{_NUMBER}|{_NUMBER}\s?{_CURRENCY}|{_CENTS})",
    "num": rf"{_STARTS}(?:{_CURRENCY}\s?)?{_NUMBER}(?:\s?{_CURRENCY}|\s?%)?",
    "line": r"[^\n]{2,200}(?:\n[^\n]{0,160})?",
}


class RulesError(DeskError):
    """A data file or a configured pattern cannot be used."""


@dataclass(frozen=True, eq=False)  # one object per language: identity is equality, and cheap
class Language:
    """A language's compiled rules. Patterns and word lists are over folded text."""

    code: str
    name: str
    patterns: tuple[re.Pattern[str], ...]
    negators: frozenset[str]
    negator_suffixes: tuple[str, ...]  # "n't" ends a negating word
    negator_prefixes: tuple[str, ...]  # French "n'" begins one
    post_negators: frozenset[str]
    not_negating: re.Pattern[str] | None
    hypothetical: re.Pattern[str] | None
    clause_break: re.Pattern[str]
    topic_break: re.Pattern[str]  # a clause break or "and": a topic must stand before it
    void_after: tuple[str, ...]
    procedure: tuple[str, ...]
    reply_headers: tuple[str, ...]
    support: str
    topic: re.Pattern[str] | None  # what a problem word must be near: a figure, a sum …
    records: re.Pattern[str] | None  # personal data and lists ("address", "history")
    problems: re.Pattern[str] | None  # problem words that count near a topic
    vague: re.Pattern[str] | None  # problem words whose topic may be in the sentence before
    disowned: re.Pattern[str] | None  # "I never changed it": a change that was not the writer's
    common: frozenset[str]
    typo_targets: tuple[str, ...]
    known: frozenset[str]
    terms: tuple[tuple[str, str], ...]  # for configured patterns, which may use them too


def fill(pattern: str, terms: dict[str, str]) -> str:
    """`pattern` with each `{name}` of `terms` replaced, terms inside terms too."""
    for _ in range(4):
        before = pattern
        for name, value in terms.items():
            pattern = pattern.replace("{" + name + "}", f"(?:{value})")
        if pattern == before:
            break
    return pattern


def _alternation(words: list[str]) -> str:
    return "|".join(sorted((re.escape(w) for w in words), key=len, reverse=True))


def _any(patterns: list[str]) -> re.Pattern[str] | None:
    return re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None


@cache
def load(code: str) -> Language:
    """The rules in `<code>.toml`. Raises RulesError naming the file and the key at fault."""
    path = HERE / f"{code}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        rules = data["rules"]
        negators = [w.lower() for w in rules["negators"]]
        words = [w for w in negators if "-" not in (w[0], w[-1])]
        stop = _alternation(words + rules.get("gap_stops", []))
        # A gap word is no negator (nor a word ending in n't or beginning with French n').
        gap = rf"(?:(?!(?:{stop})\b)(?![\w']*n't\b)(?!n')[\w'.,€$£%/&-]+\s+)"
        terms = {
            **BUILT_IN,
            "gap": f"{gap}?",
            "gaps": f"{gap}{{0,6}}?",
            "subj": f"{gap}{{0,6}}?",
            **data.get("terms", {}),
        }
        key = "patterns"
        patterns = tuple(re.compile(fill(p, terms)) for p in rules["patterns"])
        key = "other rules"
        breaks = _alternation(rules.get("clause_breaks", []))
        clause_break = re.compile(
            r"[.!?;:\n()]|(?<!\d)[.,]|[.,](?!\d)|\s[-\u2013\u2014]+\s"
            + (rf"|\b(?:{breaks})\b" if breaks else "")
        )
        # Commas do not part a problem word from its topic ("a withdrawal of 1,000 €, which I
        # never made"); "and", "but" and the end of a sentence do.
        ands = _alternation([*rules.get("conjunctions", []), *rules.get("clause_breaks", [])])
        topic_break = re.compile(
            r"[!?;\n]|\.(?!\d)|\s[-\u2013\u2014]+\s" + (rf"|\b(?:{ands})\b" if ands else "")
        )
        typo_targets = tuple(rules.get("typo_targets", []))
        return Language(
            code=code,
            name=data["name"],
            patterns=patterns,
            negators=frozenset(w for w in negators if "-" not in (w[0], w[-1])),
            negator_suffixes=tuple(w[1:] for w in negators if w.startswith("-")),
            negator_prefixes=tuple(w[:-1] for w in negators if w.endswith("-")),
            post_negators=frozenset(rules.get("post_negators", [])),
            not_negating=_any([fill(p, terms) for p in rules.get("not_negating", [])]),
            hypothetical=_any([fill(p, terms) for p in rules.get("hypothetical", [])]),
            clause_break=clause_break,
            topic_break=topic_break,
            void_after=tuple(fill(p, terms) for p in rules.get("void_after", [])),
            procedure=tuple(
                fill(p, terms) for p in [*rules.get("procedure", []), *rules.get("own_doing", [])]
            ),
            reply_headers=tuple(fill(p, terms) for p in rules.get("reply_headers", [])),
            support=fill(rules["support"], terms),
            topic=_any([fill(rules["topic"], terms)]) if "topic" in rules else None,
            records=_any([fill(rules["records"], terms)]) if "records" in rules else None,
            problems=_any([fill(p, terms) for p in rules.get("problems", [])]),
            vague=_any([fill(p, terms) for p in rules.get("vague", [])]),
            disowned=_any([fill(p, terms) for p in rules.get("disowned", [])]),
            common=frozenset(rules.get("common", [])),
            typo_targets=typo_targets,
            known=frozenset([*typo_targets, *rules.get("not_typos", []), *rules.get("common", [])]),
            terms=tuple(terms.items()),
        )
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise RulesError(f"The discrepancy rules in {path} cannot be read ({exc}).") from exc
    except re.error as exc:
        raise RulesError(
            f"A pattern in {path} ({key}) is not a valid regular expression: {exc}."
        ) from exc
