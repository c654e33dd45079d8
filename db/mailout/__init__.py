"""The mail-out wing: building the mails the desk sends, the outbox that queues them, and the
subscribers maintenance notices go to.

Any wing above may queue a mail here inside its own transaction (an acknowledgement, a notice,
an agent's reply); the daemon's sender drains the outbox. It imports only `db.core`.
"""
