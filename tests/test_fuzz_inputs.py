"""Property-based robustness: no input, from any caller, makes the server fail.

For every route in `server.app.ROUTES` (except the WebSocket and the Prometheus scrape), every method
the contract defines for it plus one it does not, hypothesis generates bodies (objects with the real
field names mixed with junk keys and wrongly typed, huge, odd or out-of-range values, other JSON
values, raw bytes), path ids (real ones, valid-looking 24-hex, malformed, percent-encoded junk) and
query strings, and sends them as an anonymous caller, a patient, a doctor with a linked profile and
an admin. Every answer must be below 500 and JSON; every error must have the contract's shape; the
server must stay healthy; and nothing may be logged as an error or with a traceback.

One real server per test function runs on an event loop in a background thread; hypothesis drives
the examples from a plain synchronous function, so shrinking works as usual.
"""

from __future__ import annotations

import json
import logging
import re
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, seed, settings, strategies as st

from domain.sessions import open_session
from server.app import ID, ROUTES
from tests.conftest import LoopThread, start_harness, stop_harness

ROLES = ("anonymous", "patient", "doctor", "admin")
SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
# Routes the contract answers with a JSON array rather than an object.
ARRAY_ROUTES = {r"/api/doctors", r"/api/appointments/my", rf"/api/appointments/doctor/{ID}",
                r"/api/admin/webhooks"}
STATUSES = ("pending", "confirmed", "in_consultation", "completed", "cancelled", "no_show")


# -- values resolved at send time (real ids, times relative to "now") ----------------------------------
@dataclass(frozen=True)
class Ref:
    """A real id of the fuzzed world: a doctor, the other doctor, an appointment, a user."""
    name: str


@dataclass(frozen=True)
class FromNow:
    """An ISO time `minutes` from the moment of sending, with the given zone suffix."""
    minutes: int
    zone: str


REF_NAMES = ("doctor", "other_doctor", "appointment", "patient_user", "doctor_user", "admin_user")
# Not ids: the real doctors' emails, for invites that link by email and for taken emails.
EMAIL_REFS = ("doctor_email", "other_doctor_email")


def resolve(value, refs: dict):
    if isinstance(value, Ref):
        return refs[value.name]
    if isinstance(value, FromNow):
        try:
            when = datetime.now(timezone.utc) + timedelta(minutes=value.minutes)
        except OverflowError:
            return "9999-12-31T23:59:59" + value.zone
        return when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + value.zone
    if isinstance(value, dict):
        return {resolve(k, refs): resolve(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, refs) for v in value]
    return value


# -- strategies -----------------------------------------------------------------------------------------
ODD_STRINGS = ["", " ", "\t\n", "\x00", "\u202e\u202d", "\ufeff", "\u0130", "\u00df", "\u2126",
               "\U0001f600" * 40, "a" * 3000, "null", "undefined", "NaN", "$where", "{\"$gt\": \"\"}",
               "../../etc/passwd", "%00", "<script>", "' OR 1=1 --", "\u0661\u0662", "\u00b2",
               "admin", "doctor", "patient", "true", "0", "-1"]
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
STRINGS = st.one_of(TEXT, st.sampled_from(ODD_STRINGS))
HUGE_INTS = st.sampled_from([0, -1, 1, 2 ** 31, -2 ** 31, 2 ** 53 + 1, 2 ** 63, -2 ** 63, 2 ** 64, 10 ** 100,
                             10 ** 4000, -10 ** 4000])
NUMBERS = st.one_of(st.integers(), st.integers(-10 ** 30, 10 ** 30), HUGE_INTS,
                    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.5, 12.0, -0.0, 1e308]))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, STRINGS)
JUNK_JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(STRINGS, inner, max_size=4)),
                         max_leaves=12)
NESTED_LISTS = st.integers(1, 60).map(lambda depth: json.loads("[" * depth + "]" * depth))

HEX24 = st.text("0123456789abcdef", min_size=24, max_size=24)
IDS = st.one_of(st.builds(Ref, st.sampled_from(REF_NAMES)), st.builds(Ref, st.sampled_from(REF_NAMES)),
                HEX24, st.text("0123456789abcdefABCDEFg", max_size=30), STRINGS)

