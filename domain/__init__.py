"""The domain layer: every write workflow of the service and the step that publishes it.

Handlers (HTTP and WebSocket) parse a request, call one function here and render its result; they
never decide how a booking, a status change or a call-next happens. Workflows take canonical ids
(lower-case hex strings, made so at the edge), check the caller with `core.access.relation`, write
with single-document conditional operations, and then announce the committed documents to the
doctor's queue over the bus (`domain.publish`), returning once the local queue has taken them in.

Imports point one way: live, handlers → domain → infra (store, bus) → actors → core.
"""
