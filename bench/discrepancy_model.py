"""The classifier behind the discrepancy rules: trains the shipped model and measures the
hybrid (rules, then the classifier) honestly, on batches left out of its training.

Batches are the corpus folders: the top-level `tests/fixtures/discrepancy/*.jsonl`, `dev2/` and
`heldout/` (each a different round or writer). Leave-one-batch-out trains on all but one and
scores the one left out: rules alone, classifier alone, hybrid. The rules were tuned on every
batch in the folder, so on these their figure is flattering; only a batch nobody tuned on
(`--test=DIR`, scored by a model trained on the shipped batches) compares them fairly.

Run (build time; needs scikit-learn from the `test` extra):
- `python -m bench discrepancy_model` leave-one-batch-out figures;
- `python -m bench discrepancy_model --test=DIR` rules vs hybrid on an unseen folder;
- `python -m bench discrepancy_model --train` writes db/maintenance/wording/model.json.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from bench.discrepancy import CORPUS, body_of, corpus
from db.maintenance import discrepancy
from db.maintenance.rule_settings import Settings
from db.maintenance.wording import model as shipped
from db.maintenance.wording.judge import judge

# The batches the shipped model learns from; a new batch is measured with --test first.
BATCHES = {"top-level": CORPUS, "dev2": CORPUS / "dev2", "heldout": CORPUS / "heldout"}
C = 10.0  # inverse regularisation: scikit-learn's default 1.0 underfits sparse TF-IDF
MIN_DF = 2  # n-grams of a single mail say more about that mail than about reports
PRECISION_FLOOR = 0.99  # the threshold is the lowest whose cross-validated precision holds this
RULES = discrepancy.vocabulary(Settings())


def own_words(mail: dict[str, Any]) -> str:
    """The folded text the classifier reads: the body as ingest stores it, quotes blanked."""
    return RULES.own_words(body_of(mail)).text


def corpus_sha256(folders: list[Path]) -> str:
    """SHA-256 over the `*.jsonl` files of `folders` (names and bytes, in order)."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(folder.glob("*.jsonl")):
            digest.update(f"{folder.name}/{path.name}\n".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def fit(texts: list[str], labels: list[bool]) -> tuple[Any, Any]:
    """A TfidfVectorizer over `model.features` and a LogisticRegression fitted on them."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(analyzer=shipped.features, sublinear_tf=True, min_df=MIN_DF)
    x = vectorizer.fit_transform(texts)
    classifier = LogisticRegression(C=C, class_weight="balanced", max_iter=5000)
    classifier.fit(x, labels)
    return vectorizer, classifier


def _threshold(texts: list[str], labels: list[bool]) -> float:
    """The lowest probability threshold (0.50 to 0.99) at which the classifier alone keeps
    precision PRECISION_FLOOR on 5-fold cross-validated probabilities of the training mails.
    The classifier alone, not the hybrid: the rules were tuned on every training mail, so
    their misses there say nothing about the misses it must make up for."""
    from sklearn.model_selection import StratifiedKFold

    probability = [0.0] * len(texts)
    for train, test in StratifiedKFold(5, shuffle=True, random_state=14).split(texts, labels):
        vectorizer, classifier = fit([texts[i] for i in train], [labels[i] for i in train])
        scores = classifier.predict_proba(vectorizer.transform([texts[i] for i in test]))[:, 1]
        for i, p in zip(test, scores, strict=True):
            probability[i] = float(p)
    for step in range(50, 100):
        t = step / 100
        said = [p >= t for p in probability]
        tp = sum(s and y for s, y in zip(said, labels, strict=True))
        if tp / max(1, sum(said)) >= PRECISION_FLOOR:
            return t
    return 0.99


def as_model(vectorizer: Any, classifier: Any, threshold: float, sha256: str) -> shipped.Model:
    """A fitted TfidfVectorizer and LogisticRegression as the plain-Python Model."""
    coefficients = classifier.coef_[0]
    return shipped.Model(
        weights={
            gram: (float(vectorizer.idf_[i]), float(coefficients[i]))
            for gram, i in vectorizer.vocabulary_.items()
        },
        intercept=float(classifier.intercept_[0]),
        threshold=threshold,
        corpus_sha256=sha256,
    )


def train(mails: list[dict[str, Any]], folders: list[Path]) -> shipped.Model:
    """The model fitted on `mails` (from `folders`), its threshold cross-validated."""
    texts = [own_words(m) for m in mails]
    labels = [bool(m["report"]) for m in mails]
    vectorizer, classifier = fit(texts, labels)
    return as_model(vectorizer, classifier, _threshold(texts, labels), corpus_sha256(folders))


def save(model: shipped.Model, path: Path = shipped.MODEL) -> None:
    """`model` as compact JSON (n-grams sorted, 6 significant digits)."""
    data = {
        "corpus_sha256": model.corpus_sha256,
        "intercept": round(model.intercept, 6),
        "threshold": model.threshold,
        "weights": [
            [g, float(f"{idf:.6g}"), float(f"{coef:.6g}")]
            for g, (idf, coef) in sorted(model.weights.items())
        ],
    }
    path.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n")


def figures(mails: list[dict[str, Any]], model: shipped.Model) -> dict[str, tuple[int, int, int]]:
    """(found, missed, wrongly flagged) for rules alone, classifier alone and the hybrid."""
    counts = {"rules": [0, 0, 0], "classifier": [0, 0, 0], "hybrid": [0, 0, 0]}
    for mail in mails:
        body = body_of(mail)
        verdicts = {
            "rules": RULES.find(mail["subject"], body) is not None,
            "classifier": model.probability(RULES.own_words(body).text) >= model.threshold,
            "hybrid": judge(RULES, mail["subject"], body, model) is not None,
        }
        for name, said in verdicts.items():
            row = counts[name]
            if said and mail["report"]:
                row[0] += 1
            elif mail["report"]:
                row[1] += 1
            elif said:
                row[2] += 1
    return {name: (tp, fn, fp) for name, (tp, fn, fp) in counts.items()}


def report(title: str, mails: list[dict[str, Any]], model: shipped.Model) -> None:
    print(f"\n{title}: {len(mails)} mails, threshold {model.threshold:.2f}")
    for name, (tp, fn, fp) in figures(mails, model).items():
        recall = tp / max(1, tp + fn)
        precision = tp / max(1, tp + fp)
        print(
            f"  {name:10} recall {recall:6.1%} ({tp}/{tp + fn})  "
            f"precision {precision:6.1%} ({tp}/{tp + fp})"
        )


def main(options: list[str]) -> None:
    batches = {name: corpus(folder) for name, folder in BATCHES.items()}
    if "--train" in options:
        model = train([m for ms in batches.values() for m in ms], list(BATCHES.values()))
        save(model)
        print(f"wrote {shipped.MODEL} ({len(model.weights)} n-grams, t={model.threshold})")
        return
    tests = [Path(o.split("=", 1)[1]) for o in options if o.startswith("--test=")]
    if tests:
        model = shipped.load()
        if model.corpus_sha256 != corpus_sha256(list(BATCHES.values())):
            raise SystemExit("The model is stale; run `python -m bench discrepancy_model --train`.")
        for folder in tests:
            report(f"unseen {folder}", corpus(folder), model)
        return
    for name in batches:
        rest = [m for other, ms in batches.items() if other != name for m in ms]
        model = train(rest, [f for other, f in BATCHES.items() if other != name])
        report(f"left out {name}", batches[name], model)