ZONES = ["", "Z", "z", "+00:00", "-00:00", "+0000", "+05:30", "-12:00", "+14:00", "+23:59", "-23:59",
         "+24:00", "+99:99", " UTC", "[UTC]"]
EXTREME_DATES = ["9999-12-31T23:59:59Z", "9999-12-31T23:59:59.999999-23:59", "9999-12-31T23:59:59+00:00",
                 "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+23:59", "0001-01-01T00:00:00-23:59",
                 "0000-01-01T00:00:00Z", "2026-02-30T10:00:00Z", "2026-13-01T10:00:00Z",
                 "2026-11-23T25:00:00Z", "2026-11-23T10:15:00.123456789Z", "+002026-11-23T10:15:00Z",
                 "2026-W48-1T10:00Z", "20261123T101500Z", "2026-11-23", "2026-11-23T10:15:00",
                 "10000-01-01T00:00:00Z", "2026-11-23T10:15:60Z", "T10:15:00Z"]


@st.composite
def iso_dates(draw):
    moment = draw(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))
    text = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
    shape = draw(st.sampled_from(["date", "minutes", "seconds", "millis", "micros", "space"]))
    if shape != "date":
        text += (" " if shape == "space" else "T") + f"{moment.hour:02d}:{moment.minute:02d}"
    if shape in ("seconds", "millis", "micros", "space"):
        text += f":{moment.second:02d}"
    if shape == "millis":
        text += f".{moment.microsecond // 1000:03d}"
    if shape == "micros":
        text += f".{moment.microsecond:06d}"
    return text + draw(st.sampled_from(ZONES))


# The ends of the datetime range, where shifting to UTC leaves it.
EDGE_DATES = st.builds(lambda moment, zone: moment + zone,
                       st.sampled_from(["0001-01-01T00:00:00", "0001-01-01T00:30", "0001-01-01",
                                        "9999-12-31T23:59:59", "9999-12-31T23:59:59.999", "9999-12-31"]),
                       st.sampled_from(ZONES))
DATES = st.one_of(iso_dates(), EDGE_DATES, st.sampled_from(EXTREME_DATES),
                  st.builds(FromNow, st.one_of(st.integers(-10 ** 6, 10 ** 6), st.integers(1, 600),
                                               st.sampled_from([0, 1, 527040, 527041, 10 ** 9])),
                            st.sampled_from(ZONES)))
EMAILS = st.one_of(st.emails(), st.sampled_from(["root@medpharma.test", " ROOT@MedPharma.Test ", "a@b",
                                                 "@example.org", "x@", "a@b.c" + "o" * 300,
                                                 "\u0130@example.org"]), STRINGS)
PASSWORDS = st.one_of(st.text(st.characters(exclude_categories=("Cs",)), min_size=8, max_size=80),
                      st.sampled_from(["admin-password-1", "patient-password", "doctor-password", "x" * 73,
                                       "\U0001f600" * 18, "\U0001f600" * 19, "short"]), STRINGS)
MINUTES = st.one_of(st.integers(-5, 700), NUMBERS)


def either(good, wild):
    """(plausible values, wild values) of one field."""
    return good, st.one_of(wild, JUNK_JSON)


GOOD_NAMES = st.sampled_from(["Pat Patient", "Dr. Ada", " Grace ", "\u00c9mile", "x"])
GOOD_EMAILS = st.one_of(st.integers(0, 10 ** 6).map(lambda n: f"fuzz-{n}@example.org"),
                        st.builds(Ref, st.sampled_from(EMAIL_REFS)),
                        st.just("root@medpharma.test"))
GOOD_PASSWORDS = st.sampled_from(["patient-password", "admin-password-1", "doctor-password", "p" * 72])
GOOD_IDS = st.builds(Ref, st.sampled_from(REF_NAMES))
GOOD_DATES = st.builds(FromNow, st.integers(1, 24 * 60), st.sampled_from(["Z", "+00:00", "+05:30", "-08:00"]))
AVAILABILITY = st.lists(st.sampled_from(["Mon 9-12", "Tue 14-18"]), max_size=3)
CLOCKS = st.sampled_from(["00:00", "08:30", "09:00", "12:00", "12:30", "17:45", "23:59", "24:00"])
GOOD_HOURS = st.lists(st.fixed_dictionaries({"day": st.sampled_from(["mon", "tue", "sat", "sun"]),
                                             "start": CLOCKS, "end": CLOCKS}), max_size=4)
