"""Adapters to the real engines the domain uses: the store (MongoDB), the bus (Redis), token and
password hashing, rate limits, revocations, the HTTP edge limits and the log format. Nothing here
knows a workflow; the domain calls in, never the other way."""
