"""Socket transport: the `/ws` handler, the rooms (hub) actors publish into, each socket's coalescing
outbox, and the frame writer. Above the domain (it calls the same workflows as the handlers), below
the composition root."""