HOURS = st.one_of(st.lists(st.dictionaries(st.sampled_from(["day", "start", "end", "x"]),
                                           st.one_of(STRINGS, CLOCKS, SCALARS), max_size=4), max_size=5),
                  st.lists(JUNK_JSON, max_size=3), JUNK_JSON)
HOURS_FIELDS = {"hours": either(GOOD_HOURS, HOURS), "slotMinutes": either(st.integers(5, 240), MINUTES)}

AUTH_FIELDS = {"name": either(GOOD_NAMES, STRINGS), "email": either(GOOD_EMAILS, EMAILS),
               "password": either(GOOD_PASSWORDS, PASSWORDS)}
DOCTOR_FIELDS = {
    "name": either(GOOD_NAMES, STRINGS), "specialization": either(st.just("Cardiology"), STRINGS),
    "email": either(GOOD_EMAILS, EMAILS), "phone": either(st.just("+1 555 0100"), STRINGS),
    "availability": either(AVAILABILITY, st.one_of(st.lists(STRINGS, max_size=6), st.lists(JUNK_JSON, max_size=3),
                                                   st.lists(st.just("Mon 9-12"), min_size=51, max_size=55))),
    "avgConsultMinutes": either(st.integers(1, 240), MINUTES), **HOURS_FIELDS}
FIELDS = {
    (r"/api/auth/register", "POST"): AUTH_FIELDS,
    (r"/api/auth/login", "POST"): {"email": either(GOOD_EMAILS, EMAILS),
                                   "password": either(GOOD_PASSWORDS, PASSWORDS)},
    (r"/api/auth/register/invite", "POST"): {
        "token": either(st.text("abcdef0123456789-_", min_size=1, max_size=64), STRINGS),
        "name": either(GOOD_NAMES, STRINGS), "password": either(GOOD_PASSWORDS, PASSWORDS)},
    (r"/api/auth/refresh", "POST"): {"refreshToken": either(st.text("abcdef0123456789-_", min_size=1, max_size=64),
                                                             STRINGS)},
    (r"/api/auth/password", "POST"): {"currentPassword": either(GOOD_PASSWORDS, PASSWORDS),
                                      "newPassword": either(GOOD_PASSWORDS, PASSWORDS)},
    (rf"/api/admin/users/{ID}", "PATCH"): {"disabled": either(st.booleans(), SCALARS)},
    (r"/api/admin/invites", "POST"): {
        "email": either(GOOD_EMAILS, EMAILS),
        "role": either(st.sampled_from(["doctor", "admin"]), st.sampled_from(["patient", "Admin", "", "root"])),
        "expiresInHours": either(st.integers(1, 720), st.one_of(st.integers(-2, 800), NUMBERS)),
        "doctorId": either(st.one_of(st.none(), GOOD_IDS), IDS)},
    (r"/api/doctors", "POST"): DOCTOR_FIELDS,
    (rf"/api/doctors/{ID}", "PUT"): DOCTOR_FIELDS,
    (rf"/api/doctors/{ID}/status", "PATCH"): {
        "isRunningLate": either(st.booleans(), SCALARS),
        "lateByMinutes": either(st.integers(0, 600), MINUTES),
        "avgConsultMinutes": either(st.integers(1, 240), MINUTES),
        "awayUntil": either(st.one_of(st.none(), GOOD_DATES), DATES), **HOURS_FIELDS},
    (rf"/api/doctors/{ID}/queue/next", "POST"): {"expectCurrent": either(st.one_of(st.none(), GOOD_IDS), IDS)},
    (r"/api/appointments", "POST"): {
        "patientName": either(GOOD_NAMES, STRINGS), "patientEmail": either(GOOD_EMAILS, EMAILS),
        "patientPhone": either(st.just("+1 555 0199"), STRINGS), "doctor": either(GOOD_IDS, IDS),
        "date": either(GOOD_DATES, DATES), "reason": either(st.just("checkup"), st.one_of(STRINGS, st.just("r" * 1001)))},
    (rf"/api/appointments/{ID}/status", "PATCH"): {"status": either(st.sampled_from(STATUSES), STRINGS)},
    (rf"/api/appointments/{ID}", "PATCH"): {
        "date": either(GOOD_DATES, DATES), "reason": either(st.just("checkup"), st.one_of(STRINGS, st.just("r" * 1001)))},
    (r"/api/push/subscriptions", "POST"): {
        "endpoint": either(st.sampled_from(["https://127.0.0.1/push", "https://[::1]/p", "http://10.0.0.1/",
                                            "https://203.0.113.5/push/abc"]), STRINGS),
        "expirationTime": either(st.one_of(st.none(), st.integers(0, 2 ** 40)), NUMBERS),
        "keys": either(st.just({"p256dh": "B" + "A" * 86, "auth": "A" * 22}),
                       st.one_of(JUNK_JSON, st.dictionaries(st.sampled_from(["p256dh", "auth", "x"]), STRINGS)))},
    (r"/api/admin/webhooks", "POST"): {
        "url": either(st.sampled_from(["https://127.0.0.1/hook", "https://169.254.169.254/", "http://example.org/",
                                       "https://203.0.113.5/hook"]), STRINGS),
        "events": either(st.lists(st.sampled_from(["appointment.booked", "appointment.soon"]), min_size=1,
                                  max_size=3), st.one_of(st.lists(STRINGS, max_size=3), STRINGS)),
        "description": either(st.just("SMS"), st.one_of(STRINGS, st.just("d" * 501)))},
}
EXTRA_KEYS = st.one_of(st.sampled_from(["role", "_id", "id", "$set", "__proto__", "passwordHash", "status",
                                        "doctorId", "patient", "isAdmin", "createdAt", "version", ""]), STRINGS)

