"""Every REST operation, as the API descriptions present it: who may call it, what it reads, what it
answers. The bodies, queries and answers are the marshmallow classes the handlers load and dump, so
a field changes in one place; this table adds only what a schema cannot know (paths, roles, the
statuses each workflow can end in, examples). `tests/test_api_spec.py` holds it to `server.app.ROUTES`.

Error statuses that follow from an operation's traits are added by the generator, not listed here:
a body (400, 413, 415), a query (400), a path id (404), a token (401), a role rule (403), the store
(503). `errors` lists only the rest, with the codes a client can branch on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core import policy
from schemas import responses as r
from schemas.appointments import (AppointmentCreateSchema, AppointmentListQuerySchema, AppointmentRescheduleSchema,
                                  AppointmentSchema, AppointmentStatusSchema, DayQuerySchema, QueuePositionSchema,
                                  SlotsDayQuerySchema, StatsDayQuerySchema)
from schemas.auth import (AuditQuerySchema, InviteCreatedSchema, InviteCreateSchema, InviteListQuerySchema,
                          InviteRegisterSchema, LoginSchema, PasswordChangeSchema, RefreshSchema, RegisterSchema,
                          UserListQuerySchema, UserPatchSchema, UserSchema)
from schemas.doctors import CallNextSchema, DaySlotsSchema, DoctorCreateSchema, DoctorSchema, DoctorStatusSchema
from schemas.notifications import (CreatedIdSchema, DeliveryQuerySchema, PushKeySchema, PushSubscriptionSchema,
                                    WebhookCreatedSchema, WebhookCreateSchema, WebhookSchema)
from schemas.reports import CSV_COLUMNS, DaysReportQuerySchema, ReportDaySchema

PUBLIC = "public"            # no token needed; a token, if sent, must be valid (it may change the answer)
SIGNED_IN = "signed-in"      # any valid access token
METRICS = "metrics"          # METRICS_TOKEN, when the operator set one

ID_PATTERN = "^[0-9a-fA-F]{24}$"
IDEMPOTENCY_KEY_PATTERN = "^[\\x20-\\x7e]{1,64}$"
IDEMPOTENCY_KEY_HEADER = {"in": "header", "name": "Idempotency-Key", "required": False,
                          "description": "Makes a retry safe: the same key from the same user within 24 h answers "
                                         "the first answer again without doing it twice.",
                          "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN}}
SESSION_COOKIE_HEADER = {"in": "header", "name": "X-Session-Cookie", "required": False,
                         "description": "`1`: the refresh token is set as the `HttpOnly` cookie `medpharma_refresh` "
                                        "(`SameSite=Strict; Path=/api/auth`) instead of being in the answer, "
                                        "out of reach of the page's scripts. Any other value is as if it were "
                                        "not sent.",
                         "schema": {"type": "string"}}


@dataclass(frozen=True)
class Many:
    """A JSON array of this schema's objects."""
    schema: type


@dataclass(frozen=True)
class AnyOf:
    """One of these shapes, depending on who asks (e.g. a queue with or without names)."""
    schemas: tuple[type, ...]


@dataclass(frozen=True)
class Raw:
    """An answer that is not a JSON object of ours (a page, a file, the Prometheus text)."""
    media_type: str
    schema: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    summary: str
    tag: str
    ok: tuple[int, Any]                      # the success status and its answer (None: no body)
    rule: str | None = None                  # the domain operation's name in `core.policy.RULES`
    auth: str | tuple[str, ...] = SIGNED_IN  # PUBLIC, SIGNED_IN, METRICS, or the roles allowed (from `rule`)
    body: Any = None                         # schema class or instance of the JSON body
    body_optional: bool = False
    query: type | None = None
    errors: dict[int, str] = field(default_factory=dict)   # status → when
    relation_rule: str = ""                  # "admins, or that doctor", … (403 for anyone else; from `rule`)
    headers: tuple[dict, ...] = ()
    description: str = ""
    examples: dict = field(default_factory=dict)   # "request" / status → an example value
    api: bool = True                         # under /api: JSON errors, store behind it
    also: tuple = ()                         # other media types of the success answer (Raw), by Accept

    def __post_init__(self) -> None:
        """Who may call it comes from the rule the domain enforces, never written here a second time."""
        if self.rule is None:
            return
        declared = policy.rule(self.rule)
        auth = PUBLIC if declared.public else (declared.callers or SIGNED_IN)
        object.__setattr__(self, "auth", auth)
        object.__setattr__(self, "relation_rule", declared.says)

    @property
    def path_params(self) -> list[str]:
        return [part[1:-1] for part in self.path.split("/") if part.startswith("{")]


