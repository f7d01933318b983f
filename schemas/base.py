"""Loading helpers: every request body goes through `load_body`, which raises the API's 400 shape."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, validate

from core.errors import ValidationFailed
from schemas.fields import StrictInteger


class StrictSchema(Schema):
    """Unknown fields are refused (marshmallow's RAISE), so a `role` smuggled into a body is a 400."""

    class Meta:
        ordered = True


class PageQuerySchema(StrictSchema):
    """`limit` and `offset` of every listing."""

    limit = StrictInteger(load_default=50, validate=validate.Range(min=1, max=200))
    offset = StrictInteger(load_default=0, validate=validate.Range(min=0, max=1_000_000))


def load_body(schema: Schema, data, *, partial: bool = False) -> dict:
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.", code="invalid_body")
    try:
        return schema.load(data, partial=partial)
    except ValidationError as exc:
        raise ValidationFailed(details=_flatten(exc.messages)) from None


def _flatten(messages) -> dict:
    """marshmallow nests messages for list items; clients want `field → [sentences]`."""
    if isinstance(messages, list):
        return {"_body": [str(m) for m in messages]}
    flat: dict[str, list[str]] = {}
    for field, value in messages.items():
        if isinstance(value, dict):
            for sub, sub_value in _flatten(value).items():
                flat[f"{field}.{sub}"] = sub_value
        elif isinstance(value, list):
            flat[field] = [str(v) for v in value]
        else:
            flat[field] = [str(value)]
    return flat
