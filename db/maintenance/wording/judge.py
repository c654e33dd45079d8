"""The verdict on one mail: the rules first, then the classifier for what they miss.

A mail is a discrepancy report when the rules find one (`find.Rules.find`); else when the
classifier (`model.py`) gives the writer's own words a probability at or above the threshold
chosen by cross-validation at build time, the writer's words name something a report could be
about in the sentence it scores highest (a figure, a sum, a transaction, a holding: the rules'
`topic` of a language the mail may be in; "My deadline is Friday." in a press enquiry names
none), and the rules' traps do not veto
the sentence it scores highest: quoted and forwarded text is gone before it looks, and a
procedure question in that sentence, or a retraction or resolution after it, settles the mail
as no report.
"""

from __future__ import annotations

from db.maintenance.wording.find import PHRASE_CHARS, Finding, Rules
from db.maintenance.wording.model import Model, load


def judge(rules: Rules, subject: str, body: str, model: Model | None = None) -> Finding | None:
    """The Finding of the rules or, failing them, of the classifier (`model`, the shipped one
    by default): the sentence it scored highest as written, the language `rules` guess for the
    mail, and the probability rounded to two places. None when the mail reports nothing. Rules
    whose configured `vocabulary` replaces the built-in patterns replace the classifier too."""
    found = rules.find(subject, body)
    if found is not None or rules.replace:  # configured patterns alone: they say what counts
        return found
    model = model or load()
    mine = rules.own_words(body)
    p = model.probability(mine.text)
    if p < model.threshold:
        return None
    start, end, _ = model.strongest(mine.text)
    if end == start or rules.settled(mine.text, start, end):
        return None
    if not rules.has_topic(mine.text, start, end):  # "My deadline is Friday.": no report's
        return None
    phrase = mine.written(start, end)[:PHRASE_CHARS]
    return Finding(phrase, rules.guess(mine.text).code, "body", round(p, 2))
