"""`GET /api/reports/days`: the query (a span of clinic days, at most a year) and the row it answers."""

from __future__ import annotations

from datetime import date

from marshmallow import ValidationError, fields, validate, validates_schema

from schemas.base import StrictSchema
from schemas.fields import ClinicDate, ObjectIdField
from schemas.responses import EtaRangeCountsSchema

MAX_REPORT_DAYS = 366
EARLIEST_DAY, LATEST_DAY = date(2000, 1, 1), date(2099, 12, 31)
CSV_COLUMNS = ("date", "doctorId", "doctorName", "booked", "completed", "noShows", "cancelled", "meanWaitMinutes",
               "p90WaitMinutes", "meanConsultMinutes", "etaMaeMinutes", "etaScored", "etaEarly", "etaInside",
               "etaLate")


class ReportDay(ClinicDate):
    """A clinic day between 2000-01-01 and 2099-12-31."""

    def _deserialize(self, value, attr, data, **kwargs):
        day = super()._deserialize(value, attr, data, **kwargs)
        if not EARLIEST_DAY <= day <= LATEST_DAY:
            raise ValidationError("Give a day between 2000-01-01 and 2099-12-31.")
        return day


class DaysReportQuerySchema(StrictSchema):
    """`?from=YYYY-MM-DD&to=YYYY-MM-DD&doctor=id`: both days included, `from` ≤ `to`, at most 366 days."""

    from_ = ReportDay(required=True, data_key="from")
    to = ReportDay(required=True)
    doctor_id = ObjectIdField(load_default=None, data_key="doctor", metadata={"description": "One doctor (admins; a doctor's own)."})

    @validates_schema
    def span(self, data, **kwargs):
        first, last = data.get("from_"), data.get("to")
        if first is None or last is None:
            return
        if first > last:
            raise ValidationError("Must not be after `to`.", field_name="from")
        if (last - first).days + 1 > MAX_REPORT_DAYS:
            raise ValidationError(f"At most {MAX_REPORT_DAYS} days at a time.", field_name="to")


class ReportDaySchema(StrictSchema):
    """One clinic day of one doctor; means and the 90th percentile are null when nothing to average."""

    date = ClinicDate(required=True)
    doctorId = fields.String(required=True)
    doctorName = fields.String(required=True)
    booked = fields.Integer(required=True, validate=validate.Range(min=0))
    completed = fields.Integer(required=True, validate=validate.Range(min=0))
    noShows = fields.Integer(required=True, validate=validate.Range(min=0))
    cancelled = fields.Integer(required=True, validate=validate.Range(min=0))
    meanWaitMinutes = fields.Float(required=True, allow_none=True)
    p90WaitMinutes = fields.Float(required=True, allow_none=True)
    meanConsultMinutes = fields.Float(required=True, allow_none=True)
    etaMaeMinutes = fields.Float(required=True, allow_none=True)
    etaScored = fields.Integer(required=True, validate=validate.Range(min=0))
    etaRange = fields.Nested(EtaRangeCountsSchema, required=True)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_record(row: dict) -> list:
    """A row as its CSV cells, `etaRange` flattened; null → an empty cell. A doctor name that a
    spreadsheet would run as a formula (`=…`, `+…`, `-…`, `@…`) is written with a leading `'`."""
    name = row["doctorName"]
    flat = {**row, "doctorName": "'" + name if name.startswith(FORMULA_STARTS) else name, "etaEarly": row["etaRange"]["early"], "etaInside": row["etaRange"]["inside"],
            "etaLate": row["etaRange"]["late"]}
    return ["" if flat[column] is None else flat[column] for column in CSV_COLUMNS]
