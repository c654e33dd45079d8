"""A small statistical classifier that backs the rules up: how likely a mail's own words are
a discrepancy report, and the sentence that says it most.

The model is a logistic regression over TF-IDF weights of character n-grams (2 to 5 letters,
inside word boundaries) and of words and word pairs, trained at build time on the labelled
corpus by `python -m bench discrepancy_model --train` (scikit-learn) and shipped as
`model.json`: per n-gram its IDF and coefficient, the intercept, the threshold chosen by
cross-validation, the probabilities under which it overrules a rule's hit (`veto`, per kind of
rule) and the SHA-256 of the corpus it was trained on. Scoring here is plain Python
(no scikit-learn, no NumPy at run time); `features` is the one definition of the n-grams, used
by the training too, so both see the same text the same way.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

MODEL = Path(__file__).resolve().parent / "model.json"
_WORD = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token pattern
_SPACE = re.compile(r"\s+")
_SENTENCE = re.compile(r"(?:[^.!?\n]|\.(?=\d))+[.!?]*")  # "4.120,55" ends no sentence
CHAR_N = (2, 5)


def features(text: str) -> list[str]:
    """The n-grams of folded `text` (lower case, accents off): every 2- to 5-letter piece of
    each word padded with one space (scikit-learn's "char_wb"), then "w:" + each word and
    word pair of two or more letters."""
    grams: list[str] = []
    for word in _SPACE.sub(" ", text).split():
        padded = f" {word} "
        for n in range(CHAR_N[0], CHAR_N[1] + 1):
            if n > len(padded):
                break
            grams.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    words = _WORD.findall(text)
    grams.extend(f"w:{w}" for w in words)
    grams.extend(f"w:{a} {b}" for a, b in zip(words, words[1:], strict=False))
    return grams


@dataclass(frozen=True)
class Model:
    """The shipped model: `weights[gram] = (idf, coefficient)`, the `intercept`, the
    `threshold` probability from which a mail counts, the corpus hash it was built from, and
    `veto[cue]`: the probability under which a rule's hit of that kind (`Finding.cue`) is
    overruled (none for a kind not named)."""

    weights: dict[str, tuple[float, float]]
    intercept: float
    threshold: float
    corpus_sha256: str
    veto: dict[str, float] = field(default_factory=dict)

    def probability(self, text: str) -> float:
        """The probability (0 to 1) that folded `text` reports a discrepancy: sublinear TF
        times IDF, L2-normalised, through the logistic function (as scikit-learn computes
        TfidfVectorizer(sublinear_tf=True) then LogisticRegression.predict_proba)."""
        squares = 0.0
        dot = 0.0
        for gram, count in Counter(features(text)).items():
            known = self.weights.get(gram)
            if known is None:
                continue
            value = (1.0 + math.log(count)) * known[0]
            squares += value * value
            dot += value * known[1]
        z = self.intercept + (dot / math.sqrt(squares) if squares else 0.0)
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def strongest(self, text: str) -> tuple[int, int, float]:
        """(start, end, probability) of the sentence of `text` the model scores highest;
        (0, 0, 0.0) for a text without words."""
        best = (0, 0, 0.0)
        for match in _SENTENCE.finditer(text):
            if not _WORD.search(match.group()):
                continue
            p = self.probability(match.group())
            if p > best[2]:
                best = (match.start(), match.end(), p)
        return best


@lru_cache(maxsize=1)
def load(path: Path = MODEL) -> Model:
    """The model in `path` (JSON written by the training). Raises OSError or ValueError for a
    missing or damaged file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return Model(
        weights={g: (idf, coef) for g, idf, coef in data["weights"]},
        intercept=float(data["intercept"]),
        threshold=float(data["threshold"]),
        corpus_sha256=data["corpus_sha256"],
        veto={cue: float(p) for cue, p in data["veto"].items()},
    )
