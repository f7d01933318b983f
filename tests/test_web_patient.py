"""Browser tests of the patient's side of the web app, against a real server: register, book,
the live waiting room, a signed-out deep link, and a dropped socket that comes back truthful."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone

from playwright.sync_api import expect

from tests.web_browser import DESKTOP, PHONE, new_doctor, new_patient, no_horizontal_scroll, sign_in


def status_region(page):
    return page.get_by_role("status").filter(has=page.locator(".headline"))


def test_patient_registers_books_waits_and_joins_when_called(site, browsers):
    harness = site.harness
    doctor = new_doctor(site)
    doctor_token, _ = site.run(harness.doctor_account(doctor))
    # Someone booked earlier, 5 minutes from now: they are ahead of our patient.
    _, other_token, _ = new_patient(site, "Olga Other")
    ahead = site.run(harness.book(other_token, doctor["id"], datetime.now(timezone.utc) + timedelta(minutes=5)))

    page, _ = browsers.page(PHONE)
    page.goto("/app/register")
    page.get_by_label("Name").fill("Paula Patient")
    page.get_by_label("Email").fill(f"paula-{uuid.uuid4().hex[:8]}@example.org")
    page.get_by_label("Password").fill("a-good-password")
    page.get_by_role("button", name="Create account").click()

    expect(page.get_by_role("heading", name="Book an appointment")).to_be_visible()
    page.get_by_label(re.compile(doctor["name"])).check()
    page.get_by_label("Phone").fill("+1 555 0123")
    page.get_by_label("Reason for the visit (optional)").fill("Sore throat")
    page.get_by_role("button", name="Book appointment").click()

    expect(page).to_have_url(re.compile(r"/app/waiting/[0-9a-f]{24}$"))
    appointment_id = page.url.rsplit("/", 1)[1]
    status = status_region(page)
    expect(status).to_contain_text("1 person ahead of you")
    expect(status).to_contain_text(re.compile(r"Expected in about \d+ minutes, around \d{1,2}:\d{2}"))
    # The range the server gives with the estimate, and when to be ready, in words.
    expect(status).to_contain_text(re.compile(r"Most likely between \d{1,2}:\d{2}.{0,4} and \d{1,2}:\d{2}"))
    expect(status).to_contain_text(re.compile(r"Please be ready (from \d{1,2}:\d{2}|now)"))
    place = site.run(harness.api.get(f"/api/queue/appointment/{appointment_id}/position", token=doctor_token)).body
    assert place["earliestStartAt"] < place["expectedStartAt"] < place["latestStartAt"]
    assert no_horizontal_scroll(page)

    # The one ahead cancels: the waiting room moves on its own.
    response = site.run(harness.api.patch(f"/api/appointments/{ahead['id']}/status", {"status": "cancelled"},
                                          token=other_token))
    assert response.status == 200
    expect(status).to_contain_text("You are next")

    # The doctor, in another browser, calls the next patient.
    console, _ = browsers.page(DESKTOP)
    console.goto("/app/console")
    doctor_email = doctor["email"]
    sign_in(console, doctor_email, "doctor-password")
    expect(console.get_by_role("heading", name="Console")).to_be_visible()
    expect(console.get_by_text("Paula Patient")).to_be_visible()
    expect(console.get_by_text("Reason: Sore throat")).to_be_visible()
    console.get_by_role("button", name="Call next").click()
    expect(console.get_by_text("Now seeing Paula Patient.")).to_be_visible()

    join = page.get_by_role("link", name="Join call")
    expect(join).to_be_visible()
    expect(status).to_contain_text("It is your turn")
    stored = site.run(harness.api.get(f"/api/appointments/{appointment_id}", token=doctor_token))
    assert stored.body["status"] == "in_consultation"
    assert join.get_attribute("href") == stored.body["joinUrl"]

    # My appointments lists it, with the way back to the waiting room.
    page.get_by_role("link", name="My appointments", exact=True).click()
    expect(page.get_by_text("In consultation")).to_be_visible()


def test_a_signed_out_deep_link_signs_in_and_lands_where_it_was_asked(site, browsers):
    doctor = new_doctor(site)
    email, token, _ = new_patient(site)
    appointment = site.run(site.harness.book(token, doctor["id"]))

    page, _ = browsers.page(PHONE)
    page.goto(f"/app/waiting/{appointment['id']}")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.url.endswith(f"/app/waiting/{appointment['id']}")
    sign_in(page, email, "patient-password")

    expect(page.get_by_role("heading", name="Waiting room")).to_be_visible()
    expect(page).to_have_url(re.compile(f"/app/waiting/{appointment['id']}$"))
    expect(status_region(page)).to_contain_text("You are next")

    # A reload keeps the page (the session is kept, the deep link is served by the app).
    page.reload()
    expect(status_region(page)).to_contain_text("You are next")


def test_a_dropped_socket_reconnects_resubscribes_and_shows_what_changed_meanwhile(site, browsers):
    harness = site.harness
    doctor = new_doctor(site)
    _, first_token, _ = new_patient(site, "First")
    first = site.run(harness.book(first_token, doctor["id"], datetime.now(timezone.utc) + timedelta(minutes=5)))
    email, token, _ = new_patient(site, "Second")
    mine = site.run(harness.book(token, doctor["id"], datetime.now(timezone.utc) + timedelta(minutes=20)))

    page, _ = browsers.page(PHONE)
    page.goto("/app/signin")
    sign_in(page, email, "patient-password")
    expect(page.get_by_role("heading", name="My appointments")).to_be_visible()
    page.goto(f"/app/waiting/{mine['id']}")
    status = status_region(page)
    expect(status).to_contain_text("1 person ahead of you")
    expect(page.get_by_text("Live: this page updates by itself.")).to_be_visible()

    async def drop_sockets_then_cancel():
        # Server-side close of every socket, then a change while the page has no socket at all:
        # the page can only learn it from the answer to its resubscription.
        sockets = [s for s in harness.services.sockets]
        assert sockets
        for socket in sockets:
            socket.close(1011, "test drop")
        response = await harness.api.patch(f"/api/appointments/{first['id']}/status", {"status": "cancelled"},
                                           token=first_token)
        assert response.status == 200

    site.run(drop_sockets_then_cancel())
    expect(status).to_contain_text("You are next")
    expect(page.get_by_text("Live: this page updates by itself.")).to_be_visible()
    assert len(harness.services.sockets) == 1


def test_booking_errors_are_shown_next_to_the_field(site, browsers):
    doctor = new_doctor(site)
    email, token, _ = new_patient(site)
    site.run(site.harness.book(token, doctor["id"]))
    page, watch = browsers.page(PHONE)
    watch.expect_status(400, 409)
    page.goto("/app/signin")
    sign_in(page, email, "patient-password")
    expect(page.get_by_role("heading", name="My appointments")).to_be_visible()
    page.get_by_role("link", name="Book", exact=True).click()

    # A time in the past: the server refuses it, and the sentence appears under the date field.
    page.get_by_label(re.compile(doctor["name"])).check()
    page.get_by_label("Date").fill("2020-01-01")
    page.get_by_label("Phone").fill("+1 555 0100")
    page.get_by_role("button", name="Book appointment").click()
    date_error = page.locator("#" + page.get_by_label("Date").get_attribute("aria-describedby").split()[-1])
    expect(date_error).not_to_be_empty()
    expect(page.get_by_label("Date")).to_have_attribute("aria-invalid", "true")

    # A second waiting appointment with the same doctor: 409, said in a sentence.
    page.get_by_label("Date").fill((datetime.now() + timedelta(days=1)).strftime("%Y-%m-%d"))
    page.get_by_role("button", name="Book appointment").click()
    expect(page.get_by_role("alert").filter(has_text=re.compile(r"\w+"))).to_be_visible()
    assert page.url.endswith("/app/book")


def test_wrong_password_is_said_plainly(site, browsers):
    page, watch = browsers.page(PHONE)
    watch.expect_status(401)
    page.goto("/app/signin")
    sign_in(page, "nobody@example.org", "not-the-password")
    expect(page.get_by_role("alert")).to_contain_text(re.compile(r"email or password", re.I))


def test_turn_soon_and_turn_now_raise_browser_notifications_when_allowed(site, browsers):
    harness = site.harness
    doctor = new_doctor(site)
    _, first_token, _ = new_patient(site, "First")
    first = site.run(harness.book(first_token, doctor["id"], datetime.now(timezone.utc) + timedelta(minutes=5)))
    email, token, _ = new_patient(site)
    # 40 minutes ahead: its "be ready by" (30 minutes ahead) is beyond SOON_MINUTES until it is next.
    appointment = site.run(harness.book(token, doctor["id"], datetime.now(timezone.utc) + timedelta(minutes=40)))

    context, _ = browsers.context(PHONE, permissions=["notifications"])
    # Headless chromium shows no notifications; record what the page asks for instead.
    context.add_init_script("""
        window.__notifications = [];
        window.Notification = class extends EventTarget {
            static permission = 'granted';
            static requestPermission() { return Promise.resolve('granted'); }
            constructor(title, options) { super(); window.__notifications.push({title, body: options && options.body}); }
            close() {}
        };
    """)
    page = context.new_page()
    page.goto(f"/app/waiting/{appointment['id']}")
    sign_in(page, email, "patient-password")
    expect(page.get_by_text("You will get a notification when your turn is near.")).to_be_visible()
    expect(status_region(page)).to_contain_text("1 person ahead of you")
    expect(page.get_by_text("Live: this page updates by itself.")).to_be_visible()
    assert page.evaluate("window.__notifications") == []

    def titles():
        return [note["title"] for note in page.evaluate("window.__notifications")]

    # The one ahead cancels: now next, the server says turn:soon, the phone is told once.
    response = site.run(harness.api.patch(f"/api/appointments/{first['id']}/status", {"status": "cancelled"},
                                          token=first_token))
    assert response.status == 200
    expect(status_region(page)).to_contain_text("You are next")
    page.wait_for_function("window.__notifications.length >= 1")
    assert titles() == ["Your turn is coming up"]
    assert page.evaluate("window.__notifications[0].body") == "You are next. Please be ready to join the call."

    response = site.run(harness.api.post(f"/api/doctors/{doctor['id']}/queue/next", token=site.run(harness.admin_token())))
    assert response.status == 200
    expect(page.get_by_role("link", name="Join call")).to_be_visible()
    assert titles() == ["Your turn is coming up", "It is your turn"]


def test_a_silently_dead_connection_is_noticed_on_waking_and_replaced(site, browsers):
    """A phone that slept: its socket still looks open but nothing gets through any more. On waking
    (visibilitychange) the page pings, hears no pong, drops the socket and connects anew."""
    harness = site.harness
    doctor = new_doctor(site)
    _, first_token, _ = new_patient(site, "First")
    first = site.run(harness.book(first_token, doctor["id"], datetime.now(timezone.utc) + timedelta(minutes=5)))
    email, token, _ = new_patient(site, "Second")
    mine = site.run(harness.book(token, doctor["id"], datetime.now(timezone.utc) + timedelta(minutes=20)))

    page, _ = browsers.page(PHONE)
    connections = []

    def relay(socket_route):
        """Every socket goes through here; a connection marked dead passes nothing either way."""
        server = socket_route.connect_to_server()
        entry = {"dead": False}
        connections.append(entry)
        socket_route.on_message(lambda message: None if entry["dead"] else server.send(message))
        server.on_message(lambda message: None if entry["dead"] else socket_route.send(message))

    page.route_web_socket(re.compile(r"/ws"), relay)
    page.goto("/app/signin")
    sign_in(page, email, "patient-password")
    expect(page.get_by_role("heading", name="My appointments")).to_be_visible()
    page.goto(f"/app/waiting/{mine['id']}")
    status = status_region(page)
    expect(status).to_contain_text("1 person ahead of you")
    expect(page.get_by_text("Live: this page updates by itself.")).to_be_visible()

    connections[-1]["dead"] = True
    response = site.run(harness.api.patch(f"/api/appointments/{first['id']}/status", {"status": "cancelled"},
                                          token=first_token))
    assert response.status == 200
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    expect(status).to_contain_text("You are next", timeout=30_000)
    assert len(connections) >= 2 and not connections[-1]["dead"]