# Every route, the methods the contract defines for it, and one it does not.
ENDPOINTS = {
    r"/": (["GET"], "POST"),
    r"/healthz": (["GET"], "DELETE"),
    r"/readyz": (["GET"], "POST"),
    r"/api/auth/register": (["POST"], "GET"),
    r"/api/auth/login": (["POST"], "PUT"),
    r"/api/auth/me": (["GET"], "POST"),
    r"/api/auth/register/invite": (["POST"], "GET"),
    r"/api/auth/refresh": (["POST"], "GET"),
    r"/api/auth/logout": (["POST"], "DELETE"),
    r"/api/auth/password": (["POST"], "PUT"),
    r"/api/admin/invites": (["POST", "GET"], "PUT"),
    rf"/api/admin/invites/{ID}": (["DELETE"], "POST"),
    r"/api/admin/users": (["GET"], "POST"),
    rf"/api/admin/users/{ID}": (["PATCH", "DELETE"], "PUT"),
    r"/api/admin/audit": (["GET"], "POST"),
    r"/api/doctors": (["GET", "POST"], "DELETE"),
    rf"/api/doctors/{ID}": (["GET", "PUT", "DELETE"], "POST"),
    rf"/api/doctors/{ID}/status": (["PATCH"], "GET"),
    rf"/api/doctors/{ID}/queue/next": (["POST"], "GET"),
    rf"/api/doctors/{ID}/stats": (["GET"], "PUT"),
    rf"/api/doctors/{ID}/slots": (["GET"], "POST"),
    r"/api/appointments": (["POST", "GET"], "DELETE"),
    r"/api/appointments/my": (["GET"], "POST"),
    rf"/api/appointments/doctor/{ID}": (["GET"], "PATCH"),
    rf"/api/appointments/{ID}": (["GET", "PATCH"], "DELETE"),
    rf"/api/appointments/{ID}/status": (["PATCH"], "PUT"),
    rf"/api/queue/doctor/{ID}": (["GET"], "POST"),
    rf"/api/queue/appointment/{ID}/position": (["GET"], "PUT"),
    r"/api/openapi.json": (["GET"], "POST"),
    r"/api/asyncapi.json": (["GET"], "DELETE"),
    r"/api/reports/days": (["GET"], "POST"),
    r"/api/push/key": (["GET"], "POST"),
    r"/api/push/subscriptions": (["POST"], "GET"),
    rf"/api/push/subscriptions/{ID}": (["DELETE"], "GET"),
    r"/api/admin/webhooks": (["POST", "GET"], "PUT"),
    rf"/api/admin/webhooks/{ID}": (["DELETE"], "GET"),
    rf"/api/admin/webhooks/{ID}/deliveries": (["GET"], "POST"),
}
CASES = [(pattern, method, method not in defined)
         for pattern, (defined, extra) in ENDPOINTS.items() for method in [*defined, extra]]
