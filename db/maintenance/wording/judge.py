"""The verdict on one mail: the rules first, then the classifier for what they miss.

A mail is a discrepancy report when the rules find one (`find.Rules.find`) and the classifier
does not overrule it (a probability under the model's `veto` for that kind of rule: a built-in
phrase or a problem word near its topic; the settings' own words are never overruled; the
values were measured leave-one-batch-out, see bench/discrepancy_model.py); else when the
classifier (`model.py`) gives the writer's own words a probability at or above the threshold
chosen by cross-validation at build time, the writer's words name something a report could be
about in the sentence it scores highest (a figure, a sum, a transaction, a holding: the rules'
`topic` of a language the mail may be in, or personal data or a list: its `records`, "my
surname", "the history"; "My deadline is Friday." in a press enquiry names none), and the
rules' traps do not veto
the sentence it scores highest: quoted and forwarded text is gone before it looks, and a
procedure question in that sentence, or a retraction or resolution after it, settles the mail
as no report.
"""

from __future__ import annotations

from db.maintenance.wording.find import PHRASE_CHARS, Finding, Rules
from db.maintenance.wording.model import Model, load


def judge(rules: Rules, subject: str, body: str, model: Model | None = None) -> Finding | None:
    """The Finding of the rules, unless the classifier (`model`, the shipped one by default)
    overrules it; failing them, the classifier's: the sentence it scored highest as written,
    the language `rules` guess for the mail, and the probability rounded to two places. None
    when the mail reports nothing. Rules whose configured `vocabulary` replaces the built-in
    patterns replace the classifier too."""
    found = rules.find(subject, body)
    if rules.replace:  # configured patterns alone: they say what counts
        return found
    model = model or load()
    mine = rules.own_words(body)
    p = model.probability(mine.text)
    if found is not None:
        # A second opinion: "Last time my balance was wrong, this time all fine" matches a
        # rule, yet reads like the corpus's resolved mails, not like its reports.
        return None if p < model.veto.get(found.cue, 0.0) else found
    if p < model.threshold:
        return None
    start, end, _ = model.strongest(mine.text)
    if end == start or rules.settled(mine.text, start, end):
        return None
    # "My deadline is Friday." names nothing a report could be about; "my surname now reads
    # Schmid" names personal data, which the rules' topics leave out.
    if not rules.has_topic(mine.text, start, end, records=True):
        return None
    phrase = mine.written(start, end)[:PHRASE_CHARS]
    return Finding(phrase, rules.guess(mine.text).code, "body", round(p, 2), "model")
