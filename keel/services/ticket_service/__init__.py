"""A ticket service to act on: an HTTP API with its own SQLite database.

It stands for the external systems agents change (ticketing, payments, messaging)
and, like payment APIs, honours an `Idempotency-Key` header: a repeated key returns
the first result and changes nothing.
"""