# Who gets past authorization to the body checks: those route/method pairs get the most examples.
BODY_ROLES = {
    (r"/api/auth/register", "POST"): ROLES, (r"/api/auth/login", "POST"): ROLES,
    (r"/api/auth/register/invite", "POST"): ROLES, (r"/api/admin/invites", "POST"): ("admin",),
    (r"/api/auth/refresh", "POST"): ROLES, (r"/api/auth/password", "POST"): ROLES,
    (rf"/api/admin/users/{ID}", "PATCH"): ("admin",),
    (r"/api/doctors", "POST"): ("admin",), (rf"/api/doctors/{ID}", "PUT"): ("admin",),
    (rf"/api/doctors/{ID}/status", "PATCH"): ("admin", "doctor"),
    (rf"/api/doctors/{ID}/queue/next", "POST"): ("admin", "doctor"),
    (r"/api/appointments", "POST"): ("patient",), (r"/api/appointments", "GET"): ("admin",),
    (rf"/api/appointments/{ID}/status", "PATCH"): ("patient", "doctor", "admin"),
    (rf"/api/appointments/{ID}", "PATCH"): ("patient", "doctor", "admin"),
    (r"/api/push/subscriptions", "POST"): ROLES, (r"/api/admin/webhooks", "POST"): ("admin",),
}


def examples_for(role: str, pattern: str, method: str, extra: bool) -> int:
    if extra:
        return 4
    if role in BODY_ROLES.get((pattern, method), ()):
        return 100
    return 10


@st.composite
def object_bodies(draw, fields: dict):
    """The route's real fields, almost all present and plausible, a few of them wild; sometimes junk keys,
    so that most bodies get past the first check and reach the deeper ones."""
    body = {}
    for name, (good, wild) in fields.items():
        if draw(st.integers(0, 19)) > 0:
            body[name] = draw(wild if draw(st.integers(0, 4)) == 0 else good)
    if draw(st.integers(0, 4)) == 0:
        body.update(draw(st.dictionaries(EXTRA_KEYS, JUNK_JSON, min_size=1, max_size=3)))
    return body


NASTY_RAW = [b"", b" ", b"{", b"}", b"null", b"[]", b"\"\"", b"{}garbage", b"{\"a\":1}{\"b\":2}",
             b"\xef\xbb\xbf{}", b"\xff\xfe{\x00}\x00", "{}".encode("utf-16"), "{}".encode("utf-32"),
             b"{\"name\": \"\\ud800\"}", b"{\"\\udfff\": 1}", b"{\"password\": \"\\udc80abcdefgh\"}",
             b"{\"email\": \"a@b.org\", \"password\": \"\\ud83d\\ude00\\udc80xxxxxxx\"}",
             b"{\"a\": NaN}", b"{\"a\": -Infinity}", b"{\"limit\": 1" + b"0" * 5000 + b"}",
             b"[" * 5000 + b"]" * 5000, b"[" * 60000, b"{\"a\":" * 10000 + b"1" + b"}" * 10000,
             b"\x00" * 100, b"{\"a\": \"\x80\"}", b"{\"a\": 1e999999}", b"x" * (64 * 1024 + 1)]
RAW_BODIES = st.one_of(st.sampled_from(NASTY_RAW), st.binary(max_size=200), TEXT.map(str.encode))
READS_BODY = ("POST", "PUT", "PATCH")


@st.composite
def bodies(draw, pattern: str, method: str):
    """(json_body, raw_body): at most one of them is set."""
    fields = FIELDS.get((pattern, method))
    if method not in READS_BODY:
        kinds = ["none"] * 6 + ["junk", "raw"]
    elif fields:
        kinds = ["object"] * 5 + ["none", "junk", "junk", "raw", "raw"]
    else:
        kinds = ["none", "empty", "junk", "raw"]
    kind = draw(st.sampled_from(kinds))
    if kind == "object":
        return draw(object_bodies(fields)), None
    if kind == "empty":
        return {}, None
    if kind == "junk":
        return draw(st.one_of(JUNK_JSON, NESTED_LISTS, st.dictionaries(EXTRA_KEYS, JUNK_JSON, max_size=4))), None
    if kind == "raw":
        return None, draw(RAW_BODIES)
    return None, None


