"""The desk's data: schema, store API, rules about the data, and configuration.

The only package that speaks SQL. `ingest/` and `tui/` call the functions here and
meet nowhere else.

Five wings, each importing only those below it (`make lint` checks the order):

- `tickets`: what agents do with tickets: the list and search, one ticket, merge and split,
  replies, stats;
- `mailin`: storing incoming mail once, threading, bounces, acknowledgements, re-reading;
- `maintenance`: windows, their notices, the discrepancy rule, reports, what is in force;
- `mailout`: building mails, the outbox, notice subscribers;
- `core`: connection and migrations, configuration, clock, errors, audit trail, mailboxes.
"""
