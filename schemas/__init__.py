"""marshmallow schemas for request bodies, responses and events."""