QUERY_KEYS = st.one_of(st.sampled_from(["limit", "offset", "status", "doctor", "date", "role", "q", "action",
                                        "actor", "target"]),
                       st.sampled_from(["token", "page", "", "limit[]"]), STRINGS)
# Numbers as a query string spells them, and things str.isdigit() takes for one ("²", "١٢").
NUMERIC_TEXT = st.one_of(st.integers(-10 ** 6, 10 ** 6).map(str), st.integers(0, 10 ** 40).map(str),
                         st.integers(1, 6000).map(lambda n: "9" * n),
                         st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=6),
                         st.sampled_from(["1e3", " 5", "5 ", "0x10", "+5", "-0", "5.0", "", "007"]))
QUERY_VALUES = st.one_of(NUMERIC_TEXT, st.sampled_from(STATUSES), STRINGS, IDS)
# str.isdigit() is true for all of these; int() takes none of the "No" ones, nor more than 4300 digits.
ODD_DIGITS = st.one_of(st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=6),
                       st.text(st.characters(categories=["No"]), min_size=1, max_size=3),
                       st.integers(4290, 6000).map(lambda n: "9" * n))
# The admin list's parameters, each plausible or wild, as in `object_bodies`.
LIST_PARAMS = {"limit": either(st.integers(1, 200).map(str), st.one_of(ODD_DIGITS, NUMERIC_TEXT)),
               "offset": either(st.integers(0, 100).map(str), st.one_of(ODD_DIGITS, NUMERIC_TEXT)),
               "status": either(st.sampled_from(STATUSES), STRINGS),
               "doctor": either(GOOD_IDS, IDS)}
URL_JUNK = "abcXYZ019-._~!$'()*+,;=:@%&"


@st.composite
def queries(draw, pattern: str):
    listing = pattern == r"/api/appointments"
    kind = draw(st.sampled_from(["none", "params", "params", "params", "pairs", "raw"] if listing
                                else ["none"] * 4 + ["pairs", "raw"]))
    if kind == "params":
        params = [(name, draw(wild if draw(st.integers(0, 2)) == 0 else good))
                  for name, (good, wild) in LIST_PARAMS.items() if draw(st.booleans())]
        if draw(st.integers(0, 4)) == 0:
            params += draw(st.lists(st.tuples(QUERY_KEYS, QUERY_VALUES), min_size=1, max_size=2))
        return params
    if kind == "pairs":
        return draw(st.lists(st.tuples(QUERY_KEYS, QUERY_VALUES), min_size=1, max_size=4))
    if kind == "raw":
        return draw(st.text(URL_JUNK + "?", max_size=40))
    return None


PATH_IDS = st.one_of(GOOD_IDS, GOOD_IDS, HEX24.map(lambda h: ("raw", h)), STRINGS.map(lambda s: ("text", s)),
                     st.text(URL_JUNK, min_size=1, max_size=30).map(lambda s: ("raw", s)),
                     st.sampled_from(["%00", "%ff", "%ED%A0%80", "%C0%AF", "%2F", "%2e%2e", "%", "%zz", ".", "..",
                                      "%25", "my", "doctor", "0" * 10000]).map(lambda s: ("raw", s)))


@st.composite
def requests(draw, pattern: str, method: str, extra: bool):
    path_id = draw(PATH_IDS) if ID in pattern else None
    body, raw = draw(bodies(pattern, method))
    return {"pattern": pattern, "method": method, "extra": extra, "path_id": path_id,
            "body": body, "raw": raw, "query": draw(queries(pattern))}


def regression(pattern: str, method: str, body=None, raw=None, query=None, path_id=None) -> dict:
    return {"pattern": pattern, "method": method, "extra": False, "path_id": path_id, "body": body, "raw": raw,
            "query": query}


def booking(date: str) -> dict:
    return {"patientName": "Pat", "patientEmail": "pat@example.org", "patientPhone": "+1 555 0199",
            "doctor": Ref("doctor"), "date": date}


