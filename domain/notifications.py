"""Notifications: who may subscribe and manage webhooks, and which changes become which deliveries.

Where the moments come from:
- a committed write (`domain.publish.appointments_changed` calls `appointments_changed` before it
  publishes): `appointment.booked`, `.cancelled`, `.no_show`, `.completed`, and `.called` with the
  push `turn:now`. Other workflows name theirs with `notify_appointment_event` (issue 26's
  `appointment.rescheduled`). The deliveries are written before the workflow answers.
- a followed doctor's actor (the queue's estimates): `turn:soon` / `appointment.soon` and
  `delay` / `appointment.delayed`, queued by the actor and planned by `keep_planning`. Several nodes
  may each notice the same moment: the store decides once (`NotifyRecords.open_soon`, `grow_delay`)
  and the deterministic delivery ids make a repeat a no-op.

A doctor is *followed* (its queue kept live and ticking, `QueueRegistry.follow`) while one of its
waiting patients has a push subscription, or while a webhook wants queue events.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from core.access import Principal
from core.doctors import DELAY_NOTICE_MINUTES
from core.notify_events import WEBHOOK_EVENTS
from core.errors import Conflict, NotFound, ApiError
from core.languages import DEFAULT as DEFAULT_LANGUAGE
from core.policy import guarded
from core.statuses import CANCELLED, COMPLETED, IN_CONSULTATION, NO_SHOW, PENDING, WAITING
from core.values import format_utc, to_object_id
from domain import audit
from domain.push_texts import push_text
from infra.notify.records import delivery_id
from infra.notify.url_guard import check_url
from infra.notify.webhooks import new_secret

log = logging.getLogger("medpharma.notify")

QUEUE_EVENTS = ("appointment.soon", "appointment.called", "appointment.delayed")  # need a live queue
PUSH_OF_EVENT = {"appointment.soon": "turn:soon", "appointment.called": "turn:now", "appointment.delayed": "delay"}
EVENT_OF_STATUS = {CANCELLED: "appointment.cancelled", NO_SHOW: "appointment.no_show",
                   COMPLETED: "appointment.completed", IN_CONSULTATION: "appointment.called"}
CALLED_PUSH_TTL = timedelta(minutes=10)  # a called patient has minutes, not hours, to join


class PushUnavailable(ApiError):
    status = 503
    code = "push_unavailable"
    message = "Web Push is not configured on this server (VAPID_PRIVATE_KEY)."


# -- Web Push subscriptions -------------------------------------------------------------------------
@guarded("push.key")
def push_key(services, principal: Principal | None) -> str:
    keys = services.notifier.keys
    if keys is None:
        raise PushUnavailable()
    return keys.public_key


@guarded("push.subscribe")
async def subscribe(services, principal: Principal, body: dict, language: str = DEFAULT_LANGUAGE) -> tuple[dict, bool]:
    """Saves the browser's subscription (the same endpoint again refreshes its keys and language);
    its endpoint must be a public https address. Its pushes are written in `language` (the app's,
    sent as `Accept-Language`). The patient's waiting queues become followed."""
    notifier = services.notifier
    if notifier.keys is None:
        raise PushUnavailable()
    await check_url(body["endpoint"], notifier.allow, field="endpoint")
    user_id = to_object_id(principal.user_id)
    try:
        subscription, created = await notifier.records.save_subscription(user_id, body, services.clock(), language)
    except LookupError:
        raise Conflict("You have 10 push subscriptions already; remove one first.",
                       code="too_many_subscriptions") from None
    for appointment in await services.store.appointments_of_patient(user_id):
        if appointment["status"] in WAITING:
            await services.queues.follow(str(appointment["doctor"]))
    return subscription, created


@guarded("push.unsubscribe")
async def unsubscribe(services, principal: Principal, subscription_id: str) -> None:
    """Only its owner: anyone else's is "not found", as if it did not exist."""
    if not await services.notifier.records.delete_subscription(to_object_id(subscription_id),
                                                               to_object_id(principal.user_id)):
        raise NotFound("Push subscription not found.")


async def forget_devices(services, user_id) -> int:
    """Every push subscription of an account that was disabled or deleted; returns how many."""
    notifier = getattr(services, "notifier", None)
    if notifier is None:
        return 0
    return await notifier.records.delete_subscriptions_of(user_id)


