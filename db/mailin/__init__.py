"""The mail-in wing: what `ingest/` hands over, stored exactly once and threaded into tickets.

The parsed message as plain data (`model`), threading, storing, bounces and read receipts of
our own mail, acknowledgements, re-reading stored mail with a newer parser, the health and
checkpoints of each source, and the inline parts and invitations the parser renders. Storing
a batch applies the discrepancy rule to the tickets it touched and queues acknowledgements in
the same transaction, so this wing imports `db.core`, `db.mailout` and `db.maintenance`, never
the tickets wing.
"""
