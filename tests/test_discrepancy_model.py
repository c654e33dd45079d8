"""The classifier behind the discrepancy rules: the shipped model is the one the whole corpus
makes, scores as scikit-learn does, lifts recall and precision on a batch left out of its
training that no rule was tuned on, overrules a rule's hit it finds unlikely, lets the traps
decide, shows its sentence and probability on the ticket, and stays out of the daemon's start."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

from bench.discrepancy import CORPUS, body_of, corpus
from bench.discrepancy_model import (
    BATCHES,
    RULES,
    RULES_UNSEEN,
    corpus_sha256,
    figures,
    own_words,
    train,
)
from db.maintenance import discrepancy
from db.maintenance.rule_settings import Settings
from db.maintenance.wording import model
from db.maintenance.wording.judge import judge

MODEL = model.load()


def test_the_shipped_model_was_trained_on_the_corpus_as_it_is_now() -> None:
    # Stale after any edit of the training batches: `python -m bench discrepancy_model --train`.
    assert corpus_sha256(list(BATCHES.values())) == MODEL.corpus_sha256
    # Every batch of the corpus is training data, the held-out ones too (their README says so).
    folders = {p.parent for p in CORPUS.glob("**/*.jsonl")}
    assert folders == set(BATCHES.values())


def test_plain_python_scoring_is_scikit_learn_s() -> None:
    from bench.discrepancy_model import as_model, fit

    mails = corpus(CORPUS / "heldout")
    texts = [own_words(m) for m in mails]
    vectorizer, classifier = fit(texts[:200], [m["report"] for m in mails[:200]])
    ours = as_model(vectorizer, classifier, 0.5, "")
    theirs = classifier.predict_proba(vectorizer.transform(texts[200:]))[:, 1]
    pairs = zip(texts[200:], theirs, strict=True)
    assert all(abs(ours.probability(t) - p) < 1e-9 for t, p in pairs)


def test_on_a_batch_left_out_of_training_the_hybrid_beats_the_rules() -> None:
    # tests/fixtures/discrepancy/heldout3: 216 mails by another engineer that no rule was tuned
    # on, left out of this model's training (`python -m bench discrepancy_model --cross-batch`).
    # Short of the issue's 90 % / 95 %: the rules alone find 63.7 % at 79.3 % precision.
    assert "heldout3" in RULES_UNSEEN
    left_out = corpus(BATCHES["heldout3"])
    rest = [m for name, f in BATCHES.items() if name != "heldout3" for m in corpus(f)]
    found = figures(left_out, train(rest, []))
    rules = found["rules"]["all"]
    hybrid = found["hybrid"]["all"]
    assert (94, 8, 6) == (hybrid.tp, hybrid.fn, hybrid.fp)
    assert hybrid.recall > rules.recall and hybrid.precision > rules.precision


def test_on_a_batch_nobody_tuned_or_trained_on_it_meets_the_issue_s_figures() -> None:
    # tests/fixtures/discrepancy-unseen/heldout6: 216 mails another engineer wrote blind, kept
    # out of the corpus; its README has the figures and what to do once it is tuned on.
    unseen = corpus(CORPUS.parent / "discrepancy-unseen" / "heldout6")
    hybrid = figures(unseen, MODEL)["hybrid"]["all"]
    assert (94, 8, 1) == (hybrid.tp, hybrid.fn, hybrid.fp)
    assert hybrid.recall >= 0.90 and hybrid.precision >= 0.95


def test_the_model_overrules_a_rule_that_matches_a_settled_story_but_not_configured_words() -> None:
    # "went missing" matches a rule; the rest reads like the corpus's past-and-resolved mails.
    story = (
        "Last time you did maintenance a deposit {} for a day; this time it all went fine, thanks."
    )
    body = story.format("went missing")
    found = RULES.find("", body)
    assert found is not None and "phrase" == found.cue
    assert MODEL.probability(RULES.own_words(body).text) < MODEL.veto["phrase"]
    assert judge(RULES, "", body) is None
    # The settings' own words say what counts: even a model that overrules every built-in rule
    # leaves them standing.
    never = dataclasses.replace(MODEL, veto={"phrase": 1.0, "near": 1.0})
    configured = discrepancy.vocabulary(Settings(vocabulary_extra=(r"\bzapped\b",)))
    assert judge(configured, "", "My balance is 200 euros short since the update.", never) is None
    assert "configured" == judge(configured, "", story.format("got zapped"), never).cue


def test_the_traps_decide_even_when_the_model_is_sure() -> None:
    always = model.Model(MODEL.weights, MODEL.intercept, 0.0, MODEL.corpus_sha256)
    said = "My balance is 200 euros short since the update"
    assert judge(RULES, "", f"{said}, please check.", always) is not None
    for body in (
        f"How do I report it when {said.lower()}?",  # a procedure question
        f"{said}. Sorry, my mistake, all good now.",  # taken back
    ):
        assert judge(RULES, "", body, always) is None, body
    thanks = "Thanks for the statement!"
    for body in (f"{thanks}\n\n> {said}.", f"{thanks}\n\nOn Mon, 1 Jun 2026, Ann wrote:\n{said}."):
        # Quoted text is gone before the model reads: even at threshold 0 it sees only thanks.
        assert thanks == judge(RULES, "", body, always).phrase
        assert judge(RULES, "", body) is None


def test_a_model_finding_shows_its_sentence_probability_and_language() -> None:
    missed = [
        m
        for m in corpus(CORPUS / "heldout2")
        if m["report"] and RULES.find(m["subject"], body_of(m)) is None
    ]
    found = [(m, judge(RULES, m["subject"], body_of(m))) for m in missed]
    mail, finding = next((m, f) for m, f in found if f is not None)
    assert finding.probability is not None and finding.probability >= MODEL.threshold
    assert finding.phrase in " ".join(body_of(mail).split())
    assert mail["language"] == finding.language
    reason = json.dumps(
        {"phrase": "Saldo klopt niet", "language": "nl", "where": "body", "probability": 0.93}
    )
    assert 'Dutch: "Saldo klopt niet" (model, p=0.93)' == discrepancy.reason(reason)


def test_the_daemon_starts_without_scikit_learn_or_the_model() -> None:
    # scikit-learn is for building the model; the 0.8 MB model loads at the first judgement.
    code = (
        "import sys, ingest.daemon; from db.maintenance.wording import model; "
        "print(any(m.split('.')[0] == 'sklearn' for m in sys.modules), "
        "model.load.cache_info().currsize)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "False 0" == out.stdout.strip()


def test_the_model_flags_only_a_sentence_that_names_what_a_report_is_about() -> None:
    # The demo's press enquiry: the model is sure of "My deadline is Friday." (p > 0.9).
    body = (
        "I am writing a feature on tokenisation platforms for a trade magazine and would love a "
        "short\nquote from Valuit on how you handle investor onboarding. My deadline is Friday."
    )
    assert MODEL.probability(RULES.own_words(body).text) >= MODEL.threshold
    assert judge(RULES, "Press enquiry: tokenisation platforms feature", body) is None


def test_a_changed_name_or_address_is_a_report_but_a_request_to_change_it_is_not() -> None:
    # Personal data and lists ("records" in each language's file) count for the model's
    # sentence, and for the rules when the writer disowns the change ("I never changed it").
    changed = (
        "Hello,\nsince the update my profile shows my surname as Schmid instead of Schmidt. "
        "I never changed it.\nRegards, Anna"
    )
    finding = judge(RULES, "", changed)
    assert finding is not None and "disowned" == finding.cue
    assert "surname as Schmid instead of Schmidt" in finding.phrase
    told = changed.replace(" I never changed it.", "")
    assert RULES.find("", told) is None
    finding = judge(RULES, "", told)
    assert finding is not None and "model" == finding.cue
    request = "Hello,\nI have moved. Please change my address to 3 Mill Road, Oxford.\nAnna"
    assert judge(RULES, "", request) is None