# -- webhooks -----------------------------------------------------------------------------------------
@guarded("webhooks.create")
async def create_webhook(services, admin: Principal, body: dict) -> dict:
    notifier = services.notifier
    await check_url(body["url"], notifier.allow)
    document = {"url": body["url"], "events": sorted(set(body["events"]), key=WEBHOOK_EVENTS.index),
                "description": body.get("description") or "", "secret": new_secret(),
                "createdAt": services.clock(), "createdBy": to_object_id(admin.user_id)}
    webhook = await notifier.records.insert_webhook(document)
    await audit.record(services, admin, "webhook.created", str(webhook["_id"]), url=webhook["url"])
    if set(webhook["events"]) & set(QUEUE_EVENTS):
        await follow_every_queue(services)
    return webhook


@guarded("webhooks.list")
async def list_webhooks(services, admin: Principal) -> list[dict]:
    return await services.notifier.records.list_webhooks()


@guarded("webhooks.delete")
async def delete_webhook(services, admin: Principal, webhook_id: str) -> None:
    if not await services.notifier.records.delete_webhook(to_object_id(webhook_id), services.clock()):
        raise NotFound("Webhook not found.")
    await audit.record(services, admin, "webhook.deleted", webhook_id)


@guarded("webhooks.deliveries")
async def webhook_deliveries(services, admin: Principal, webhook_id: str, params: dict) -> tuple[list[dict], int]:
    records = services.notifier.records
    oid = to_object_id(webhook_id)
    if await records.find_webhook(oid) is None:
        raise NotFound("Webhook not found.")
    return await records.page_deliveries(oid, params.get("status"), params["limit"], params["offset"])


# -- from committed writes -------------------------------------------------------------------------------
async def appointments_changed(services, doctor_id: str, documents: tuple[dict, ...]) -> None:
    """The notifications of one write step, written before it is published; a waiting appointment
    that someone will want to hear about keeps its doctor's queue followed."""
    if getattr(services, "notifier", None) is None:  # eta-replay, tools
        return
    for document in documents:
        event = event_of(document)
        if event is not None:
            await notify_appointment_event(services, event, document)
        if (document["status"] in WAITING and doctor_id not in services.queues.followed
                and await _wants_queue_events(services, document)):  # followed already: no read
            await services.queues.follow(doctor_id)


async def appointment_moved(services, appointment: dict) -> None:
    """A reschedule: `appointment.rescheduled`, and what was told of its delay no longer counts."""
    if getattr(services, "notifier", None) is None:
        return
    await services.notifier.records.forget_delay(str(appointment["_id"]))
    await notify_appointment_event(services, "appointment.rescheduled", appointment)


def event_of(document: dict) -> str | None:
    if document["status"] == PENDING and document.get("version", 0) == 0:
        return "appointment.booked"
    return EVENT_OF_STATUS.get(document["status"])


async def _wants_queue_events(services, appointment: dict) -> bool:
    records = services.notifier.records
    if await records.subscriptions_of(appointment["patient"]):
        return True
    return any(set(w["events"]) & set(QUEUE_EVENTS) for w in await records.list_webhooks())


async def notify_appointment_event(services, event: str, appointment: dict, *, discriminator: str | None = None,
                                   extra: dict | None = None, push_extra: dict | None = None) -> int:
    """Writes the deliveries of one appointment event (webhooks subscribed to it, and for the three
    queue events the patient's push subscriptions) and wakes the worker; returns how many were new.
    `discriminator` tells two occurrences of the same event apart (default: the appointment's
    version, so the same write announced twice is delivered once). `push_extra` (default `extra`)
    is what the push's words may use (`etaMinutes`, `delayMinutes`, `expectedStartAt`)."""
    notifier = getattr(services, "notifier", None)
    if notifier is None:
        return 0
    records = notifier.records
    now = services.clock()
    appointment_id = str(appointment["_id"])
    disc = discriminator if discriminator is not None else (
        "once" if event in EVENT_OF_STATUS.values() else str(appointment.get("version", 0)))
    created = 0
    webhooks = await records.webhooks_for(event)
    if webhooks:
        doctor = await services.store.find_doctor(appointment["doctor"])
        body = json.dumps({"type": event, "timestamp": format_utc(now), "data": {
            "appointment": notifier.render_appointment(appointment),
            "doctor": {"id": str(appointment["doctor"]), "name": doctor["name"] if doctor else None},
            **(extra or {})}}, separators=(",", ":"))
        for webhook in webhooks:
            created += await records.create_delivery({
                "_id": delivery_id("webhook", str(webhook["_id"]), event, appointment_id, disc),
                "channel": "webhook", "target": webhook["_id"], "event": event, "appointmentId": appointment_id,
                "body": body, "createdAt": now, "changedAt": now, "nextAttemptAt": now})
    push_type = PUSH_OF_EVENT.get(event)
    if push_type is not None and notifier.keys is not None:
        messages: dict[str, dict] = {}  # one per language
        for subscription in await records.subscriptions_of(appointment["patient"]):
            language = subscription.get("lang", DEFAULT_LANGUAGE)
            if language not in messages:
                messages[language] = push_message(push_type, appointment_id, push_extra or extra or {}, now, language)
            message = messages[language]
            created += await records.create_delivery({
                "_id": delivery_id("push", str(subscription["_id"]), push_type, appointment_id, disc),
                "channel": "push", "target": subscription["_id"], "event": push_type,
                "appointmentId": appointment_id, "payload": message["payload"], "urgency": message["urgency"],
                "expiresAt": message["expiresAt"], "createdAt": now, "changedAt": now, "nextAttemptAt": now})
    if created:
        notifier.worker.wake()
    return created


