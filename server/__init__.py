"""The composition root: make_app(), start and stop, and the CLI (run, seed-admin, eta-replay).
It assembles every layer; nothing imports it."""
