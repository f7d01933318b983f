"""The web app's notifications in Chromium: the waiting room's "Notify me when my turn is near" (Web
Push through /app/sw.js) and the admin page's webhooks.

Headless Chromium cannot reach a real push service: one test checks that the refusal is said plainly;
another replaces `PushManager.subscribe` in the page with a subscription whose endpoint is the test's
loopback push receiver and whose keys the test holds, so the whole path runs for real from the click:
the page registers it, the server pushes on call-next, the receiver decrypts what arrived.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect
from standardwebhooks import Webhook

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, free_port
from tests.notify_support import BrowserSubscription, Receiver
from tests.test_web_patient import new_doctor, new_patient
from tests.web_browser import DESKTOP, PHONE, sign_in

RECEIVER_PORT = free_port()
SITE_SETTINGS = {"notify_allow_hosts": (f"127.0.0.1:{RECEIVER_PORT}",)}


@pytest.fixture(scope="module")
def receiver(site):
    async def start():
        return Receiver(port=RECEIVER_PORT).start()
    r = site.run(start())
    yield r
    site.loop.loop.call_soon_threadsafe(r.stop)


def received(site, receiver, path, count=1):
    return site.run(receiver.wait_for(path, count))


def test_the_service_worker_is_served_as_javascript(site):
    async def fetch():
        return await site.harness.api.get("/app/sw.js")
    response = site.run(fetch())
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/javascript")
    assert "showNotification" in response.text and "notificationclick" in response.text


def test_when_the_browser_cannot_reach_its_push_service_the_page_says_so(site, browsers, receiver):
    doctor = new_doctor(site)
    email, token, _ = new_patient(site)
    appointment = site.run(site.harness.book(token, doctor["id"], datetime.now(timezone.utc) + timedelta(minutes=60)))
    context, _ = browsers.context(PHONE, permissions=["notifications"])
    # What headless Chromium does without a push service, made certain: the subscription is refused.
    context.add_init_script("""
        PushManager.prototype.subscribe = () => Promise.reject(new DOMException(
            'Registration failed - push service not available', 'AbortError'));
    """)
    page = context.new_page()
    page.goto(f"/app/waiting/{appointment['id']}")
    sign_in(page, email, "patient-password")
    page.get_by_role("button", name="Notify me when my turn is near").click()
    expect(page.get_by_role("alert").filter(has_text="push service is out of reach")).to_be_visible()
    assert site.run(site.harness.services.notifier.records.subscriptions.count_documents({})) == 0


def test_when_the_user_refuses_notifications_the_page_says_so(site, browsers, receiver):
    doctor = new_doctor(site)
    email, token, _ = new_patient(site)
    appointment = site.run(site.harness.book(token, doctor["id"], datetime.now(timezone.utc) + timedelta(minutes=60)))
    context, _ = browsers.context(PHONE)
    context.add_init_script("Notification.requestPermission = () => Promise.resolve('denied');")
    page = context.new_page()
    page.goto(f"/app/waiting/{appointment['id']}")
    sign_in(page, email, "patient-password")
    page.get_by_role("button", name="Notify me when my turn is near").click()
    expect(page.get_by_role("alert").filter(has_text="were not allowed")).to_be_visible()


def context_with_push(browsers, browser_keys):
    """A phone whose PushManager hands out `browser_keys`' subscription: Chromium's own push service
    is out of reach here, so the subscription is the test's (and the test can decrypt what arrives)."""
    context, _ = browsers.context(PHONE, permissions=["notifications"])
    context.add_init_script("""
        (() => {
            const data = %s;
            let current = null;
            const made = {endpoint: data.endpoint, expirationTime: null, options: {userVisibleOnly: true},
                          toJSON: () => data, unsubscribe: () => { current = null; return Promise.resolve(true); }};
            PushManager.prototype.subscribe = function (options) {
                window.__subscribedWith = options;
                current = made;
                return Promise.resolve(made);
            };
            PushManager.prototype.getSubscription = () => Promise.resolve(current);
        })();
    """ % json.dumps(browser_keys.to_json()))
    return context