def push_message(push_type: str, appointment_id: str, extra: dict, now: datetime,
                 language: str = DEFAULT_LANGUAGE) -> dict:
    """The encrypted payload's JSON: type, appointment id, a title and a body in `language`, the
    waiting room's path. Never the join link, a name or a reason (a lock screen shows it to whoever
    holds the phone)."""
    expected = _parse(extra.get("expectedStartAt"))
    if push_type == "turn:now":
        (title, body), expires, urgency = push_text(language, "turn:now"), now + CALLED_PUSH_TTL, "high"
    elif push_type == "turn:soon":
        minutes = extra.get("etaMinutes")
        title, body = (push_text(language, "turn:soon", minutes=minutes) if minutes
                       else push_text(language, "turn:soon:next"))
        expires, urgency = max(expected or now, now), "normal"
    else:
        title, body = push_text(language, "delay", minutes=extra.get("delayMinutes", 0))
        expires, urgency = max(expected or now, now), "normal"
    payload = {"type": push_type, "appointmentId": appointment_id, "title": title, "body": body,
               "url": f"/app/waiting/{appointment_id}"}
    return {"payload": payload, "expiresAt": expires, "urgency": urgency}


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


# -- from the queues (followed doctors' actors) ------------------------------------------------------------
async def keep_planning(services) -> None:
    """Turns the moments the actors queued into deliveries, one at a time, forever."""
    notifier = services.notifier
    while True:
        doctor_id, kind, appointment_id, data, _at = await notifier.events.get()
        await notifier.settled()  # the moment came with a fan-out: the sockets are written first
        try:
            await plan_queue_moment(services, kind, appointment_id, data)
        except Exception:
            log.warning("a queue notification could not be planned", exc_info=True,
                        extra={"appointmentId": appointment_id, "kind": kind})


async def plan_queue_moment(services, kind: str, appointment_id: str, data: dict) -> None:
    records = services.notifier.records
    if kind == "soon:over":
        await records.close_soon(appointment_id, services.clock())
        return
    if kind == "turn:soon":
        episode = await records.open_soon(appointment_id, services.clock())
        if episode is None:
            return
        event, disc = "appointment.soon", f"soon-{episode}"
        extra = {key: data[key] for key in ("position", "expectedStartAt", "etaMinutes") if key in data}
    elif kind == "delay":
        delay = int(data["delayMinutes"])
        if not await records.grow_delay(appointment_id, delay, DELAY_NOTICE_MINUTES, services.clock()):
            return
        event, disc = "appointment.delayed", f"delay-{delay}"
        extra = {key: data[key] for key in ("position", "expectedStartAt", "delayMinutes") if key in data}
    else:
        return
    appointment = await services.store.find_appointment(to_object_id(appointment_id))
    if appointment is None or appointment["status"] not in WAITING:
        return
    webhook_extra = {key: value for key, value in extra.items() if key != "etaMinutes"}
    await notify_appointment_event(services, event, appointment, discriminator=disc, extra=webhook_extra,
                                   push_extra=extra)


# -- start-up --------------------------------------------------------------------------------------------
async def follow_every_queue(services) -> None:
    for doctor in await services.store.list_doctors():
        if await services.store.doctor_has_active_appointments(doctor["_id"]):
            await services.queues.follow(str(doctor["_id"]))


async def follow_on_start(services) -> None:
    """After a restart: the queues someone wants to hear about become followed again."""
    records = services.notifier.records
    if any(set(w["events"]) & set(QUEUE_EVENTS) for w in await records.list_webhooks()):
        await follow_every_queue(services)
        return
    for user_id in await records.subscribed_user_ids():
        for appointment in await services.store.appointments_of_patient(user_id):
            if appointment["status"] in WAITING:
                await services.queues.follow(str(appointment["doctor"]))
