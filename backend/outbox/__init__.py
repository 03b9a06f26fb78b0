"""Delivering the outbox: notifications written with the change they report, sent by a worker after commit.

``notifications`` says what each outbox kind tells whom; ``worker`` claims, sends and
records; ``cli`` is ``flask outbox run|status|dead|retry``.
"""