# Inputs that once made the server fail, sent every run whatever hypothesis draws.
REGRESSIONS = [
    # A lone surrogate escape: not encodable as UTF-8, so bcrypt (or the answer) failed on it.
    regression(r"/api/auth/register", "POST", raw=b'{"password": "\\udc80abcdefgh"}'),
    regression(r"/api/auth/register", "POST", {"name": "\ud800", "email": "s@example.org",
                                               "password": "patient-password"}),
    regression(r"/api/auth/login", "POST", raw=b'{"email": "a@b.org", "password": "\\udc80abcdefgh"}'),
    regression(r"/api/doctors", "POST", {"name": "Dr. \udfff", "specialization": "x", "email": "s@example.org",
                                         "phone": "+1 555 0100"}),
    # Nesting deeper than the JSON parser's recursion limit.
    regression(r"/api/appointments", "POST", raw=b"[" * 60000),
    regression(rf"/api/doctors/{ID}/status", "PATCH", raw=b'{"a":' * 10000 + b"1" + b"}" * 10000,
               path_id=Ref("doctor")),
    # Query numbers that str.isdigit() accepts and int() does not.
    regression(r"/api/appointments", "GET", query=[("limit", "\u00b2")]),
    regression(r"/api/appointments", "GET", query=[("offset", "9" * 5000)]),
    # Times whose UTC equivalent is outside the datetime range.
    regression(r"/api/appointments", "POST", booking("0001-01-01T00:00:00+05:00")),
    regression(r"/api/appointments", "POST", booking("9999-12-31T23:59:59-05:00")),
]


# -- the fuzzed world -------------------------------------------------------------------------------------
class ErrorRecorder(logging.Handler):
    """Every record logged with a traceback or at ERROR and above."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.records.append(record)

    def describe(self) -> list[str]:
        return [f"{r.name} {r.levelname}: {r.getMessage()} {logging.Formatter().formatException(r.exc_info)}"
                if r.exc_info else f"{r.name} {r.levelname}: {r.getMessage()} {vars(r)}" for r in self.records]


async def build_world(harness) -> tuple[dict, dict]:
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    other = await harness.create_doctor(admin)
    doctor_token, doctor_user = await harness.doctor_account(doctor, admin)
    patient_token, patient_user = await harness.register()
    appointment = await harness.book(patient_token, doctor["id"])
    me = await harness.api.get("/api/auth/me", token=admin)
    tokens = {"anonymous": None, "patient": patient_token, "doctor": doctor_token, "admin": admin}
    refs = {"doctor": doctor["id"], "other_doctor": other["id"], "appointment": appointment["id"],
            "patient_user": patient_user["id"], "doctor_user": doctor_user["id"], "admin_user": me.body["user"]["id"],
            "doctor_email": doctor["email"], "other_doctor_email": other["email"]}
    return tokens, refs


async def sign_in_again(harness, role: str) -> str:
    """A fresh session for the role's account, opened directly: a fuzzed login may have used up the
    account's failed-login allowance, which would refuse even the right password for a minute."""
    user = await harness.services.store.users.find_one({"role": role})
    return (await open_session(harness.services, user)).token


async def close_client(harness) -> None:
    harness.api.http.close()


def build_url(case: dict, refs: dict) -> str:
    path = case["pattern"]
    if case["path_id"] is not None:
        value = case["path_id"]
        if isinstance(value, Ref):
            segment = refs[value.name]
        else:
            kind, text = value
            segment = text if kind == "raw" else quote(text, safe="")
        path = path.replace(ID, segment)
    query = case["query"]
    if isinstance(query, list):
        path += "?" + urlencode([(resolve(k, refs), resolve(v, refs)) for k, v in query])
    elif query:
        path += "?" + query
    return path