ERROR_EXAMPLE = {"message": "Some fields are invalid.", "code": "validation_error",
                 "details": {"email": ["Not a valid email address."]}}
DOCTOR_ID = "6563a1d2c2b1e4a7d9f00001"
APPOINTMENT_ID = "6563a1f0c2b1e4a7d9f01234"
USER_ID = "6563a1c0c2b1e4a7d9f00042"
USER = {"id": USER_ID, "name": "Pat Patient", "email": "pat@example.org", "role": "patient", "disabled": False}
DOCTOR = {"id": DOCTOR_ID, "name": "Dr. Ada Lovelace", "specialization": "General practice",
          "email": "ada@clinic.example", "phone": "+1 555 0100", "availability": ["Mon 09:00-13:00"],
          "avgConsultMinutes": 12, "isRunningLate": False, "lateByMinutes": 0, "awayUntil": None,
          "hours": [{"day": "mon", "start": "09:00", "end": "13:00"}], "slotMinutes": 15,
          "createdAt": "2026-11-20T08:00:00Z", "updatedAt": "2026-11-23T09:58:00Z"}
APPOINTMENT = {"id": APPOINTMENT_ID, "patient": USER_ID, "patientName": "Pat Patient",
               "patientEmail": "pat@example.org", "patientPhone": "+1 555 0199", "doctor": DOCTOR_ID,
               "date": "2026-11-23T10:20:00Z", "reason": "Follow-up", "status": "pending",
               "createdAt": "2026-11-22T18:00:00Z", "updatedAt": "2026-11-22T18:00:00Z"}
SIGNED_IN_EXAMPLE = {"token": "eyJhbGciOiJIUzI1NiJ9.e30.sig", "refreshToken": "r3fr3sh-0paque", "user": USER}
PUBLIC_QUEUE = {"doctorId": DOCTOR_ID, "date": "2026-11-23", "isRunningLate": False, "lateByMinutes": 0,
                "avgConsultMinutes": 12, "awayUntil": None,
                "inConsultation": {"date": "2026-11-23T10:00:00Z", "status": "in_consultation",
                                   "startedAt": "2026-11-23T10:03:00Z", "mine": False},
                "list": [{"position": 0, "date": "2026-11-23T10:10:00Z", "status": "confirmed", "etaMinutes": 10,
                          "expectedStartAt": "2026-11-23T10:15:00Z", "earliestStartAt": "2026-11-23T10:05:00Z",
                          "latestStartAt": "2026-11-23T10:24:00Z", "delayMinutes": 5, "mine": False},
                         {"position": 1, "date": "2026-11-23T10:20:00Z", "status": "pending", "etaMinutes": 22,
                          "expectedStartAt": "2026-11-23T10:27:00Z", "earliestStartAt": "2026-11-23T10:14:00Z",
                          "latestStartAt": "2026-11-23T10:39:00Z", "delayMinutes": 7, "mine": True,
                          "appointmentId": APPOINTMENT_ID}]}
POSITION = {"appointmentId": APPOINTMENT_ID, "status": "pending", "position": 1, "etaMinutes": 22,
            "expectedStartAt": "2026-11-23T10:27:00Z", "earliestStartAt": "2026-11-23T10:14:00Z",
            "latestStartAt": "2026-11-23T10:39:00Z", "delayMinutes": 7, "avgConsultMinutes": 12,
            "isRunningLate": False, "lateByMinutes": 0, "awayUntil": None}

TEXT = Raw("text/plain", {"type": "string"})
HTML = Raw("text/html", {"type": "string"})
JSON_DOCUMENT = Raw("application/json", {"type": "object"})

