"""The core wing: what every other wing stands on.

The connection and its one-writer lock, the schema and its migrations, the clock, the error
tree, the configuration, the ticket audit trail (`events`) and the syntax of mailboxes. It
imports no other wing of `db/`; every other wing may import it.
"""
