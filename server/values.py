"""Small value conversions shared by the store, the schemas and the actors: ids and UTC times.

Kept apart from the store so that schemas and actors can use them without knowing MongoDB exists.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from bson import ObjectId


def utcnow() -> datetime:
    """Now, in UTC, at the millisecond precision MongoDB stores (so mock and server agree)."""
    return truncate_ms(datetime.now(timezone.utc))


def truncate_ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def format_utc(value: datetime | None) -> str | None:
    """`2026-11-23T10:15:00Z`, with milliseconds only when there are some."""
    if value is None:
        return None
    value = as_utc(value)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond // 1000:03d}"
    return text + "Z"


def to_object_id(value: Any) -> ObjectId | None:
    """A 24-hex id string → ObjectId; anything else → None (the caller answers 404)."""
    if isinstance(value, ObjectId):
        return value
    if isinstance(value, str) and len(value) == 24 and ObjectId.is_valid(value):
        return ObjectId(value)
    return None