def check_response(response, case: dict, url: str) -> None:
    where = f"{case['method']} {url[:300]} -> {response.status} {response.text[:500]!r}"
    assert response.status < 500, where
    if response.status == 204:  # No Content: logout, password change, invite revoked
        assert response.text == "", where
        return
    assert response.headers.get("Content-Type", "").startswith("application/json"), where
    assert response.body is not None, where
    if response.status >= 400:
        assert isinstance(response.body, dict), where
        assert set(response.body) <= {"message", "code", "details"}, where
        assert isinstance(response.body.get("message"), str) and response.body["message"], where
        assert isinstance(response.body.get("code"), str) and SNAKE_CASE.fullmatch(response.body["code"]), where
        assert "Traceback" not in response.text, where
        if "details" in response.body:
            assert isinstance(response.body["details"], dict), where
    elif case["pattern"] in ARRAY_ROUTES and case["method"] == "GET":
        assert isinstance(response.body, list), where
    else:
        assert isinstance(response.body, dict), where
    if case["extra"]:
        assert 400 <= response.status < 500, where


def test_every_route_is_fuzzed():
    fuzzed = set(ENDPOINTS)
    # The web app's files (/app) and the API reference page are not JSON endpoints: tests/test_web_static.py
    # and tests/test_api_spec.py cover them.
    # /ws and /socket.io/ are sockets: tests/test_ws*.py, test_limits_ws.py and test_socketio*.py cover them.
    routed = {pattern for pattern, _ in ROUTES} - {r"/ws", r"/socket.io/", r"/metrics", r"/app", r"/app/(.*)",
                                                   r"/api/docs"}
    assert fuzzed == routed


@pytest.mark.parametrize("role", ROLES)
def test_no_input_breaks_the_server(role):
    recorder = ErrorRecorder()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(recorder)
    root.setLevel(logging.DEBUG)
    runner = LoopThread()
    harness = None
    try:
        # The fuzz signs in again after a case that logged its session out; its own wrong-password logins
        # must not lock that out (which ones it draws shifts with every constant in the code, as
        # hypothesis mixes those in). The limiter has its own tests.
        harness = runner.run(start_harness(settings={"login_failures_per_minute": 1_000_000}))
        tokens, refs = runner.run(build_world(harness))
        current = {"token": tokens[role]}
        assert not recorder.records, recorder.describe()

        def send(case):
            recorder.records.clear()
            url = build_url(case, refs)
            body = resolve(case["body"], refs)
            token = current["token"]
            response = runner.run(harness.api.request(case["method"], url, body, token=token, raw=case["raw"]))
            if token is not None and runner.run(harness.api.get("/api/auth/me", token=token)).status == 401:
                current["token"] = runner.run(sign_in_again(harness, role))  # the case logged this session out
            check_response(response, case, url)
            alive = runner.run(harness.api.get("/"))
            assert alive.status == 200, (url, alive.status, alive.text)
            assert not recorder.records, (case["method"], url, recorder.describe())

        for case in REGRESSIONS:
            send(case)
        for pattern, method, extra in CASES:
            fuzz = given(case=requests(pattern, method, extra))(send)
            fuzz = settings(max_examples=examples_for(role, pattern, method, extra), deadline=None,
                            derandomize=True, database=None,
                            suppress_health_check=list(HealthCheck))(fuzz)
            seed(zlib.crc32(f"{role} {method} {pattern}".encode()))(fuzz)()
        alive = runner.run(harness.api.get("/"))
        assert alive.status == 200 and alive.body == {"message": "MedPharma API is running..."}
        assert not recorder.records, recorder.describe()
    finally:
        try:
            if harness is not None:
                runner.run(stop_harness(harness))
                runner.run(close_client(harness))
        finally:
            runner.close()
            root.removeHandler(recorder)
            root.setLevel(old_level)
    assert not recorder.records, recorder.describe()


async def test_a_too_deeply_nested_websocket_frame_is_an_error_frame(harness):
    """The WebSocket is not fuzzed above; this is the one frame that once killed it (RecursionError)."""
    recorder = ErrorRecorder()
    logging.getLogger().addHandler(recorder)
    try:
        patient, _ = await harness.register()
        socket = await harness.ws(patient)
        await socket.send("[" * 4000)
        assert await socket.recv() == {"event": "error",
                                       "data": {"code": "bad_json", "message": "The frame is not valid JSON."}}
        await socket.send({"type": "ping"})
        assert await socket.recv() == {"event": "pong"}  # and the socket is still open
        socket.close()
    finally:
        logging.getLogger().removeHandler(recorder)
    assert not recorder.records, recorder.describe()
