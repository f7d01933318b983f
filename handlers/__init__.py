"""HTTP edges, one module per resource: parse the request, make one domain call, render the answer.
Who may call what is the domain's to decide (`domain.policy`), never a handler's."""
