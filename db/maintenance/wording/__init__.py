"""How customers word a discrepancy report, in English, German, French, Spanish, Italian and
Dutch: a rule set per language in data files (`en.toml` …) and the matcher that applies them.

`find.rules()` builds the rules once; `Rules.find(subject, body)` gives a `Finding` (the words
that matched, as written, and their language) or None.
"""
