"""Tornado request and WebSocket handlers, one module per resource."""
