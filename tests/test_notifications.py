"""Notifications (issue 23): Web Push and webhooks, played on loopback and checked as they arrive.

The push service and the webhook receiver are `tests.notify_support.Receiver`; the server under test
allows its host with NOTIFY_ALLOW_HOSTS. What arrives is verified with independent code: the VAPID
JWT with PyJWT against the public key the API publishes, the payload decrypted with the browser's
keys (http_ece), the webhook signature with the Standard Webhooks reference library.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

import pytest
from bson import ObjectId
from standardwebhooks import Webhook

from core import metrics
from infra.notify.sender import Sender
from infra.notify.url_guard import AllowList, GuardedResolver, UrlNotAllowed, check_url
from infra.store import Store
from tests.conftest import FakeClock, eventually, future, start_harness, stop_harness
from tests.notify_support import BrowserSubscription, Receiver, b64url_decode, vapid_claims


@pytest.fixture
async def receiver():
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
async def notify(receiver):
    h = await start_harness(settings={"notify_allow_hosts": (receiver.host,)})
    try:
        yield h
    finally:
        await stop_harness(h)


async def clinic(h):
    admin = await h.admin_token()
    doctor = await h.create_doctor(admin, avgConsultMinutes=10)
    doctor_token, _ = await h.doctor_account(doctor, admin)
    return admin, doctor, doctor_token


async def subscribe(h, token, receiver, path="/push/1"):
    browser = BrowserSubscription.make(receiver.url(path))
    response = await h.api.post("/api/push/subscriptions", browser.to_json(), token=token)
    assert response.status == 201, response.body
    return browser, response.body["id"]


async def create_webhook(h, admin, receiver, events, path="/hook"):
    response = await h.api.post("/api/admin/webhooks", {"url": receiver.url(path), "events": events,
                                                        "description": "SMS gateway"}, token=admin)
    assert response.status == 201, response.body
    return response.body


def counted(channel: str, outcome: str) -> float:
    return metrics.notifications_total.labels(channel, outcome)._value.get()


# -- Web Push ---------------------------------------------------------------------------------------
async def test_the_push_key_is_a_public_p256_point(notify):
    response = await notify.api.get("/api/push/key")
    assert response.status == 200
    point = b64url_decode(response.body["publicKey"])
    assert len(point) == 65 and point[0] == 4


async def test_a_subscription_is_saved_once_per_endpoint_and_at_most_ten_per_user(notify, receiver):
    token, _ = await notify.register()
    browser = BrowserSubscription.make(receiver.url("/push/same"))
    first = await notify.api.post("/api/push/subscriptions", browser.to_json(), token=token)
    again = await notify.api.post("/api/push/subscriptions", browser.to_json(), token=token)
    assert (first.status, again.status) == (201, 200) and first.body["id"] == again.body["id"]
    for i in range(9):
        await subscribe(notify, token, receiver, f"/push/{i}")
    eleventh = await notify.api.post("/api/push/subscriptions",
                                     BrowserSubscription.make(receiver.url("/push/x")).to_json(), token=token)
    assert (eleventh.status, eleventh.body["code"]) == (409, "too_many_subscriptions")


async def test_two_subscribes_racing_past_the_count_still_leave_at_most_ten(notify, receiver, monkeypatch):
    """The cap is counted before the insert; two browsers of one user subscribing at the same moment
    both count nine. The later insert sees itself beyond the tenth and takes itself back."""
    token, _ = await notify.register()
    for i in range(10):
        await subscribe(notify, token, receiver, f"/push/{i}")
    subscriptions = notify.services.notifier.records.subscriptions
    real_count = subscriptions.count_documents

    async def counted_before_the_other_insert(query, *args, **kwargs):
        return min(await real_count(query, *args, **kwargs), 9)

    monkeypatch.setattr(subscriptions, "count_documents", counted_before_the_other_insert)
    late = await notify.api.post("/api/push/subscriptions",
                                 BrowserSubscription.make(receiver.url("/push/late")).to_json(), token=token)
    assert (late.status, late.body["code"]) == (409, "too_many_subscriptions")
    assert await real_count({}) == 10
    assert await subscriptions.find_one({"endpoint": receiver.url("/push/late")}) is None


async def test_disabling_or_deleting_an_account_forgets_its_push_subscriptions(notify, receiver):
    admin = await notify.admin_token()
    kept_token, _ = await notify.register()
    disabled_token, disabled = await notify.register()
    deleted_token, deleted = await notify.register()
    for token, path in ((kept_token, "/push/kept"), (disabled_token, "/push/d1"), (disabled_token, "/push/d2"),
                        (deleted_token, "/push/gone")):
        await subscribe(notify, token, receiver, path)
    subscriptions = notify.services.notifier.records.subscriptions
    answer = await notify.api.patch(f"/api/admin/users/{disabled['id']}", {"disabled": True}, token=admin)
    assert answer.status == 200
    assert (await notify.api.delete(f"/api/admin/users/{deleted['id']}", token=admin)).status == 204
    left = [s["endpoint"] for s in await subscriptions.find({}).to_list(None)]
    assert left == [receiver.url("/push/kept")]


async def test_only_the_owner_removes_a_subscription(notify, receiver):
    anonymous = await notify.api.post("/api/push/subscriptions", BrowserSubscription.make(receiver.url("/p")).to_json())
    assert anonymous.status == 401
    owner, _ = await notify.register()
    stranger, _ = await notify.register()
    _, subscription_id = await subscribe(notify, owner, receiver)
    assert (await notify.api.delete(f"/api/push/subscriptions/{subscription_id}", token=stranger)).status == 404
    assert (await notify.api.delete(f"/api/push/subscriptions/{subscription_id}")).status == 401
    assert (await notify.api.delete(f"/api/push/subscriptions/{subscription_id}", token=owner)).status == 204
    assert (await notify.api.delete(f"/api/push/subscriptions/{subscription_id}", token=owner)).status == 404


async def test_turn_now_is_pushed_encrypted_signed_and_without_the_join_link(notify, receiver):
    admin, doctor, doctor_token = await clinic(notify)
    token, _ = await notify.register()
    browser, _ = await subscribe(notify, token, receiver)
    appointment = await notify.book(token, doctor["id"], future(120))
    called = await notify.api.post(f"/api/doctors/{doctor['id']}/queue/next", token=doctor_token)
    assert called.status == 200, called.body
    key = (await notify.api.get("/api/push/key")).body["publicKey"]
    pushes = await receiver.wait_for("/push/1", 2)  # turn:soon (next in the queue), then turn:now
    messages = [browser.decrypt(p) for p in pushes]
    assert sorted(m["type"] for m in messages) == ["turn:now", "turn:soon"]
    now_push = next(p for p, m in zip(pushes, messages) if m["type"] == "turn:now")
    message = browser.decrypt(now_push)
    assert message == {"type": "turn:now", "appointmentId": appointment["id"], "title": message["title"],
                       "body": message["body"], "url": f"/app/waiting/{appointment['id']}"}
    assert "http" not in json.dumps(message) and "Pat" not in json.dumps(message)
    assert now_push.headers["urgency"] == "high" and 0 < int(now_push.headers["ttl"]) <= 600
    claims = vapid_claims(now_push, key)
    assert claims["aud"] == f"http://{receiver.host}" and claims["sub"].startswith("mailto:")


async def test_each_browser_hears_in_the_language_it_subscribed_in(notify, receiver):
    """The web app sends its language as Accept-Language; one patient's French phone and English
    laptop each get the push in their own words (same type, same appointment)."""
    admin, doctor, doctor_token = await clinic(notify)
    token, _ = await notify.register()
    browsers = {}
    for path, accept in (("/push/fr", "fr-CA,fr;q=0.9,en;q=0.5"), ("/push/en", "de-DE, en;q=0.8")):
        browser = BrowserSubscription.make(receiver.url(path))
        answer = await notify.api.post("/api/push/subscriptions", browser.to_json(), token=token,
                                       headers={"Accept-Language": accept})
        assert answer.status == 201, answer.body
        browsers[path] = browser
    appointment = await notify.book(token, doctor["id"], future(120))
    assert (await notify.api.post(f"/api/doctors/{doctor['id']}/queue/next", token=doctor_token)).status == 200
    heard = {}
    for path, browser in browsers.items():
        messages = [browser.decrypt(p) for p in await receiver.wait_for(path, 2)]
        heard[path] = {m["type"]: m for m in messages}
        assert {m["appointmentId"] for m in messages} == {appointment["id"]}
    assert heard["/push/fr"]["turn:now"]["title"] == "C'est votre tour"
    assert heard["/push/en"]["turn:now"]["title"] == "It's your turn"
    assert heard["/push/fr"]["turn:soon"]["title"] == "Votre tour approche"
    assert heard["/push/en"]["turn:soon"]["title"] == "Your turn is near"


@pytest.mark.parametrize("header, language", [
    (None, "en"), ("", "en"), ("fr", "fr"), ("FR-be", "fr"), ("de, fr;q=0.5, en;q=0.4", "fr"),
    ("en;q=0.3, fr;q=0.9", "fr"), ("fr;q=0, en", "en"), ("fr;q=oops, en", "en"), ("*", "en"),
    ("en-GB, fr", "en"), ("es, de", "en"),
])
def test_the_language_asked_for(header, language):
    from core.languages import preferred
    assert preferred(header) == language


async def test_turn_soon_is_pushed_with_a_ttl_bounded_by_the_expected_start(notify, receiver):
    _, doctor, _ = await clinic(notify)
    token, _ = await notify.register()
    browser, _ = await subscribe(notify, token, receiver)
    appointment = await notify.book(token, doctor["id"], future(5))  # next, and due within SOON_MINUTES
    [push] = await receiver.wait_for("/push/1")
    message = browser.decrypt(push)
    assert (message["type"], message["appointmentId"]) == ("turn:soon", appointment["id"])
    assert 0 < int(push.headers["ttl"]) <= 5 * 60
    assert push.headers["urgency"] == "normal"


async def test_notifications_wait_until_the_sockets_fan_out_is_written(notify, receiver):
    """The planner and the worker wait on `Notifier.settled` (the sockets' fan-out in progress written)
    before they plan or attempt anything: here the wait is held open, and nothing is planned or sent
    until it ends."""
    notifier = notify.services.notifier
    asked, release = asyncio.Event(), asyncio.Event()

    async def fan_out_in_progress() -> None:
        asked.set()
        await release.wait()

    notifier.settled = notifier.worker.settled = fan_out_in_progress
    _, doctor, _ = await clinic(notify)
    token, _ = await notify.register()
    browser, _ = await subscribe(notify, token, receiver)
    appointment = await notify.book(token, doctor["id"], future(5))  # due within SOON_MINUTES: turn:soon
    await asyncio.wait_for(asked.wait(), 10)
    assert await notifier.records.deliveries.count_documents({"event": "turn:soon"}) == 0
    assert receiver.at("/push/1") == []
    release.set()
    [push] = await receiver.wait_for("/push/1")
    assert browser.decrypt(push)["appointmentId"] == appointment["id"]


async def test_what_was_told_and_delivered_expires_from_the_store(notify, receiver):
    """Deliveries and the per-appointment state (soon told, delay told) carry the date a TTL index
    counts from, so neither collection grows for ever."""
    _, doctor, _ = await clinic(notify)
    token, _ = await notify.register()
    await subscribe(notify, token, receiver)
    appointment = await notify.book(token, doctor["id"], future(5))
    await receiver.wait_for("/push/1")
    records = notify.services.notifier.records
    state = await records.state.find_one({"_id": appointment["id"]})
    assert state["soonOpen"] is True and isinstance(state["touchedAt"], datetime)
    month = 30 * 86400
    for collection, name, key in ((records.state, "state_expire", "touchedAt"),
                                  (records.deliveries, "deliveries_expire", "createdAt")):
        index = (await collection.index_information())[name]
        assert index["key"] == [(key, 1)] and index["expireAfterSeconds"] == month


async def test_a_gone_subscription_is_removed(notify, receiver):
    _, doctor, doctor_token = await clinic(notify)
    token, _ = await notify.register()
    receiver.script["/push/1"] = [410]
    _, subscription_id = await subscribe(notify, token, receiver)
    gone_before = counted("push", "gone")
    await notify.book(token, doctor["id"], future(5))
    await receiver.wait_for("/push/1")
    records = notify.services.notifier.records
    await eventually(lambda: _missing(records, subscription_id), "the subscription is removed")
    assert counted("push", "gone") == gone_before + 1


async def _missing(records, subscription_id):
    return await records.find_subscription(ObjectId(subscription_id)) is None


# -- webhooks ---------------------------------------------------------------------------------------------
async def test_webhook_secret_is_shown_once_and_the_signature_verifies(notify, receiver):
    admin, doctor, doctor_token = await clinic(notify)
    hook = await create_webhook(notify, admin, receiver, ["appointment.booked", "appointment.called"])
    assert hook["secret"].startswith("whsec_")
    listed = await notify.api.get("/api/admin/webhooks", token=admin)
    assert listed.status == 200 and [w["id"] for w in listed.body] == [hook["id"]]
    assert "secret" not in listed.body[0] and hook["secret"] not in listed.text
    token, _ = await notify.register()
    appointment = await notify.book(token, doctor["id"], future(60))
    await notify.api.post(f"/api/doctors/{doctor['id']}/queue/next", token=doctor_token)
    booked, called = await receiver.wait_for("/hook", 2)
    verifier = Webhook(hook["secret"])
    bodies = sorted((verifier.verify(r.body, r.headers) for r in (booked, called)), key=lambda b: b["type"])
    assert [b["type"] for b in bodies] == ["appointment.booked", "appointment.called"]
    assert bodies[0]["data"]["appointment"]["id"] == appointment["id"]
    assert bodies[0]["data"]["appointment"]["patientEmail"] == "pat@example.org"
    assert bodies[0]["data"]["doctor"] == {"id": doctor["id"], "name": doctor["name"]}
    assert bodies[1]["data"]["appointment"]["joinUrl"].startswith("https://")
    deliveries = await notify.api.get(f"/api/admin/webhooks/{hook['id']}/deliveries", token=admin)
    assert deliveries.body["total"] == 2
    assert {d["status"] for d in deliveries.body["items"]} == {"delivered"}


async def test_retries_carry_the_same_webhook_id_and_keep_one_kilobyte_of_the_answer(notify, receiver):
    admin, doctor, _ = await clinic(notify)
    hook = await create_webhook(notify, admin, receiver, ["appointment.booked"])
    receiver.script["/hook"] = [500, 302, 200]
    token, _ = await notify.register()
    await notify.book(token, doctor["id"], future(60))
    await receiver.wait_for("/hook", 1)
    path = f"/api/admin/webhooks/{hook['id']}/deliveries"
    first = await eventually(lambda: _delivery(notify, admin, path, lambda d: d["attempts"] == 1), "first attempt")
    assert first["status"] == "pending" and first["lastStatusCode"] == 500 and len(first["lastError"]) <= 1024
    for attempt in (2, 3):
        notify.clock.advance(minutes=3)  # past the back-off (5 s, then 30 s)
        notify.services.notifier.worker.wake()
        await receiver.wait_for("/hook", attempt)
        await eventually(lambda: _delivery(notify, admin, path, lambda d: d["attempts"] == attempt),
                         f"attempt {attempt} recorded")
    delivered = await eventually(lambda: _delivery(notify, admin, path, lambda d: d["status"] == "delivered"),
                                 "delivered")
    assert delivered["attempts"] == 3
    ids = {r.headers["webhook-id"] for r in receiver.at("/hook")}
    assert ids == {delivered["id"]}
    assert len(receiver.at("/hook")) == 3  # the 302 was not followed


async def _delivery(h, admin, path, predicate):
    page = await h.api.get(path, token=admin)
    return next((d for d in page.body["items"] if predicate(d)), None)


async def test_a_restart_in_the_middle_of_the_retries_still_delivers(receiver):
    store = Store.connect(None, "medpharma_restart")
    clock = FakeClock()
    first = await start_harness(settings={"notify_allow_hosts": (receiver.host,), "mongo_db": "medpharma_restart"},
                                store=store, clock=clock)
    admin, doctor, _ = await clinic(first)
    hook = await create_webhook(first, admin, receiver, ["appointment.booked"])
    receiver.script["/hook"] = [503, 200]
    token, _ = await first.register()
    await first.book(token, doctor["id"], future(60))
    await receiver.wait_for("/hook", 1)
    path = f"/api/admin/webhooks/{hook['id']}/deliveries"
    await eventually(lambda: _delivery(first, admin, path, lambda d: d["attempts"] == 1), "first attempt recorded")
    await stop_harness(first)
    clock.advance(minutes=1)
    second = await start_harness(settings={"notify_allow_hosts": (receiver.host,), "mongo_db": "medpharma_restart"},
                                 store=store, clock=clock)
    try:
        await receiver.wait_for("/hook", 2)
        admin = await second.admin_token()
        delivered = await eventually(lambda: _delivery(second, admin, path, lambda d: d["status"] == "delivered"),
                                     "delivered after the restart")
        assert {r.headers["webhook-id"] for r in receiver.at("/hook")} == {delivered["id"]}
    finally:
        await stop_harness(second)


async def test_deleting_a_webhook_ends_its_deliveries_and_its_listing(notify, receiver):
    admin, _, _ = await clinic(notify)
    hook = await create_webhook(notify, admin, receiver, ["appointment.booked"])
    assert (await notify.api.delete(f"/api/admin/webhooks/{hook['id']}", token=admin)).status == 204
    assert (await notify.api.get(f"/api/admin/webhooks/{hook['id']}/deliveries", token=admin)).status == 404
    assert (await notify.api.delete(f"/api/admin/webhooks/{hook['id']}", token=admin)).status == 404


async def test_only_admins_manage_webhooks(notify, receiver):
    admin, doctor, doctor_token = await clinic(notify)
    patient, _ = await notify.register()
    body = {"url": receiver.url("/hook"), "events": ["appointment.booked"]}
    for token in (patient, doctor_token):
        assert (await notify.api.post("/api/admin/webhooks", body, token=token)).status == 403
        assert (await notify.api.get("/api/admin/webhooks", token=token)).status == 403
    assert (await notify.api.post("/api/admin/webhooks", body)).status == 401
    hook = await create_webhook(notify, admin, receiver, ["appointment.booked"])
    for token in (patient, doctor_token):
        assert (await notify.api.delete(f"/api/admin/webhooks/{hook['id']}", token=token)).status == 403
        assert (await notify.api.get(f"/api/admin/webhooks/{hook['id']}/deliveries", token=token)).status == 403


async def test_webhook_bodies_are_validated(notify, receiver):
    admin, _, _ = await clinic(notify)
    for body in ({"url": receiver.url("/h"), "events": []}, {"url": receiver.url("/h"), "events": ["nope"]},
                 {"url": receiver.url("/h")}, {"url": receiver.url("/h"), "events": ["appointment.booked"], "x": 1}):
        response = await notify.api.post("/api/admin/webhooks", body, token=admin)
        assert response.status == 400, body


# -- where the server may send ------------------------------------------------------------------------------
FORBIDDEN = ["https://127.0.0.1/hook", "https://10.1.2.3/hook", "https://192.168.0.10/hook", "https://172.16.5.4/x",
             "https://169.254.169.254/latest/meta-data/", "https://[::1]/hook", "https://[fe80::1]/hook",
             "https://[fc00::1]/hook", "https://[::ffff:127.0.0.1]/hook", "https://0.0.0.0/hook",
             "https://224.0.0.1/hook", "https://2130706433/hook", "https://0x7f.1/hook", "https://localhost/hook",
             "http://93.184.216.34/hook", "ftp://93.184.216.34/hook", "https://user:pw@93.184.216.34/hook",
             "https://100.64.0.1/hook", "not a url", "https:///nohost"]


@pytest.mark.parametrize("url", FORBIDDEN)
async def test_every_forbidden_url_form_is_refused(url):
    with pytest.raises(UrlNotAllowed):
        await check_url(url, AllowList.of(["127.0.0.1:9"]))


async def test_a_public_https_address_is_accepted_and_the_allow_list_is_per_port():
    assert (await check_url("https://93.184.216.34/hook", AllowList())).host == "93.184.216.34"
    assert (await check_url("http://127.0.0.1:9/x", AllowList.of(["127.0.0.1:9"]))).allowed
    with pytest.raises(UrlNotAllowed):
        await check_url("http://127.0.0.1:10/x", AllowList.of(["127.0.0.1:9"]))


async def test_the_api_refuses_forbidden_endpoints_and_webhook_urls(notify, receiver):
    admin, _, _ = await clinic(notify)
    token, _ = await notify.register()
    other_port = f"http://127.0.0.1:{receiver.port + 1}/hook"
    for url in ("https://127.0.0.1/hook", "https://[::1]/hook", "https://localhost/x", "http://93.184.216.34/x",
                other_port):
        hook = await notify.api.post("/api/admin/webhooks", {"url": url, "events": ["appointment.booked"]},
                                     token=admin)
        assert (hook.status, hook.body["code"]) == (400, "url_not_allowed"), url
        push = await notify.api.post("/api/push/subscriptions", BrowserSubscription.make(url).to_json(), token=token)
        assert (push.status, push.body["code"]) == (400, "url_not_allowed"), url


async def test_the_send_time_resolver_refuses_a_name_that_now_resolves_to_a_private_address(receiver):
    """DNS can change after registration: the connection's own resolver checks again."""
    resolver = GuardedResolver(allow=AllowList())
    with pytest.raises(UrlNotAllowed):
        await resolver.resolve("localhost", receiver.port)
    sender = Sender(AllowList.of([f"localhost:{receiver.port + 1}"]))  # allows another port only
    try:
        answer = await sender.post(f"https://localhost:{receiver.port}/hook", {}, b"{}")
    finally:
        sender.close()
    assert answer.refused and answer.status_code is None and receiver.received == []


# -- the worker never holds anything up ---------------------------------------------------------------------
async def test_a_slow_receiver_does_not_hold_up_the_api_or_other_receivers(receiver):
    slow = Receiver(delay=5.0).start()
    h = await start_harness(settings={"notify_allow_hosts": (receiver.host, slow.host)})
    try:
        admin, doctor, _ = await clinic(h)
        await create_webhook(h, admin, slow, ["appointment.booked"], path="/slow")
        await create_webhook(h, admin, receiver, ["appointment.booked"], path="/fast")
        token, _ = await h.register()
        await h.book(token, doctor["id"], future(60))
        await slow.wait_for("/slow")
        await receiver.wait_for("/fast")
        # the slow receiver has not answered yet: its delivery is still pending, the other's delivered
        hooks = (await h.api.get("/api/admin/webhooks", token=admin)).body
        states = {}
        for hook in hooks:
            page = await h.api.get(f"/api/admin/webhooks/{hook['id']}/deliveries", token=admin)
            states[hook["url"].rsplit("/", 1)[1]] = page.body["items"][0]["status"]
        assert states == {"slow": "pending", "fast": "delivered"}
        assert (await h.api.get("/healthz")).status == 200
    finally:
        await stop_harness(h)
        slow.stop()


# -- several nodes ------------------------------------------------------------------------------------------
async def test_two_nodes_deliver_each_event_once(receiver, redis_url):
    """Both nodes follow the doctor, so both queue replicas notice the same `turn:soon`; both workers
    compete for every delivery. Each event arrives once, with one webhook-id."""
    import uuid
    database = f"medpharma_notify_{uuid.uuid4().hex[:8]}"
    store = Store.connect(None, database)
    settings = {"redis_url": redis_url, "mongo_db": database, "notify_allow_hosts": (receiver.host,)}
    a = await start_harness(settings=settings, store=store)
    b = await start_harness(settings=settings, store=store)
    try:
        b.services.notifier.keys = a.services.notifier.keys  # one deployment, one VAPID key
        b.services.notifier.worker.keys = a.services.notifier.keys
        admin, doctor, _ = await clinic(a)
        hook = await create_webhook(a, admin, receiver, ["appointment.booked", "appointment.soon"])
        patients = [await (a if i % 2 else b).register() for i in range(6)]
        browser, _ = await subscribe(a, patients[0][0], receiver)
        for node in (a, b):
            await node.services.queues.follow(doctor["id"])
        for i, (token, _) in enumerate(patients):
            await (a if i % 2 else b).book(token, doctor["id"], future(5 if i == 0 else 180 + 30 * i))
            # both replicas hold it before the next booking: a replica that heard of a later booking
            # first would rightly see it as next for a moment, and say so
            await eventually(lambda: all(n.services.queues.live(doctor["id"]).waiting_count == i + 1
                                         for n in (a, b)), "both replicas hold the booking")
        path = f"/api/admin/webhooks/{hook['id']}/deliveries"

        async def all_delivered():
            page = (await a.api.get(path, token=admin)).body
            return page if page["total"] >= 7 and all(d["status"] == "delivered" for d in page["items"]) else None

        page = await eventually(all_delivered, "every delivery delivered")
        assert page["total"] == 7  # six bookings and one soon (the first patient, next in the queue)
        hooks = receiver.at("/hook")
        assert sorted(r.headers["webhook-id"] for r in hooks) == sorted(d["id"] for d in page["items"])
        pushes = await receiver.wait_for("/push/1")
        assert [browser.decrypt(p)["type"] for p in pushes] == ["turn:soon"]
        records = a.services.notifier.records
        assert await records.deliveries.count_documents({"channel": "push"}) == 1
        assert {d["leaseNode"] for d in await records.deliveries.find({}).to_list(None)} <= \
            {a.services.notifier.node, b.services.notifier.node}
    finally:
        await stop_harness(a)
        await stop_harness(b)


async def test_a_delay_of_fifteen_minutes_more_is_pushed_once(notify, receiver):
    admin, doctor, doctor_token = await clinic(notify)
    token, _ = await notify.register()
    browser, _ = await subscribe(notify, token, receiver)
    hook = await create_webhook(notify, admin, receiver, ["appointment.delayed"])
    appointment = await notify.book(token, doctor["id"], future(60))
    status = f"/api/doctors/{doctor['id']}/status"
    assert (await notify.api.patch(status, {"isRunningLate": True, "lateByMinutes": 10}, token=doctor_token)).status == 200
    assert (await notify.api.patch(status, {"isRunningLate": True, "lateByMinutes": 80}, token=doctor_token)).status == 200
    pushes = await receiver.wait_for("/push/1", 2)  # turn:soon (it is next) and delay
    delays = [m for m in map(browser.decrypt, pushes) if m["type"] == "delay"]
    assert [m["appointmentId"] for m in delays] == [appointment["id"]]
    [hooked] = await receiver.wait_for("/hook")
    body = Webhook(hook["secret"]).verify(hooked.body, hooked.headers)
    assert body["type"] == "appointment.delayed" and body["data"]["delayMinutes"] >= 15
    # 5 more minutes is not news; the worker has nothing more to send
    assert (await notify.api.patch(status, {"isRunningLate": True, "lateByMinutes": 85}, token=doctor_token)).status == 200
    await eventually(lambda: notify.services.notifier.events.empty(), "planned")
    records = notify.services.notifier.records
    assert await records.deliveries.count_documents({"event": "delay"}) == 1


async def test_a_reschedule_is_announced_to_the_webhooks(notify, receiver):
    admin, doctor, _ = await clinic(notify)
    hook = await create_webhook(notify, admin, receiver, ["appointment.rescheduled"])
    token, _ = await notify.register()
    appointment = await notify.book(token, doctor["id"], future(60))
    later = future(120).strftime("%Y-%m-%dT%H:%M:%SZ")
    moved = await notify.api.patch(f"/api/appointments/{appointment['id']}", {"date": later}, token=token)
    assert moved.status == 200, moved.body
    [hooked] = await receiver.wait_for("/hook")
    body = Webhook(hook["secret"]).verify(hooked.body, hooked.headers)
    assert body["type"] == "appointment.rescheduled"
    assert (body["data"]["appointment"]["id"], body["data"]["appointment"]["date"]) == (appointment["id"], later)
