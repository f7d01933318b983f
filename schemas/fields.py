"""Field types shared by every schema: strict numbers and booleans, ids, UTC times, emails.

marshmallow's defaults are lenient in ways an API should not be: `Integer` takes `"5"` and `True`,
`Boolean` takes `"yes"`, `AwareDateTime` keeps the caller's offset. These fields refuse the former
and normalise the latter, so handlers only ever see clean Python values.
"""

from __future__ import annotations

from datetime import date, timezone

from marshmallow import ValidationError, fields, validate

from core.emails import normalise_email
from core.limits import MAX_PASSWORD_BYTES, MIN_PASSWORD_BYTES
from core.passwords import is_common

COMMON_PASSWORD = "This is one of the 10,000 most common passwords, the first ones anyone guesses; choose another."
from core.values import format_utc, to_object_id, truncate_ms


class UtcDateTime(fields.AwareDateTime):
    """ISO 8601 in, aware UTC out; a time without a zone is refused rather than guessed."""

    default_error_messages = {"naive": "Give a time zone, for example 2026-11-23T10:15:00Z."}

    def __init__(self, **kwargs):
        super().__init__(format="iso", default_timezone=None, **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return format_utc(value)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE)
        parsed = super()._deserialize(value, attr, data, **kwargs)
        try:
            return truncate_ms(parsed.astimezone(timezone.utc))
        except OverflowError:  # 0001-01-01T00:00+01:00, 9999-12-31T23:59-01:00: no UTC time exists
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE) from None


class ClinicDate(fields.Date):
    """A calendar day, `YYYY-MM-DD` and nothing else (a clinic day has no time or zone); with `earliest`
    and `latest`, only a day between them (a day near year 1 or 9999 has no start or end in UTC)."""

    default_error_messages = {"invalid": "Give a day as YYYY-MM-DD.",
                              "range": "Give a day from {earliest} to {latest}."}

    def __init__(self, *, earliest: date | None = None, latest: date | None = None, **kwargs):
        super().__init__(**kwargs)
        self.earliest, self.latest = earliest, latest

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or len(value) != 10:
            raise self.make_error("invalid")
        day = super()._deserialize(value, attr, data, **kwargs)
        if (self.earliest and day < self.earliest) or (self.latest and day > self.latest):
            raise self.make_error("range", earliest=self.earliest.isoformat(), latest=self.latest.isoformat())
        return day


class StrictInteger(fields.Integer):
    """A JSON integer: not a string of digits, not a boolean, not 5.5."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(fields.Boolean):
    """JSON `true` or `false` only."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def refuse_over_long(field: fields.Field, sent: str) -> None:
    """Length limits hold for what was sent, not only for what is left after trimming: the published
    description says `maxLength` of the JSON string, and 300 blanks around a name are no name."""
    for validator in field.validators:
        if isinstance(validator, validate.Length) and validator.max is not None and len(sent) > validator.max:
            validator(sent)


class CleanString(fields.String):
    """A string with surrounding blanks removed; an empty result counts as missing when required."""

    def _deserialize(self, value, attr, data, **kwargs):
        sent = super()._deserialize(value, attr, data, **kwargs)
        refuse_over_long(self, sent)
        text = sent.strip()
        if not text and self.required:
            raise ValidationError("Must not be empty.")
        return text


class NormalisedEmail(fields.Email):
    """One spelling per address (`core.emails.normalise_email`: trimmed, NFKC, lower case, the domain in
    its `xn--` form), so `A@X.org `, `ａ@x.org` and `a@x.org` are one account; a non-ASCII local part or
    an invisible character is refused."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            refuse_over_long(self, value)
            try:
                value = normalise_email(value)
            except ValueError as exc:
                raise ValidationError(str(exc)) from None
        return super()._deserialize(value, attr, data, **kwargs)


class ObjectIdField(fields.Field):
    """24-hex string in → ObjectId; ObjectId out → string."""

    default_error_messages = {"invalid": "Not a valid id."}

    def _deserialize(self, value, attr, data, **kwargs):
        oid = to_object_id(value) if isinstance(value, str) else None
        if oid is None:
            raise self.make_error("invalid")
        return oid

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else str(value)


class Password(fields.String):
    """`MIN_PASSWORD_BYTES` to `MAX_PASSWORD_BYTES` (bcrypt ignores every byte past its limit), and not
    one of the 10,000 most common passwords (`core.passwords`)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        size = len(text.encode("utf-8"))
        if size < MIN_PASSWORD_BYTES or size > MAX_PASSWORD_BYTES:
            raise ValidationError(f"Must be {MIN_PASSWORD_BYTES} to {MAX_PASSWORD_BYTES} bytes long.")
        if is_common(text):
            raise ValidationError(COMMON_PASSWORD)
        return text


__all__ = ["UtcDateTime", "ClinicDate", "StrictInteger", "StrictBoolean", "CleanString", "NormalisedEmail",
           "ObjectIdField", "Password", "format_utc"]
