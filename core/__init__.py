"""The vocabulary every layer shares: errors, ids and times, statuses and who may change them, metrics."""
