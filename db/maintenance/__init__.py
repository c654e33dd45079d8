"""The maintenance wing: windows and their notices, the discrepancy rule, reports, and what is
in force now.

What a window is (`window_model`) and the settings the rule classifies mail with
(`rule_settings`) sit at its bottom; `notices` words and records notices and queues their mail,
`discrepancy` judges tickets around a window, `overlap` finds windows that share time,
`windows` changes windows and calls them, and `recurrence`, `notice_schedule`, `updates`
(progress updates), `reports`, `marking` (an agent's mark, after the ended reports are frozen)
and `in_force` work on top. It imports `db.core` and
`db.mailout`, never the mail-in or tickets wings.
"""
