"""Whether a mail reports a discrepancy, and the words that say so.

The rules of the languages whose common words a mail uses run on it (all of them when it uses
almost none). What the writer quoted is removed first: '>' lines, and everything after the
first reply or forward header of any language. Whole phrases match as they stand; problem
words ("twice", "never credited") only near a topic (a figure, a thing, a sum).
A match counts unless, in its language, it is denied ("no discrepancies"), hypothetical
("if my balance is wrong"), part of a question about the procedure ("how do I report …"),
or undone later in the mail ("… all good now", "my mistake"). Typos are repaired only when
the mail as written matches nothing. The subject counts only when the body supports it.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

from db.maintenance.wording import language
from db.maintenance.wording.language import Language
from db.maintenance.wording.text import Folded, blank, fold, repaired

MAX_CHARS = 20_000  # read for reply headers; beyond, signatures, disclaimers and quotes
OWN_CHARS = 3_000  # of the writer's own words judged: a report is written at the top
FEW_WORDS = 40  # from this many words on, a language must score a third of the best to run
TOPIC_CHARS = 90  # how far from a problem word its topic may stand (see _near)
DISOWNED_CHARS = 250  # how far before "I never changed it" the changed item may be named
NEGATION_WINDOW = 5  # words before a match that may deny it ("I don't see any missing …")
_WORDS = re.compile(r"[\w']+")
_SENTENCE_END = re.compile(r"[!?\n]|\.(?!\d)")
_SUBJECT_PREFIX = re.compile(r"^\s*(?:(?:re|aw|wg|fw|fwd|tr|rv|r|i|antw|doorst|sv|vs)\s*:\s*)+")
_QUOTED = re.compile(r"^[ \t]*>.*$", re.MULTILINE)
_SPACE = re.compile(r"\s+")
_PUNCTUATION = re.compile(r"[,.;:!?\n]")


@dataclass(frozen=True)
class Finding:
    """Why a mail counts as a discrepancy report: the matched words as written (at most
    PHRASE_CHARS), the language of the rules that matched (ISO 639-1 code), and whether they
    stand in the body or in the subject (which counts only with the body's support). When the
    classifier found it (`wording.judge`): the sentence it scored highest, the language the
    mail seems to be in, and its probability. `cue` is what kind of rule matched: "phrase" (a
    built-in pattern), "near" (a problem word near its topic, the looser kind), "disowned"
    (personal data, then "I never changed it"), "configured" (the settings' own
    `vocabulary_extra`), or "model"."""

    phrase: str
    language: str
    where: str = "body"
    probability: float | None = None  # set when the model, not a rule, found it
    cue: str = "phrase"


PHRASE_CHARS = 120


@dataclass(frozen=True)
class Extra:
    """A configured pattern: for one language's rules, or for the language the mail seems
    to be in (`code` "")."""

    code: str
    pattern: re.Pattern[str]


class Rules:
    """The rules of every language plus configured patterns; built once per settings."""

    def __init__(
        self,
        languages: tuple[Language, ...],
        extras: tuple[Extra, ...] = (),
        boilerplate: tuple[str, ...] = (),
        replace: bool = False,
    ) -> None:
        self.languages = languages
        self.extras = extras
        self.replace = replace  # configured patterns stand instead of the built-in ones
        self.by_code = {lang.code: lang for lang in languages}
        self.boilerplate = tuple(_SPACE.sub(" ", fold(s).text).strip() for s in boilerplate)
        self.headers = re.compile(
            "|".join(f"(?:{h})" for lang in languages for h in lang.reply_headers), re.MULTILINE
        )
        self.void = re.compile("|".join(f"(?:{v})" for lang in languages for v in lang.void_after))
        self.procedure = re.compile(
            "|".join(f"(?:{p})" for lang in languages for p in lang.procedure)
        )
        self.support = re.compile("|".join(f"(?:{lang.support})" for lang in languages))
        self.negators = frozenset().union(*(lang.negators for lang in languages))
        self.configured = frozenset(e.pattern for e in extras)

    @cached_property
    def _plan(self) -> tuple[tuple[Language, re.Pattern[str]], ...]:
        """The patterns in the order they are tried: the configured ones of a language first
        (the settings' words say what counts, and the model never overrules them: judge.py),
        then the built-in ones."""
        built_in = (
            ()
            if self.replace
            else tuple((lang, p) for lang in self.languages for p in lang.patterns)
        )
        configured = tuple(
            (self.by_code[e.code], e.pattern) for e in self.extras if e.code in self.by_code
        )
        return configured + built_in

    def own_words(self, text: str) -> Folded:
        """`text` folded, without what the writer quoted (blanked, so offsets hold)."""
        folded = fold(text[:MAX_CHARS])
        header = self.headers.search(folded.text)
        end = min(header.start() if header else len(folded.text), OWN_CHARS)
        if end < len(folded.text):
            folded = Folded(folded.original, folded.text[:end], folded.origin)
        spans = [m.span() for m in _QUOTED.finditer(folded.text)]
        if self.boilerplate:
            start = 0
            for line in folded.text.split("\n"):
                flat = _SPACE.sub(" ", line)
                if any(b in flat for b in self.boilerplate):
                    spans.append((start, start + len(line)))
                start += len(line) + 1
        return blank(folded, spans)

    def _scores(self, text: str) -> tuple[list[int], int]:
        words = _WORDS.findall(text)
        scores = [
            sum(w in lang.common or w in lang.negators for w in words) for lang in self.languages
        ]
        return scores, len(words)

    def guess(self, text: str) -> Language:
        """The language whose common words and negators the text uses most (English on a
        tie): "Keine Abweichungen festgestellt." is German."""
        scores, _ = self._scores(text)
        return self.languages[scores.index(max(scores))]

    def candidates(self, text: str) -> tuple[Language, ...]:
        """The languages whose rules run on `text`: for a short text, all but those none of
        whose common words it uses while another's it uses twice; for a longer one, those
        scoring at least a third of the best (the rest cost time and find false friends:
        Italian "duplicat…" in English "duplicated trades")."""
        scores, count = self._scores(text)
        best = max(scores)
        if best < 2:
            return self.languages
        floor = max(1, best / 3) if count >= FEW_WORDS else 1
        return tuple(lang for lang, s in zip(self.languages, scores, strict=True) if s >= floor)

    def find(self, subject: str, body: str) -> Finding | None:
        """The first un-denied match in the writer's own words of `body`; else one in
        `subject` when the body supports it (names a thing or figure, or a sum, and takes
        nothing back). None when the mail reports no discrepancy."""
        mine = self.own_words(body)
        found = self._search(mine)
        if found is not None:
            return found
        # Repairs aim at the words of the language the mail seems to be in: an Italian
        # "errore" is no French "erroné" misspelt.
        lang = self.guess(mine.text)
        fixed = repaired(mine, lang.typo_targets, lang.known)
        if fixed is not None and (found := self._search(fixed, mine)) is not None:
            return found
        title = fold(_SUBJECT_PREFIX.sub("", subject))
        hit = self._search(title) or (
            self._search(fixed, title)
            if (fixed := repaired(title, lang.typo_targets, lang.known))
            else None
        )
        # A body asking how to report, or telling the writer's own slip ("I deleted the mail by
        # accident"), backs no subject up.
        if (
            hit is None
            or not self.support.search(mine.text)
            or self._voided(mine.text, 0)
            or self.procedure.search(mine.text)
        ):
            return None
        return Finding(hit.phrase, hit.language, "subject", cue=hit.cue)

    def _search(self, folded: Folded, written: Folded | None = None) -> Finding | None:
        """The first match in `folded` that counts. For a repaired text, `written` is the text
        as written: what settles a match (a procedure question, a retraction) is judged there,
        where a repair cannot have bent those words."""
        found = self._first(folded)
        if found is None:
            return None
        finding, start, end = found
        if written is None:
            return finding
        first = bisect.bisect_left(written.origin, folded.origin[start])
        last = bisect.bisect_right(written.origin, folded.origin[end - 1])
        return None if self.settled(written.text, first, last) else finding

    def _first(self, folded: Folded) -> tuple[Finding, int, int] | None:
        text = folded.text
        if not text.strip():
            return None
        guessed = self.guess(text)
        chosen = self.candidates(text)
        # Before the phrases: "the e-mail address is one I don't know … I never changed it"
        # also matches looser phrases, which the model may overrule; this kind it never does
        # (no false alarm in any batch, bench/discrepancy_model.py).
        if not self.replace and (found := self._disowned(folded, chosen)) is not None:
            return found
        plan = [(guessed, e.pattern) for e in self.extras if e.code not in self.by_code] + [
            (lang, p) for lang, p in self._plan if lang in chosen
        ]
        for lang, pattern in plan:
            for match in pattern.finditer(text):
                start, end = match.span()
                if start == end or self._denied(lang, text, start, end, guessed):
                    continue
                phrase = folded.written(start, end)[:PHRASE_CHARS]
                cue = "configured" if pattern in self.configured else "phrase"
                return Finding(phrase, lang.code, cue=cue), start, end
        if self.replace:
            return None
        for lang in chosen:
            if lang.topic is None:
                continue
            cues = [(p, False) for p in (lang.problems,) if p] + [
                (v, True) for v in (lang.vague,) if v
            ]
            for match, back in ((m, back) for cue, back in cues for m in cue.finditer(text)):
                start, end = match.span()
                topic = _near(lang, text, start, end, back)
                if start == end or topic is None or self._taken_back(text, start):
                    continue
                if self._denied(lang, text, start, end, guessed):
                    continue
                first, last = min(start, topic[0]), max(end, topic[1])
                phrase = folded.written(first, last)[:PHRASE_CHARS]
                return Finding(phrase, lang.code, cue="near"), first, last
        return None

    def _disowned(
        self, folded: Folded, chosen: tuple[Language, ...]
    ) -> tuple[Finding, int, int] | None:
        """The first personal data item (`records`) followed, within DISOWNED_CHARS or in the
        same sentence, by the writer disowning its change ("… isn't mine. I've never changed
        it"), neither hypothetical nor settled. Negators do not deny it: it is a negation."""
        text = folded.text
        for lang in chosen:
            if lang.disowned is None or lang.records is None:
                continue
            for match in lang.disowned.finditer(text):
                start, end = match.span()
                sentence_end = _SENTENCE_END.search(text, end)
                stop = sentence_end.start() if sentence_end else len(text)
                items = list(lang.records.finditer(text, max(0, start - DISOWNED_CHARS), stop))
                if not items or self.settled(text, start, end):
                    continue
                if self._hypothetical(lang, text, start, end):
                    continue
                item = items[-1] if items[-1].start() < start else items[0]
                first, last = min(start, item.start()), max(end, item.end())
                phrase = folded.written(first, last)[:PHRASE_CHARS]
                return Finding(phrase, lang.code, cue="disowned"), first, last
        return None

    def has_topic(
        self, text: str, start: int = 0, end: int | None = None, records: bool = False
    ) -> bool:
        """Whether text[start:end] (folded) names a figure, sum, thing or holding, or with
        `records` also personal data or a list, in one of the languages the whole `text` may
        be in (`candidates`)."""
        end = len(text) if end is None else end
        kinds = ("topic", "records") if records else ("topic",)
        return any(
            (pattern := getattr(lang, kind)) is not None and pattern.search(text, start, end)
            for lang in self.candidates(text)
            for kind in kinds
        )

    def settled(self, text: str, start: int, end: int) -> bool:
        """Whether the match's sentence asks how to report or tells of the writer's own slip,
        or something after it takes it back."""
        sentence_start = _last(_SENTENCE_END, text, start)
        sentence_end = _SENTENCE_END.search(text, end)
        sentence = text[sentence_start : sentence_end.end() if sentence_end else len(text)]
        return bool(self.procedure.search(sentence)) or self._voided(text, end)

    def _denied(
        self, lang: Language, text: str, start: int, end: int, guessed: Language | None = None
    ) -> bool:
        """Whether the match text[start:end] of `lang`'s rules is settled, hypothetical or
        negated. Negating words count in `lang` and in `guessed`, the language the mail seems
        to be in: Italian "anomalie" in a French mail is denied by the French "aucune"."""
        if self.settled(text, start, end) or self._hypothetical(lang, text, start, end):
            return True
        sentence_start = _last(_SENTENCE_END, text, start)
        clause_start = _last(lang.clause_break, text, start)
        cut = lang.clause_break.search(text, end, end + 40)
        stop = cut.start() if cut else min(len(text), end + 40)
        ignored = (
            [m.span() for m in lang.not_negating.finditer(text, sentence_start) if m.start() < stop]
            if lang.not_negating is not None
            else []
        )

        def kept(a: int, b: int) -> list[str]:
            return [
                m.group()
                for m in _WORDS.finditer(text, a, b)
                if not any(x <= m.start() < y for x, y in ignored)
            ]

        judges = (lang,) if guessed is None or guessed is lang else (lang, guessed)
        before = kept(clause_start, start)[-NEGATION_WINDOW:]
        if any(_negating(judge, w) for judge in judges for w in before):
            return True
        return any(w in lang.post_negators for w in kept(end, stop)[:2])

    def _hypothetical(self, lang: Language, text: str, start: int, end: int) -> bool:
        """Whether the clause of text[start:end] is hypothetical in `lang` ("if", "falls")."""
        clause_start = _last(lang.clause_break, text, start)
        # A hypothetical word may run into the match ("s'il manque"), but must begin before
        # it; the clause is cut out so that `^` means its start (Dutch "als" is "if" there).
        return lang.hypothetical is not None and any(
            m.start() < start - clause_start
            for m in lang.hypothetical.finditer(text[clause_start:end])
        )

    def _taken_back(self, text: str, at: int) -> bool:
        """Whether `at` lies inside words that take a report back ("mijn fout")."""
        return any(
            m.start() <= at < m.end() for m in self.void.finditer(text, max(0, at - 40), at + 40)
        )

    def _voided(self, text: str, after: int) -> bool:
        """Whether something after `after` takes the report back or says it is resolved
        (itself not denied: "it's not fixed" voids nothing)."""
        return self._last_void(text) >= after

    @lru_cache(maxsize=4)  # noqa: B019 - one Rules per settings, kept for the process
    def _last_void(self, text: str) -> int:
        """Where the last undenied retraction or resolution in `text` starts; -1 if none."""
        last = -1
        for match in self.void.finditer(text):
            # Only a negation in the same stretch of words: "No, my mistake" takes it back.
            before = _PUNCTUATION.split(text[max(0, match.start() - 30) : match.start()])[-1]
            before = _WORDS.findall(before)[-2:]
            if not any(w in self.negators or w.endswith("n't") for w in before):
                last = match.start()
        return last


def _near(
    lang: Language, text: str, start: int, end: int, back: bool = False
) -> tuple[int, int] | None:
    """The span of the topic match nearest to text[start:end] between the same "and", "but"
    or sentence ends ("three times the wrong password and my account is locked" names no
    account problem), within TOPIC_CHARS; with `back`, else the nearest in the TOPIC_CHARS
    before; or None."""
    assert lang.topic is not None
    low = max(_last(lang.topic_break, text, start), start - TOPIC_CHARS)
    stop = lang.topic_break.search(text, end)
    high = min(stop.start() if stop else len(text), end + TOPIC_CHARS)
    topic = lang.topic
    spans = [m.span() for m in topic.finditer(text, low, high)]
    if not spans and back:
        # "My positions are all in profit. Something's wrong there.": the sentence before.
        spans = [m.span() for m in topic.finditer(text, max(0, low - TOPIC_CHARS), low)]
    if not spans:
        return None
    return min(spans, key=lambda s: max(start - s[1], s[0] - end, 0))


def _negating(lang: Language, word: str) -> bool:
    return (
        word in lang.negators
        or word.endswith(lang.negator_suffixes or ("\0",))
        or word.startswith(lang.negator_prefixes or ("\0",))
    )


def _last(pattern: re.Pattern[str], text: str, before: int) -> int:
    """The end of the last match of `pattern` in text[:before] (looking back 400 characters)."""
    start = max(0, before - 400)
    end = start
    for match in pattern.finditer(text, start, before):
        end = match.end()
    return end


def rules(
    extras: tuple[tuple[str, str], ...] = (),
    boilerplate: tuple[str, ...] = (),
    replace: bool = False,
) -> Rules:
    """Rules of every language in `language.CODES` plus `extras`, (code or "", pattern)
    pairs. Raises RulesError for a data file or pattern that cannot be used."""
    languages = tuple(language.load(code) for code in language.CODES)
    by_code = {lang.code: lang for lang in languages}
    compiled = []
    for code, pattern in extras:
        terms = dict(by_code[code].terms) if code in by_code else dict(language.BUILT_IN)
        try:
            compiled.append(
                Extra(code, re.compile(language.fill(fold_pattern(pattern), terms), re.IGNORECASE))
            )
        except re.error as exc:
            raise language.RulesError(
                f"The configured discrepancy pattern {pattern!r} is not a valid regular "
                f"expression ({exc}); fix it in [maintenance] of the config file."
            ) from exc
    return Rules(languages, tuple(compiled), boilerplate, replace)


def fold_pattern(pattern: str) -> str:
    """A configured pattern's non-ASCII letters folded as mail text is (ü as ue, é as e);
    its ASCII, escapes included, left as written."""
    return "".join(c if c.isascii() else fold(c).text for c in pattern)
