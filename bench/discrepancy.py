"""Discrepancy reports found in six languages: recall and precision per language on the
labelled corpus in tests/fixtures/discrepancy/ (one JSON line per mail: text or html,
language, whether it is a report, why, and its split), and the time a mail takes: the rules,
then the classifier for what they miss (`db.maintenance.wording.judge`).

HTML-only mails go through the ingest parser first, as the daemon reads them. Splits:
`dev` was tuned on; `holdout`, `holdout2` and `holdout3` were written before tuning and first
measured unseen (see tests/fixtures/discrepancy/README.md for what each measured then).

Run: `python -m bench discrepancy` (prints every mail judged wrongly, then the figures);
`--corpus=DIR` measures the `*.jsonl` files of another folder instead, such as the independent
held-out batch in tests/fixtures/discrepancy/heldout/ (written without seeing the rules).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from email.mime.text import MIMEText
from pathlib import Path
from typing import Any

from db.maintenance import discrepancy
from db.maintenance.rule_settings import Settings
from db.maintenance.wording.find import Rules
from db.maintenance.wording.judge import judge
from ingest.parse import parse

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "discrepancy"


def corpus(folder: Path = CORPUS) -> list[dict[str, Any]]:
    """Every labelled mail of `folder` (its `*.jsonl` files), language by language."""
    mails = []
    for path in sorted(folder.glob("*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            mails.extend(json.loads(line) for line in lines if line.strip())
    return mails


def body_of(mail: dict[str, Any]) -> str:
    """The body text as ingest stores it: an HTML-only mail is parsed as the daemon would."""
    if "html" not in mail:
        return mail["text"]
    part = MIMEText(mail["html"], "html", "utf-8")
    part["Subject"] = mail["subject"]
    return parse(part.as_bytes()).body_text


@dataclass
class Score:
    """Counts of one language (or all): true and false positives, false negatives."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    wrong: list[dict[str, Any]] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    def add(self, mail: dict[str, Any], flagged: bool) -> None:
        """Counts `mail` as judged (`flagged`: said to be a report); keeps it when wrong."""
        if flagged and mail["report"]:
            self.tp += 1
        elif flagged:
            self.fp += 1
            self.wrong.append(mail)
        elif mail["report"]:
            self.fn += 1
            self.wrong.append(mail)
        else:
            self.tn += 1

    def merge(self, other: Score) -> None:
        """Adds `other`'s counts and wrong mails to these."""
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.tn += other.tn
        self.wrong.extend(other.wrong)

    def __str__(self) -> str:
        return f"{self.tp} found, {self.fn} missed, {self.fp} wrongly flagged, {self.tn} left"


def score(mails: list[dict[str, Any]], rules: Rules) -> dict[str, Score]:
    """Scores per language code and under "all"."""
    scores: dict[str, Score] = {}
    for mail in mails:
        said = judge(rules, mail["subject"], body_of(mail)) is not None
        for key in (mail["language"], "all"):
            scores.setdefault(key, Score()).add(mail, said)
    return {k: scores[k] for k in sorted(scores, key=lambda k: (k == "all", k))}


def main(options: list[str]) -> None:
    rules = discrepancy.vocabulary(Settings())
    # `=` form because bench/__main__.py takes every bare argument for a module name.
    folders = [Path(o.split("=", 1)[1]) for o in options if o.startswith("--corpus=")]
    mails = corpus(folders[-1] if folders else CORPUS)
    if not mails:
        raise SystemExit(f"No labelled mails (*.jsonl) in {folders[-1]}; name a corpus folder.")
    splits = sorted({m["split"] for m in mails})
    for split in [None, *splits]:
        chosen = [m for m in mails if split is None or m["split"] == split]
        figures = score(chosen, rules)
        print(f"\n{split or 'whole corpus'}: {len(chosen)} mails")
        if split is None:
            for mail in figures["all"].wrong:
                kind = "missed" if mail["report"] else "wrongly flagged"
                print(f"  {kind}: {mail['id']} ({mail['why']})")
        for code, row in figures.items():
            print(f"  {code:4} recall {row.recall:6.1%}  precision {row.precision:6.1%}  {row}")
    bodies = [(m["subject"], body_of(m)) for m in mails]
    rounds = 20
    started = time.perf_counter()
    for _ in range(rounds):
        for subject, body in bodies:
            judge(rules, subject, body)
    per_mail = (time.perf_counter() - started) / (rounds * len(bodies)) * 1000
    print(f"\n{per_mail:.3f} ms per mail (mean of {rounds} passes over {len(bodies)} mails)")
