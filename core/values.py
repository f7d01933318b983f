"""Small value conversions shared by the store, the schemas and the actors: ids and UTC times.

Kept apart from the store so that schemas and actors can use them without knowing MongoDB exists.
"""

from __future__ import annotations

import re
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
    value = as_utc(value).replace(tzinfo=None)  # isoformat (C) is several times faster than strftime:
    # each change re-renders every waiting entry's four times (issue 29's profile)
    if value.year < 1000:  # isoformat pads the year to four digits; strftime's %Y does not
        text = value.strftime("%Y-%m-%dT%H:%M:%S")
        return text + (f".{value.microsecond // 1000:03d}" if value.microsecond else "") + "Z"
    return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds") + "Z"


_HEX_ID = re.compile(r"[0-9a-fA-F]{24}")


def canonical_id(value: Any) -> str | None:
    """The one spelling of an id that travels inward: 24 lower-case hex digits. Hex in either case
    names the same ObjectId, so `6563A1…` and `6563a1…` must meet in the same queue and room.
    Anything else (wrong length, other characters, non-strings) → None: the edge answers 404/400."""
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, str) and _HEX_ID.fullmatch(value):
        return value.lower()
    return None


def to_object_id(value: Any) -> ObjectId | None:
    """A canonical (or any-case) 24-hex id → ObjectId, for the store; anything else → None."""
    canonical = canonical_id(value)
    return ObjectId(canonical) if canonical is not None else None
