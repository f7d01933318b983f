"""Browser tests of the staff side: the doctor's console, and the admin's invite that becomes a
doctor who signs in."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone

from playwright.sync_api import expect

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.web_browser import DESKTOP, PHONE, create_invitation, no_horizontal_scroll, sign_in


def book_for(site, doctor, name, minutes_ahead, reason=""):
    token, _ = site.run(site.harness.register(name=name))
    return token, site.run(site.harness.book(token, doctor["id"], datetime.now(timezone.utc) + timedelta(minutes=minutes_ahead),
                                             patientName=name, reason=reason))


def queue_entry(page, name):
    return page.locator("ol.queue > li").filter(has_text=name)


def day_figure(page, term):
    today = page.get_by_role("region", name="Today in numbers")
    return today.locator("dl > div").filter(has=page.locator("dt", has_text=re.compile(f"^{term}$"))).locator("dd")


def frozen_sockets(page):
    """Relays the page's sockets; while `state["frozen"]`, nothing from the server reaches the page
    (a screen that has stopped hearing about changes, without knowing it)."""
    state = {"frozen": False}

    def relay(socket_route):
        server = socket_route.connect_to_server()
        socket_route.on_message(server.send)
        server.on_message(lambda message: None if state["frozen"] else socket_route.send(message))

    page.route_web_socket(re.compile(r"/ws"), relay)
    return state


def test_doctor_console_runs_the_day_live(site, browsers):
    harness = site.harness
    doctor = site.run(harness.create_doctor(name=f"Dr. Console {uuid.uuid4().hex[:4]}"))
    site.run(harness.doctor_account(doctor))
    anna_token, anna = book_for(site, doctor, "Anna Early", 5, "Check-up")
    _, ben = book_for(site, doctor, "Ben Second", 15, "Follow-up")

    page, _ = browsers.page(DESKTOP)
    page.goto("/app/console")
    sign_in(page, doctor["email"], "doctor-password")
    expect(page.get_by_role("heading", name="Console")).to_be_visible()
    expect(queue_entry(page, "Anna Early")).to_contain_text("Reason: Check-up")
    expect(page.get_by_role("heading", name="Waiting (2)")).to_be_visible()
    # Each patient's window (earliestStartAt to latestStartAt) beside the expected time.
    for name in ("Anna Early", "Ben Second"):
        expect(queue_entry(page, name)).to_contain_text(re.compile(r"window \d{1,2}:\d{2}.{0,4} to \d{1,2}:\d{2}"))

    # Confirm: the badge changes.
    page.get_by_role("button", name="Confirm Anna Early").click()
    expect(queue_entry(page, "Anna Early")).to_contain_text("Waiting (confirmed)")

    # A booking made elsewhere shows up by itself.
    book_for(site, doctor, "Cleo Third", 30)
    expect(page.get_by_role("heading", name="Waiting (3)")).to_be_visible()

    # The patient cancels from their phone: gone from the console without a reload.
    site.run(harness.api.patch(f"/api/appointments/{anna['id']}/status", {"status": "cancelled"}, token=anna_token))
    expect(page.get_by_role("heading", name="Waiting (2)")).to_be_visible()
    expect(queue_entry(page, "Anna Early")).to_have_count(0)

    # Call next: Ben goes into consultation; complete; then Cleo is called and never joins: a no-show
    # (booked 30 minutes ahead, she has no No-show button while waiting: API.md's `too_early`).
    page.get_by_role("button", name="Call next").click()
    now = page.get_by_role("region", name="In consultation")
    expect(now).to_contain_text("Ben Second")
    expect(now.get_by_role("link", name="Join call")).to_be_visible()
    # Final actions ask first.
    page.get_by_role("button", name="Complete Ben Second").click()
    expect(now).to_contain_text("End Ben Second's consultation?")
    now.get_by_role("button", name="Yes, complete").click()
    expect(now).to_contain_text("Nobody is in consultation.")
    stored = site.run(harness.api.get(f"/api/appointments/{ben['id']}", token=site.run(harness.admin_token())))
    assert stored.body["status"] == "completed"
    expect(queue_entry(page, "Cleo Third").get_by_role("button", name="No-show Cleo Third")).to_have_count(0)
    page.get_by_role("button", name="Call next").click()
    expect(now).to_contain_text("Cleo Third")
    expect(page.get_by_role("heading", name="Waiting (0)")).to_be_visible()
    now.get_by_role("button", name="No-show Cleo Third").click()
    now.get_by_role("button", name="Yes, mark as no-show").click()
    expect(now).to_contain_text("Nobody is in consultation.")

    # The day in numbers follows: one seen, one no-show, one cancelled.
    expect(day_figure(page, "Seen")).to_have_text("1")
    expect(day_figure(page, "No-shows")).to_have_text("1")
    expect(day_figure(page, "Cancelled")).to_have_text("1")

    # Running late: saved, and the doctor profile says so.
    page.get_by_label("I am running late").check()
    page.get_by_label("Minutes late").fill("20")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved: patients now see that you are running late.")).to_be_visible()
    profile = site.run(harness.api.get(f"/api/doctors/{doctor['id']}"))
    assert profile.body["isRunningLate"] is True and profile.body["lateByMinutes"] == 20


def test_call_next_on_a_stale_screen_is_refused_and_the_console_catches_up(site, browsers):
    harness = site.harness
    doctor = site.run(harness.create_doctor(name=f"Dr. Stale {uuid.uuid4().hex[:4]}"))
    site.run(harness.doctor_account(doctor))
    _, anna = book_for(site, doctor, "Anna Early", 5)
    _, ben = book_for(site, doctor, "Ben Second", 15)

    page, watch = browsers.page(DESKTOP)
    watch.expect_status(409)
    sockets = frozen_sockets(page)
    page.goto("/app/console")
    sign_in(page, doctor["email"], "doctor-password")
    now = page.get_by_role("region", name="In consultation")
    expect(page.get_by_role("heading", name="Waiting (2)")).to_be_visible()
    expect(now).to_contain_text("Nobody is in consultation.")

    # The screen stops hearing; meanwhile another staff member calls Anna in.
    sockets["frozen"] = True
    admin_token = site.run(harness.admin_token())
    called = site.run(harness.api.post(f"/api/doctors/{doctor['id']}/queue/next", {"expectCurrent": None}, token=admin_token))
    assert called.status == 200 and called.body["current"]["id"] == anna["id"]
    expect(now).to_contain_text("Nobody is in consultation.")  # still the old picture

    # Call next from the stale screen: refused, said next to the button, and the screen refreshed.
    page.get_by_role("button", name="Call next").click()
    expect(now.get_by_role("alert")).to_contain_text("The queue changed since this page last showed it.")
    expect(now).to_contain_text("Anna Early")
    expect(page.get_by_role("heading", name="Waiting (1)")).to_be_visible()
    stored = site.run(harness.api.get(f"/api/appointments/{anna['id']}", token=admin_token))
    assert stored.body["status"] == "in_consultation"  # the refused press changed nothing
    assert site.run(harness.api.get(f"/api/appointments/{ben['id']}", token=admin_token)).body["status"] == "pending"

    # Pressed again on the refreshed screen, it does what the doctor now sees: Anna done, Ben in.
    page.get_by_role("button", name="Call next").click()
    expect(page.get_by_text("Now seeing Ben Second.")).to_be_visible()
    expect(now).not_to_contain_text("The queue changed")
    assert site.run(harness.api.get(f"/api/appointments/{anna['id']}", token=admin_token)).body["status"] == "completed"


def test_the_console_shows_who_is_in_the_waiting_room(site, browsers):
    harness = site.harness
    doctor = site.run(harness.create_doctor(name=f"Dr. Present {uuid.uuid4().hex[:4]}"))
    site.run(harness.doctor_account(doctor))
    email = f"present-{uuid.uuid4().hex[:8]}@example.org"
    token, _ = site.run(harness.register(name="Petra Present", email=email, password="patient-password"))
    appointment = site.run(harness.book(token, doctor["id"], patientName="Petra Present"))

    console, _ = browsers.page(DESKTOP)
    console.goto("/app/console")
    sign_in(console, doctor["email"], "doctor-password")
    petra = queue_entry(console, "Petra Present")
    expect(petra).to_contain_text("Not in the waiting room")

    # The patient opens the waiting room: the console marks her present, live.
    patient_context, _ = browsers.context(PHONE)
    patient = patient_context.new_page()
    patient.goto(f"/app/waiting/{appointment['id']}")
    sign_in(patient, email, "patient-password")
    expect(patient.get_by_text("Live: this page updates by itself.")).to_be_visible()
    expect(petra).to_contain_text("In the waiting room")

    # She closes it: absent again.
    patient.close()
    expect(petra).to_contain_text("Not in the waiting room")


def test_away_and_the_delay_it_causes_reach_the_waiting_room(site, browsers):
    harness = site.harness
    doctor = site.run(harness.create_doctor(name=f"Dr. Away {uuid.uuid4().hex[:4]}"))
    site.run(harness.doctor_account(doctor))
    email = f"away-{uuid.uuid4().hex[:8]}@example.org"
    token, _ = site.run(harness.register(name="Abel Waiting", email=email, password="patient-password"))
    appointment = site.run(harness.book(token, doctor["id"], datetime.now(timezone.utc) + timedelta(minutes=2)))

    patient, _ = browsers.page(PHONE)
    patient.goto(f"/app/waiting/{appointment['id']}")
    sign_in(patient, email, "patient-password")
    status = patient.get_by_role("status").filter(has=patient.locator(".headline"))
    expect(status).to_contain_text("You are next")
    expect(status).not_to_contain_text("away")

    # The doctor takes a break from the console (the form suggests a quarter of an hour).
    console, _ = browsers.page(DESKTOP)
    console.goto("/app/console")
    sign_in(console, doctor["email"], "doctor-password")
    console.get_by_role("button", name="Set away").click()
    expect(console.get_by_text(re.compile(r"^Saved: away until "))).to_be_visible()
    expect(console.get_by_text(re.compile(r"^Away until \d{1,2}:\d{2}"))).to_be_visible()

    # The waiting room says so, and shows the server's own delay for this appointment (the break
    # ends after the booked time: nobody starts before it).
    place = site.run(harness.api.get(f"/api/queue/appointment/{appointment['id']}/position", token=token)).body
    assert place["awayUntil"] is not None and place["delayMinutes"] > 0
    expect(status).to_contain_text(re.compile(
        f"Your appointment is running about {place['delayMinutes']} minutes late: "
        r"the doctor is on a break until \d{1,2}:\d{2}"))

    # Back now: the notices go, live.
    console.get_by_role("button", name="Back now").click()
    expect(console.get_by_text("Saved: you are back.")).to_be_visible()
    expect(status).not_to_contain_text("break until")
    expect(status).not_to_contain_text("running about")


def test_running_late_reaches_the_waiting_room_live(site, browsers):
    harness = site.harness
    doctor = site.run(harness.create_doctor(name=f"Dr. Late {uuid.uuid4().hex[:4]}"))
    site.run(harness.doctor_account(doctor))
    email = f"late-{uuid.uuid4().hex[:8]}@example.org"
    token, _ = site.run(harness.register(name="Lena Waiting", email=email, password="patient-password"))
    appointment = site.run(harness.book(token, doctor["id"]))

    patient, _ = browsers.page(PHONE)
    patient.goto(f"/app/waiting/{appointment['id']}")
    sign_in(patient, email, "patient-password")
    status = patient.get_by_role("status").filter(has=patient.locator(".headline"))
    expect(status).to_contain_text("You are next")

    console, _ = browsers.page(DESKTOP)
    console.goto("/app/console")
    sign_in(console, doctor["email"], "doctor-password")
    console.get_by_label("I am running late").check()
    console.get_by_label("Minutes late").fill("25")
    console.get_by_role("button", name="Save").click()
    expect(status).to_contain_text("the doctor is running 25 minutes late")

    console.get_by_label("I am running late").uncheck()
    console.get_by_role("button", name="Save").click()
    expect(status).not_to_contain_text("running 25 minutes late")


def test_admin_invites_a_doctor_who_then_signs_in_to_the_console(site, browsers):
    admin, admin_watch = browsers.page(DESKTOP)
    admin.goto("/app/admin")
    sign_in(admin, ADMIN_EMAIL, ADMIN_PASSWORD)
    expect(admin.get_by_role("heading", name="Admin", exact=True)).to_be_visible()

    doctors = admin.get_by_role("region", name="Doctors")
    doctors.get_by_text("Add a doctor").click()
    name = f"Dr. Invited {uuid.uuid4().hex[:4]}"
    email = f"invited-{uuid.uuid4().hex[:8]}@example.org"
    doctors.get_by_label("Name").fill(name)
    doctors.get_by_label("Specialization").fill("Cardiology")
    doctors.get_by_label("Email").fill(email)
    doctors.get_by_label("Phone").fill("+1 555 0111")
    doctors.get_by_role("button", name="Add doctor").click()
    expect(doctors.get_by_role("heading", name=name)).to_be_visible()

    invite_url = create_invitation(admin, email, "doctor", doctor_profile=name)
    assert invite_url.startswith(site.base + "/app/invite?token=")

    # The invited doctor opens the link on their phone.
    doctor_page, _ = browsers.page(PHONE)
    doctor_page.goto(invite_url)
    expect(doctor_page.get_by_role("heading", name="Accept your invitation")).to_be_visible()
    doctor_page.get_by_label("Name").fill(name)
    doctor_page.get_by_label("Password").fill("doctor-secret-1")
    doctor_page.get_by_role("button", name="Create account").click()
    expect(doctor_page).to_have_url(re.compile(r"/app/console$"))
    expect(doctor_page.get_by_text(f"{name}, Cardiology: today's queue")).to_be_visible()
    assert no_horizontal_scroll(doctor_page)

    # Signed out and in again with the new password: the console again.
    doctor_page.get_by_role("button", name="Sign out").click()
    expect(doctor_page.get_by_role("heading", name="Sign in")).to_be_visible()
    sign_in(doctor_page, email, "doctor-secret-1")
    expect(doctor_page).to_have_url(re.compile(r"/app/console$"))

    # The same link again: the invite is spent, and the page says so.
    used, used_watch = browsers.page(PHONE)
    used_watch.expect_status(400)
    used.goto(invite_url)
    used.get_by_label("Name").fill("Someone Else")
    used.get_by_label("Password").fill("another-password")
    used.get_by_role("button", name="Create account").click()
    expect(used.get_by_role("alert")).to_contain_text("already been used")


def test_deleting_a_doctor_with_waiting_patients_explains_the_409(site, browsers):
    harness = site.harness
    name = f"Dr. Busy {uuid.uuid4().hex[:4]}"
    doctor = site.run(harness.create_doctor(name=name))
    book_for(site, doctor, "Wendy Waiting", 10)

    admin, watch = browsers.page(PHONE)
    watch.expect_status(409)
    admin.goto("/app/admin")
    sign_in(admin, ADMIN_EMAIL, ADMIN_PASSWORD)
    doctors = admin.get_by_role("region", name="Doctors")
    doctors.get_by_role("button", name=f"Delete {name}").click()
    doctors.get_by_role("button", name="Yes, delete").click()
    item = doctors.locator("li").filter(has=admin.get_by_role("heading", name=name))
    expect(item.get_by_role("alert")).to_contain_text("cannot be deleted yet")
    assert no_horizontal_scroll(admin)
    assert site.run(harness.api.get(f"/api/doctors/{doctor['id']}")).status == 200


def test_a_patient_opening_the_console_is_told_it_is_not_for_them(site, browsers):
    email = f"curious-{uuid.uuid4().hex[:8]}@example.org"
    site.run(site.harness.register(name="Curious Patient", email=email, password="patient-password"))
    page, _ = browsers.page(PHONE)
    page.goto("/app/console")
    sign_in(page, email, "patient-password")
    expect(page.get_by_role("heading", name="Not available to your account")).to_be_visible()


def test_admin_finds_disables_and_enables_a_user_and_the_audit_log_shows_it(site, browsers):
    harness = site.harness
    email = f"una-{uuid.uuid4().hex[:8]}@example.org"
    site.run(harness.register(name="Una User", email=email, password="patient-password"))

    admin, _ = browsers.page(DESKTOP)
    admin.goto("/app/admin")
    sign_in(admin, ADMIN_EMAIL, ADMIN_PASSWORD)
    users = admin.get_by_role("region", name="Users")
    audit = admin.get_by_role("region", name="Audit log")
    expect(audit.locator("ol.audit > li").first).to_be_visible()

    users.get_by_label("Name or email").fill(email)
    users.get_by_role("button", name="Search").click()
    found = users.locator("ul.cards > li")
    expect(found).to_have_count(1)
    expect(found).to_contain_text("Una User")
    expect(found).to_contain_text(email)

    # Disable: marked, refused at login, and the audit log lists it at the top without a reload.
    users.get_by_role("button", name="Disable Una User").click()
    expect(found).to_contain_text("Disabled")
    login = site.run(harness.api.post("/api/auth/login", {"email": email, "password": "patient-password"}))
    assert login.status == 403 and login.body["code"] == "account_disabled"
    # In words: who did it and to whom, by name (the log itself stores ids).
    entry = audit.locator("ol.audit > li").first
    expect(entry).to_contain_text("User disabled by Root Admin (administrator)")
    expect(entry).to_contain_text("Una User")

    # Enable again: signs in.
    users.get_by_role("button", name="Enable Una User").click()
    expect(found).not_to_contain_text("Disabled")
    login = site.run(harness.api.post("/api/auth/login", {"email": email, "password": "patient-password"}))
    assert login.status == 200
    expect(audit.locator("ol.audit > li").first).to_contain_text("User enabled by Root Admin")


def test_admin_revokes_an_invitation_and_its_link_then_says_so(site, browsers):
    admin, _ = browsers.page(DESKTOP)
    admin.goto("/app/admin")
    sign_in(admin, ADMIN_EMAIL, ADMIN_PASSWORD)
    email = f"withdrawn-{uuid.uuid4().hex[:8]}@example.org"
    invite_url = create_invitation(admin, email, "admin")
    invites = admin.get_by_role("region", name="Invitations")

    # Listed as active; revoked from the list; the audit log records it.
    item = invites.locator("ul.cards > li").filter(has_text=email)
    expect(item).to_contain_text("active")
    item.get_by_role("button", name=f"Revoke the invitation for {email}").click()
    expect(item).to_contain_text("revoked")
    expect(item.get_by_role("button")).to_have_count(0)
    audit = admin.get_by_role("region", name="Audit log")
    expect(audit.locator("ol.audit > li").first).to_contain_text("Invitation revoked by Root Admin")
    expect(audit.locator("ol.audit > li").first).to_contain_text(f"invitation for {email}")
    invites.get_by_label("Show").select_option("active")
    expect(invites.locator("ul.cards > li").filter(has_text=email)).to_have_count(0)

    # The link, opened afterwards, says the invitation was withdrawn.
    page, watch = browsers.page(PHONE)
    watch.expect_status(400)
    page.goto(invite_url)
    page.get_by_label("Name").fill("Would Be Admin")
    page.get_by_label("Password").fill("another-password")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("alert")).to_contain_text("This invitation was withdrawn. Ask an administrator for a new one.")
    assert page.url.endswith(invite_url.split("/app/", 1)[1])
