"""`GET /api/reports/days`: the clinic over weeks as JSON, or as CSV for `Accept: text/csv`."""

from __future__ import annotations

import csv
import io

from domain import reports
from handlers.base import APIHandler
from schemas.base import load_body
from schemas.reports import CSV_COLUMNS, DaysReportQuerySchema, csv_record

days_query_schema = DaysReportQuerySchema()
CSV_MEDIA_TYPE = "text/csv"


def wants_csv(accept: str | None) -> bool:
    """True when `Accept` prefers `text/csv` to JSON (by its q-value; JSON wins a tie or a wildcard)."""
    weights: dict[str, float] = {}
    for part in (accept or "").split(","):
        media, *params = [piece.strip() for piece in part.split(";")]
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        weights[media.lower()] = max(quality, weights.get(media.lower(), 0.0))
    csv_weight = weights.get(CSV_MEDIA_TYPE, 0.0)
    return csv_weight > 0 and csv_weight > weights.get("application/json", 0.0)


class DaysReportHandler(APIHandler):
    async def get(self) -> None:
        principal = self.caller_of(reports.days_report)
        query = load_body(days_query_schema, self.query_arguments())
        doctor_id = query["doctor_id"] and str(query["doctor_id"])
        rows = await reports.days_report(self.services, principal, query["from_"], query["to"], doctor_id)
        self.set_header("Vary", "Origin, Accept")
        if not wants_csv(self.request.headers.get("Accept")):
            self.send_json(rows)
            return
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerows(csv_record(row) for row in rows)
        self.set_header("Content-Type", "text/csv; charset=utf-8; header=present")
        self.set_header("Content-Disposition",
                        f'attachment; filename="medpharma-days-{query["from_"]}-{query["to"]}.csv"')
        self.finish(out.getvalue())
