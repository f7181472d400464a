"""Side effects on the ticket service, each sent with its idempotency key."""
