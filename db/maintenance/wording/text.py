"""Mail text folded for matching (lower case, accents off, German umlauts as `ae`/`oe`/`ue`),
with a map back to the characters as written, so a matched phrase is shown as the writer typed it.

Typos are repaired on a second copy (`repaired`), word by word, towards the words the rules
care about; the map still points at the words as written.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import OSA

# German writers without umlaut keys type ae/oe/ue/ss; folding to those forms meets them there.
_SPECIAL = {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "\u2019": "'", "\u2018": "'", "`": "'",
            "\u00b4": "'", "\u00a0": " ", "\u202f": " ", "\u2009": " "}  # fmt: skip
_WORD = re.compile(r"[^\W\d_]+")


@lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    lower = char.lower()
    if lower in _SPECIAL:
        return _SPECIAL[lower]
    if lower.isascii():
        return lower
    stripped = "".join(
        c for c in unicodedata.normalize("NFD", lower) if not unicodedata.combining(c)
    )
    return stripped or lower


@dataclass(frozen=True)
class Folded:
    """`text` folded; `origin[i]` is the index in the original of folded character i."""

    original: str
    text: str
    origin: tuple[int, ...]

    def written(self, start: int, end: int) -> str:
        """The original characters behind folded span [start, end), spaces collapsed."""
        if end <= start:
            return ""
        phrase = self.original[self.origin[start] : self.origin[end - 1] + 1]
        return " ".join(phrase.split())


def fold(text: str) -> Folded:
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        folded = _fold_char(char)
        chars.append(folded)
        origin.extend([index] * len(folded))
    return Folded(text, "".join(chars), tuple(origin))


def blank(folded: Folded, spans: list[tuple[int, int]]) -> Folded:
    """`folded` with the characters of `spans` turned into spaces (line breaks kept), so that
    offsets still hold."""
    if not spans:
        return folded
    chars = list(folded.text)
    for start, end in spans:
        for i in range(start, end):
            if chars[i] != "\n":
                chars[i] = " "
    return Folded(folded.original, "".join(chars), folded.origin)


@lru_cache(maxsize=16384)
def _nearest(word: str, targets: tuple[str, ...]) -> str | None:
    # One edit (a transposition counts as one: OSA) for short words, two from eight letters on.
    # Typing slips rarely hit the first letter, and so many real words are one letter away
    # from another ("banque", "manque") that keeping it avoids most false repairs.
    limit = 1 if len(word) < 8 else 2
    same_start = [t for t in targets if t[0] == word[0]]
    found = process.extractOne(word, same_start, scorer=OSA.distance, score_cutoff=limit)
    return found[0] if found else None


def repaired(folded: Folded, targets: tuple[str, ...], known: frozenset[str]) -> Folded | None:
    """`folded` with each word of four letters or more that is not in `known` and lies within
    one edit of a word in `targets` that starts with the same letter (two edits from eight
    letters on) replaced by it; None when no
    word changed. The map sends a replaced word's characters to the word as written."""
    chars: list[str] = []
    origin: list[int] = []
    last = 0
    changed = False
    text = folded.text
    for match in _WORD.finditer(text):
        word = match.group()
        if len(word) < 4 or word in known:
            continue
        target = _nearest(word, targets)
        if target is None or target == word:
            continue
        start, end = match.span()
        chars.append(text[last:start])
        origin.extend(folded.origin[last:start])
        chars.append(target)
        origin.extend(folded.origin[start + min(i, end - start - 1)] for i in range(len(target)))
        last = end
        changed = True
    if not changed:
        return None
    chars.append(text[last:])
    origin.extend(folded.origin[last:])
    return Folded(folded.original, "".join(chars), tuple(origin))