def test_notify_me_subscribes_and_a_real_push_reaches_the_push_service(site, browsers, receiver):
    doctor = new_doctor(site)
    email, token, _ = new_patient(site)
    appointment = site.run(site.harness.book(token, doctor["id"], datetime.now(timezone.utc) + timedelta(minutes=60)))
    browser_keys = BrowserSubscription.make(f"http://127.0.0.1:{RECEIVER_PORT}/push/browser")
    context = context_with_push(browsers, browser_keys)
    page = context.new_page()
    page.goto(f"/app/waiting/{appointment['id']}")
    sign_in(page, email, "patient-password")
    page.get_by_role("button", name="Notify me when my turn is near").click()
    expect(page.get_by_text("even with this page closed")).to_be_visible()
    # the page subscribed with the server's VAPID key
    key = page.evaluate("btoa(String.fromCharCode(...new Uint8Array(window.__subscribedWith.applicationServerKey)))")
    public = site.run(site.harness.api.get("/api/push/key")).body["publicKey"]
    assert key.rstrip("=").replace("+", "-").replace("/", "_") == public
    count = site.harness.services.notifier.records.subscriptions.count_documents
    assert site.run(count({"endpoint": browser_keys.endpoint})) == 1

    page.get_by_role("button", name="Turn off notifications").click()
    expect(page.get_by_role("button", name="Notify me when my turn is near")).to_be_visible()
    assert site.run(count({"endpoint": browser_keys.endpoint})) == 0
    page.get_by_role("button", name="Notify me when my turn is near").click()
    expect(page.get_by_text("even with this page closed")).to_be_visible()

    admin = site.run(site.harness.admin_token())
    called = site.run(site.harness.api.post(f"/api/doctors/{doctor['id']}/queue/next", token=admin))
    assert called.status == 200
    expect(page.get_by_role("link", name="Join call")).to_be_visible()
    for count_wanted in range(1, 4):
        pushes = received(site, receiver, "/push/browser", count_wanted)
        messages = [browser_keys.decrypt(p) for p in pushes]
        if any(m["type"] == "turn:now" for m in messages):
            break
    now = next(m for m in messages if m["type"] == "turn:now")
    assert now["appointmentId"] == appointment["id"] and now["url"] == f"/app/waiting/{appointment['id']}"


def test_admin_adds_a_webhook_sees_its_secret_once_and_its_deliveries(site, browsers, receiver):
    page, _ = browsers.page(DESKTOP)
    page.goto("/app/admin")
    sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    section = page.locator("#webhooks")
    url = f"http://127.0.0.1:{RECEIVER_PORT}/hook/web"
    section.get_by_label("Receiver URL (https)").fill(url)
    section.get_by_label("appointment.booked").check()
    section.get_by_label("Description").fill("SMS gateway")
    section.get_by_role("button", name="Add webhook").click()
    secret_field = section.get_by_label("Signing secret")
    expect(secret_field).to_have_value(re.compile(r"^whsec_"))
    secret = secret_field.input_value()
    expect(section.get_by_role("heading", name=url)).to_be_visible()

    doctor = new_doctor(site)
    _, token, _ = new_patient(site)
    site.run(site.harness.book(token, doctor["id"], datetime.now(timezone.utc) + timedelta(minutes=90)))
    [hook] = received(site, receiver, "/hook/web")
    assert Webhook(secret).verify(hook.body, hook.headers)["type"] == "appointment.booked"

    section.get_by_role("button", name=f"Deliveries of {url}").click()
    table = section.get_by_role("table")
    for _ in range(20):
        if "delivered" in table.inner_text():
            break
        section.get_by_role("button", name="Refresh").click()
        page.wait_for_timeout(100)
    expect(table).to_contain_text("appointment.booked")
    expect(table).to_contain_text("delivered")
    page.reload()
    expect(page.locator("#webhooks").get_by_label("Signing secret")).to_have_count(0)  # shown once only
    assert secret not in page.content()
    page.locator("#webhooks").get_by_role("button", name=f"Delete webhook {url}").click()
    expect(page.locator("#webhooks").get_by_text("No webhooks yet.")).to_be_visible()


def test_a_french_page_gets_french_pushes(site, browsers, receiver):
    """The page sends its language (`?lang=fr`) with the subscription; the push that reaches the
    push service for it is written in French."""
    doctor = new_doctor(site)
    email, token, _ = new_patient(site)
    appointment = site.run(site.harness.book(token, doctor["id"], datetime.now(timezone.utc) + timedelta(minutes=60)))
    browser_keys = BrowserSubscription.make(f"http://127.0.0.1:{RECEIVER_PORT}/push/french")
    page = context_with_push(browsers, browser_keys).new_page()
    page.goto(f"/app/waiting/{appointment['id']}?lang=fr")
    sign_in(page, email, "patient-password", language="fr")
    page.get_by_role("button", name="Me prévenir quand mon tour approche").click()
    records = site.harness.services.notifier.records
    expect(page.get_by_role("button", name="Désactiver les notifications")).to_be_visible()
    assert site.run(records.subscriptions.find_one({"endpoint": browser_keys.endpoint}))["lang"] == "fr"
    admin = site.run(site.harness.admin_token())
    assert site.run(site.harness.api.post(f"/api/doctors/{doctor['id']}/queue/next", token=admin)).status == 200
    for count_wanted in range(1, 4):
        messages = [browser_keys.decrypt(p) for p in received(site, receiver, "/push/french", count_wanted)]
        if any(m["type"] == "turn:now" for m in messages):
            break
    assert next(m for m in messages if m["type"] == "turn:now")["title"] == "C'est votre tour"