OPERATIONS: tuple[Operation, ...] = (
    # -- service ----------------------------------------------------------------------------------
    Operation("/", "get", "Liveness message of the original design", "operations", (200, r.MessageSchema),
              auth=PUBLIC, api=False, examples={200: {"message": "MedPharma API is running..."}}),
    Operation("/healthz", "get", "The process is alive", "operations", (200, r.HealthSchema), auth=PUBLIC,
              api=False),
    Operation("/readyz", "get", "The store answers: send traffic here", "operations", (200, r.ReadySchema),
              auth=PUBLIC, errors={503: "The store is not answering (`store_unavailable`)."}, api=False),
    Operation("/metrics", "get", "Prometheus scrape (text format, names prefixed medpharma_)", "operations",
              (200, TEXT), auth=METRICS, errors={401: "METRICS_TOKEN is set and was not sent."}, api=False),
    Operation("/ws", "get", "Live queue over a WebSocket (see /api/asyncapi.json)", "live", (101, None),
              auth=SIGNED_IN, api=False,
              description="Upgrade with `Authorization: Bearer <JWT>` or `?token=<JWT>`. The messages are "
                          "described by the AsyncAPI document at `/api/asyncapi.json`.",
              errors={400: "Not a WebSocket upgrade request (`not_websocket`).",
                      403: "The browser's Origin is not allowed (`origin_not_allowed`).",
                      429: "This user already holds the most sockets allowed on this node."}),
    *(Operation("/socket.io/", method, f"Socket.IO (Engine.IO v4) {what}, for clients of the original design",
                "live", (200, TEXT), auth=PUBLIC, api=False,
                description="Spoken by a Socket.IO client library, never by hand: the same events and rules as "
                            "`/ws` (see /api/asyncapi.json). The token goes in the Socket.IO `auth` "
                            "`{token}`, `?token=` or `Authorization: Bearer`; a missing or bad one, a "
                            "disallowed Origin or a full per-user cap refuse the connection with a "
                            "`connect_error` whose data is `{code, message}`.",
                errors={400: "Not a valid Engine.IO request (unknown session, transport or protocol version)."})
      for method, what in (("get", "handshake, long-polling read and WebSocket upgrade"),
                           ("post", "long-polling write"))),
    Operation("/api/openapi.json", "get", "This description (OpenAPI 3.1)", "descriptions", (200, JSON_DOCUMENT),
              auth=PUBLIC, api=False),
    Operation("/api/asyncapi.json", "get", "The live socket's description (AsyncAPI 3)", "descriptions",
              (200, JSON_DOCUMENT), auth=PUBLIC, api=False),
    Operation("/api/docs", "get", "A readable reference rendered from both descriptions", "descriptions",
              (200, HTML), auth=PUBLIC, api=False),
    Operation("/app", "get", "The web app: redirects to /app/", "web app", (302, None), auth=PUBLIC, api=False),
    Operation("/app/{path}", "get", "The web app's files; any path naming no file is index.html", "web app",
              (200, Raw("*/*", {"type": "string"})), auth=PUBLIC, api=False,
              errors={404: "The path names a file (it has an extension) that does not exist."}),

    # -- auth ----------------------------------------------------------------------------------------
    Operation("/api/auth/register", "post", "Register as a patient", "auth", (201, r.SignedInSchema), rule="auth.register",
              body=RegisterSchema, headers=(SESSION_COOKIE_HEADER,),
              errors={409: "The email is taken, or kept for a pending staff invite (`email_taken`).",
                      429: "Too many registration attempts from this address, refused ones included "
                           "(`Retry-After`)."},
              examples={"request": {"name": "Pat Patient", "email": "pat@example.org",
                                    "password": "a-long-password"}, 201: SIGNED_IN_EXAMPLE}),
    Operation("/api/auth/login", "post", "Sign in", "auth", (200, r.SignedInSchema), rule="auth.login", body=LoginSchema,
              headers=(SESSION_COOKIE_HEADER,),
              errors={401: "Wrong email or password, one message for both (`invalid_credentials`).",
                      403: "The account is disabled (`account_disabled`).",
                      429: "Too many failed logins for this email or address (`Retry-After`)."},
              examples={"request": {"email": "pat@example.org", "password": "a-long-password"},
                        200: SIGNED_IN_EXAMPLE, 401: {"message": "Wrong email or password.",
                                                      "code": "invalid_credentials"}}),
    Operation("/api/auth/me", "get", "The signed-in user", "auth", (200, r.MeSchema),
              rule="auth.me", examples={200: {"user": USER}}),
    Operation("/api/auth/register/invite", "post", "Register with an invite (doctor or admin)", "auth",
              (201, r.SignedInSchema), rule="auth.register_invite", body=InviteRegisterSchema,
              headers=(SESSION_COOKIE_HEADER,),
              errors={400: "Also an unusable invite: `invite_invalid`, `invite_used`, `invite_expired`, "
                           "`invite_revoked`.",
                      404: "The doctor profile the invite was for is gone (`doctor_not_found`).",
                      409: "The invite's email is taken (`email_taken`)."}),
    Operation("/api/auth/refresh", "post", "Swap a refresh token for a new pair", "auth", (200, r.TokensSchema), rule="auth.refresh",
              body=RefreshSchema, body_optional=True,
              errors={401: "Unknown, expired or already spent (`invalid_refresh_token`); a spent one revokes "
                           "the whole session, however many rotations ago it was spent.",
                      403: "The session cookie came without an allowed `Origin` (`origin_not_allowed`)."},
              description="Without `refreshToken` (no body, or `{}`) the `medpharma_refresh` cookie is read and "
                          "rotated: the answer sets the next one and carries only `token`."),
    Operation("/api/auth/logout", "post", "End this session", "auth", (204, None), rule="auth.logout",
              description="Its access token answers 401 from then on, and its sockets close with 4001; the "
                          "`medpharma_refresh` cookie is cleared."),
    Operation("/api/auth/password", "post", "Change the password", "auth", (204, None), rule="auth.change_password", body=PasswordChangeSchema,
              errors={401: "The current password is wrong (`invalid_credentials`); it counts as a failed login.",
                      429: "Too many failed logins for this account or address, or too many hashings from this "
                           "address (`Retry-After`)."},
              description="Every other session of the user is revoked."),

    # -- admin ---------------------------------------------------------------------------------------
    Operation("/api/admin/invites", "post", "Invite a doctor or an admin", "admin", (201, InviteCreatedSchema),
              rule="invites.create",
              body=InviteCreateSchema,
              errors={400: "A doctor invite with neither `doctorId` nor a doctor profile of that email.",
                      404: "`doctorId` names no doctor.",
                      409: "An active invite for this email and role exists (`invite_exists`), or the email "
                           "is taken (`email_taken`)."},
              description="The token is shown once; only its hash is stored.",
              examples={"request": {"email": "ada@clinic.example", "role": "doctor", "doctorId": DOCTOR_ID},
                        201: {"inviteId": "6563a1c0c2b1e4a7d9f00077", "token": "inv-8d0f0c0e",
                              "expiresAt": "2026-11-26T10:00:00Z"}}),
    Operation("/api/admin/invites", "get", "List invites (never their tokens)", "admin", (200, r.InvitePageSchema),
              rule="invites.list",
              query=InviteListQuerySchema),
    Operation("/api/admin/invites/{inviteId}", "delete", "Revoke an invite", "admin", (204, None),
              rule="invites.revoke", errors={409: "The invite was already used (`invite_used`)."}),
    Operation("/api/admin/users", "get", "List users", "admin", (200, r.UserPageSchema),
              rule="users.list", query=UserListQuerySchema),
    Operation("/api/admin/users/{userId}", "patch", "Disable or enable a user", "admin", (200, UserSchema),
              rule="users.set_disabled",
              body=UserPatchSchema,
              errors={409: "An admin cannot disable themself (`cannot_disable_self`)."},
              description="Disabling revokes all the user's sessions (their sockets close with 4003) and "
                          "removes their Web Push subscriptions."),
    Operation("/api/admin/users/{userId}", "delete", "Delete an account that has no history", "admin", (204, None),
              rule="users.delete",
              errors={409: "The account has appointments or recorded actions (`user_has_history`: disable it "
                           "instead), or is your own (`cannot_delete_self`)."},
              description="For a squatted or mistaken registration: the account, its sessions and its Web Push "
                          "subscriptions end and its email is free again (audited as `user.deleted`)."),
    Operation("/api/admin/audit", "get", "The audit log, newest first", "admin", (200, r.AuditPageSchema), rule="audit.list",
              query=AuditQuerySchema),

    # -- doctors ---------------------------------------------------------------------------------------
    Operation("/api/doctors", "get", "The doctors", "doctors", (200, Many(DoctorSchema)),
              rule="doctors.list", description="`email` and `phone` only for admins and that doctor."),
    Operation("/api/doctors", "post", "Create a doctor profile", "doctors", (201, DoctorSchema),
              rule="doctors.create", body=DoctorCreateSchema, errors={409: "The email is taken (`email_taken`)."},
              examples={"request": {"name": "Dr. Ada Lovelace", "specialization": "General practice",
                                    "email": "ada@clinic.example", "phone": "+1 555 0100"}, 201: DOCTOR}),
    Operation("/api/doctors/{doctorId}", "get", "One doctor", "doctors", (200, DoctorSchema),
              rule="doctors.get", examples={200: DOCTOR}),
    Operation("/api/doctors/{doctorId}", "put", "Change a doctor profile (any of the create fields)", "doctors",
              (200, DoctorSchema), rule="doctors.update", body=DoctorCreateSchema(partial=True),
              errors={409: "The email is taken (`email_taken`)."}),
    Operation("/api/doctors/{doctorId}", "delete", "Delete a doctor profile", "doctors", (200, r.DoctorDeletedSchema),
              rule="doctors.delete",
              errors={409: "It still has waiting or in-consultation appointments."},
              description="Doctor accounts linked to it are disabled."),
    Operation("/api/doctors/{doctorId}/status", "patch", "Running late, consultation length, a break", "doctors",
              (200, DoctorSchema), rule="doctors.set_status", body=DoctorStatusSchema,
              examples={"request": {"isRunningLate": True, "lateByMinutes": 5}}),
    Operation("/api/doctors/{doctorId}/queue/next", "post", "Call the next patient", "doctors",
              (200, r.CallNextResultSchema), rule="doctors.call_next", body=CallNextSchema, body_optional=True,
              errors={409: "`expectCurrent` is not the appointment in consultation (`queue_changed`)."},
              description="Completes the consultation in progress and calls the head of today's queue, as one "
                          "change. Without `expectCurrent`, a second call within 5 s answers the first result.",
              examples={"request": {"expectCurrent": None}, 200: {"completed": None, "current": {
                  **APPOINTMENT, "status": "in_consultation", "startedAt": "2026-11-23T10:21:00Z",
                  "joinUrl": "https://meet.jit.si/medpharma-Qm3x"}}}),
    Operation("/api/doctors/{doctorId}/stats", "get", "A clinic day in numbers", "doctors", (200, r.DayStatsSchema), rule="doctors.day_stats",
              query=StatsDayQuerySchema,
              examples={200: {"date": "2026-11-23", "booked": 14, "completed": 9, "noShows": 1, "cancelled": 1,
                              "waiting": 3, "meanWaitMinutes": 6.5, "meanConsultMinutes": 11.2,
                              "etaMaeMinutes": 3.1, "etaScored": 8,
                              "etaRange": {"early": 0, "inside": 7, "late": 1}}}),

    Operation("/api/doctors/{doctorId}/slots", "get", "A doctor's slots on one clinic day, and which are free",
              "doctors", (200, DaySlotsSchema), rule="doctors.slots", query=SlotsDayQuerySchema,
              description="Every slot start inside the doctor's working hours (`hours`, in CLINIC_TIMEZONE) on "
                          "that day (default today), in order, past ones left out; `free` is false while a "
                          "waiting, in-consultation or completed appointment holds it. A doctor without hours "
                          "has `slots: []` (any future time can be booked). On a day the clocks change, a time "
                          "that does not exist is skipped and one that happens twice is offered once.",
              examples={200: {"doctorId": DOCTOR_ID, "date": "2026-11-23", "slotMinutes": 15, "slots": [
                  {"start": "2026-11-23T09:00:00Z", "free": False}, {"start": "2026-11-23T09:15:00Z", "free": True}]}}),

    # -- appointments ----------------------------------------------------------------------------------
    Operation("/api/appointments", "post", "Book an appointment", "appointments", (201, AppointmentSchema),
              rule="appointments.book",
              body=AppointmentCreateSchema,
              headers=(IDEMPOTENCY_KEY_HEADER,),
              errors={400: "Also `outside_hours`: the doctor has working hours and `date` is not one of its slot "
                           "starts (`details.date` says why).",
                      404: "The doctor does not exist.",
                      409: "A waiting appointment with this doctor exists (`already_booked`), the slot is taken "
                           "(`slot_taken`; of patients racing for one slot exactly one gets it), or the "
                           "Idempotency-Key was used with another body (`idempotency_mismatch`)."},
              examples={"request": {"patientName": "Pat Patient", "patientEmail": "pat@example.org",
                                    "patientPhone": "+1 555 0199", "doctor": DOCTOR_ID,
                                    "date": "2026-11-23T10:20:00Z", "reason": "Follow-up"},
                        201: APPOINTMENT, 400: ERROR_EXAMPLE}),
    Operation("/api/appointments", "get", "All appointments, paged", "appointments", (200, r.AppointmentPageSchema),
              rule="appointments.list",
              query=AppointmentListQuerySchema),
    Operation("/api/appointments/my", "get", "My appointments, newest first", "appointments",
              (200, Many(AppointmentSchema)), rule="appointments.mine", auth=("patient",)),
    Operation("/api/appointments/doctor/{doctorId}", "get", "A doctor's waiting appointments, in queue order",
              "appointments", (200, Many(AppointmentSchema)),
              rule="appointments.of_doctor", relation_rule="admins, or that doctor"),
    Operation("/api/appointments/{appointmentId}", "get", "One appointment", "appointments", (200, AppointmentSchema),
              rule="appointments.get",
              examples={200: APPOINTMENT}),
    Operation("/api/appointments/{appointmentId}", "patch", "Reschedule a waiting appointment, or edit its reason",
              "appointments", (200, AppointmentSchema), rule="appointments.reschedule",
              body=AppointmentRescheduleSchema, headers=(IDEMPOTENCY_KEY_HEADER,),
              errors={400: "The new `date` breaks a booking's rules: not in the future, over a year ahead, or not "
                           "one of the doctor's slot starts (`outside_hours`).",
                      403: "`reason` sent by anyone but the appointment's patient (`reason_owner_only`).",
                      409: "The appointment is not waiting (`not_waiting`), the new slot is taken (`slot_taken`), "
                           "or the Idempotency-Key was used with another body (`idempotency_mismatch`)."},
              description="The appointment moves into the queue of its new day as one change for every watcher "
                          "of either queue; its old slot is free at once; its room gets a `queue:update` with "
                          "the new `date`. The same date again answers 200 and changes nothing. A reschedule by "
                          "its doctor or an admin is audited (`appointment.rescheduled`).",
              examples={"request": {"date": "2026-11-24T09:30:00Z"}}),
    Operation("/api/appointments/{appointmentId}/status", "patch", "Change an appointment's status", "appointments",
              (200, AppointmentSchema), rule="appointments.set_status", body=AppointmentStatusSchema,
              errors={409: "Not allowed from its status (`invalid_transition`), or the doctor already has "
                           "someone in consultation."},
              examples={"request": {"status": "confirmed"}}),

    # -- queue -----------------------------------------------------------------------------------------
    Operation("/api/queue/doctor/{doctorId}", "get", "A doctor's queue for one clinic day", "queue",
              (200, AnyOf((r.StaffQueueStateSchema, r.PublicQueueStateSchema))),
              rule="queue.of_doctor", query=DayQuerySchema,
              description="Names only for that doctor and admins; anyone else sees positions and times, and "
                          "their own appointments marked `mine`.",
              examples={200: PUBLIC_QUEUE}),
    Operation("/api/queue/appointment/{appointmentId}/position", "get", "An appointment's place and ETA", "queue",
              (200, QueuePositionSchema), rule="queue.position", examples={200: POSITION}),

    # -- the clinic over weeks ---------------------------------------------------------------------------
    Operation("/api/reports/days", "get", "Clinic days in numbers, one row per day per doctor", "reports",
              (200, Many(ReportDaySchema)), rule="reports.days", query=DaysReportQuerySchema,
              also=(Raw("text/csv", {"type": "string", "description": "With `Accept: text/csv`: a header line "
                                     "`" + ",".join(CSV_COLUMNS) + "`, then the same rows (null → empty)."}),),
              errors={404: "`doctor` names no doctor, or a doctor account has no doctor profile."},
              description="Days with no appointment have no row; oldest first. A doctor reads their own days "
                          "(`doctor` omitted or their own id); an admin any doctor's or, without `doctor`, all.",
              examples={200: [{"date": "2026-11-23", "doctorId": DOCTOR_ID, "doctorName": "Dr. Ada Lovelace",
                               "booked": 14, "completed": 9, "noShows": 1, "cancelled": 1, "meanWaitMinutes": 6.5,
                               "p90WaitMinutes": 14.0, "meanConsultMinutes": 11.2, "etaMaeMinutes": 3.1,
                               "etaScored": 8, "etaRange": {"early": 1, "inside": 6, "late": 1}}]}),

    # -- notifications ---------------------------------------------------------------------------------
    Operation("/api/push/key", "get", "The VAPID application server key for Web Push", "notifications",
              (200, PushKeySchema), rule="push.key",
              errors={503: "Web Push is not configured on this server (`push_unavailable`)."},
              description="Base64url of the uncompressed P-256 public key: `applicationServerKey` of "
                          "`PushManager.subscribe`."),
    Operation("/api/push/subscriptions", "post", "Register this browser's push subscription", "notifications",
              (201, CreatedIdSchema), rule="push.subscribe", body=PushSubscriptionSchema,
              errors={400: "Also an endpoint the server may not send to (`url_not_allowed`): not https, or "
                           "not a public address.",
                      409: "The user has 10 subscriptions already (`too_many_subscriptions`).",
                      503: "Web Push is not configured on this server (`push_unavailable`)."},
              description="The browser's `PushSubscription.toJSON()`. The same endpoint again answers `200` with "
                          "the same id (keys refreshed). Pushed: `turn:soon`, `turn:now`, `delay`, encrypted "
                          "(`aes128gcm`), never a name, a reason or the join link. Their title and body are in "
                          "the language the request's `Accept-Language` asks for (`en`, `fr`; else English).",
              examples={"request": {"endpoint": "https://push.example.net/send/abc", "expirationTime": None,
                                    "keys": {"p256dh": "B" + "A" * 86, "auth": "A" * 22}},
                        201: {"id": "6563a1c0c2b1e4a7d9f00091"}}),
    Operation("/api/push/subscriptions/{subscriptionId}", "delete", "Remove a push subscription", "notifications",
              (204, None), rule="push.unsubscribe",
              description="Only its owner; anyone else's answers `404` as if it did not exist."),
    Operation("/api/admin/webhooks", "post", "Register a webhook (Standard Webhooks)", "admin",
              (201, WebhookCreatedSchema), rule="webhooks.create", body=WebhookCreateSchema,
              errors={400: "Also a URL the server may not send to (`url_not_allowed`)."},
              description="`secret` (`whsec_` + base64) is in this answer only: each delivery is signed "
                          "`webhook-signature: v1,<HMAC-SHA256>` over `{webhook-id}.{webhook-timestamp}.{body}`.",
              examples={"request": {"url": "https://sms.clinic.example/hooks/medpharma",
                                    "events": ["appointment.soon", "appointment.called"],
                                    "description": "SMS gateway"}}),
    Operation("/api/admin/webhooks", "get", "List webhooks (never their secrets)", "admin",
              (200, Many(WebhookSchema)), rule="webhooks.list"),
    Operation("/api/admin/webhooks/{webhookId}", "delete", "Delete a webhook", "admin", (204, None),
              rule="webhooks.delete", description="Its pending deliveries end as `failed`."),
    Operation("/api/admin/webhooks/{webhookId}/deliveries", "get", "A webhook's deliveries, newest first", "admin",
              (200, r.DeliveryPageSchema), rule="webhooks.deliveries", query=DeliveryQuerySchema),
)
