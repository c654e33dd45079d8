"""The tickets wing: what agents do with tickets, the top of `db/`.

The ticket list a page at a time and search over it, one ticket with its thread, the agents'
changes, merging and splitting tickets, the customer's other tickets, replies (queued through
the outbox and put in the thread), the counts of `desk stats`, and noticing that the database
changed. It may import every other wing; none imports it.
"""
