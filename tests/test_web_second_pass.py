"""Browser tests of what patients, doctors and admins stumbled on in the web app's first pass
(issue 25), each written to fail on that first pass: a refused booking that jammed the form, the
admin's second doctor, tomorrow's waiting room, delay notices that did not add up, the console's
layout, contacts, other days, confirmations and re-announced errors, the invitation's email, and a
background tab that did not show the turn."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone

from playwright.sync_api import expect

from zoneinfo import ZoneInfo

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, TEST_CLINIC_ZONE
from tests.web_browser import (DESKTOP, PHONE, axe_violations, create_invitation, new_doctor, new_patient,
                               no_horizontal_scroll, sign_in)


def book(site, token, doctor, minutes_ahead=None, when=None, **fields):
    when = when or datetime.now(timezone.utc) + timedelta(minutes=minutes_ahead)
    return site.run(site.harness.book(token, doctor["id"], when, **fields))


def clinic_tomorrow_at(hour: int, minute: int = 0) -> datetime:
    """Tomorrow at this time of the clinic's own day (the queue a booking waits in is a clinic day)."""
    now = datetime.now(ZoneInfo(TEST_CLINIC_ZONE))
    return (now + timedelta(days=1)).replace(hour=hour, minute=minute, second=0, microsecond=0).astimezone(timezone.utc)


# The browser of these tests lives where the clinic is, so that times read as booked.
AT_THE_CLINIC = {"timezone_id": TEST_CLINIC_ZONE}


def status_region(page):
    return page.get_by_role("status").filter(has=page.locator(".headline"))


def open_waiting_room(browsers, email, appointment, viewport=PHONE, **options):
    page, watch = browsers.page(viewport, **options)
    page.goto(f"/app/waiting/{appointment['id']}")
    sign_in(page, email, "patient-password")
    expect(status_region(page)).to_be_visible()
    return page, watch


def set_status(site, doctor, **body):
    response = site.run(site.harness.api.patch(f"/api/doctors/{doctor['id']}/status", body,
                                               token=site.run(site.harness.admin_token())))
    assert response.status == 200, response.body


# -- booking -----------------------------------------------------------------------------------------

def test_a_refused_booking_leaves_the_form_usable_with_a_new_key(site, browsers):
    """A 409 (already waiting with that doctor) is remembered under its Idempotency-Key; the
    corrected request (another doctor) must go with a new key, not jam on idempotency_mismatch."""
    first = new_doctor(site)
    second = new_doctor(site)
    email, token, _ = new_patient(site)
    book(site, token, first, 30)
    page, watch = browsers.page(PHONE)
    watch.expect_status(409)
    page.goto("/app/book")
    sign_in(page, email, "patient-password")
    page.get_by_label(re.compile(first["name"])).check()
    page.get_by_label("Phone").fill("+1 555 0100")
    page.get_by_role("button", name="Book appointment").click()
    expect(page.get_by_role("alert").filter(has_text=re.compile(r"\w"))).to_be_visible()

    page.get_by_label(re.compile(second["name"])).check()
    page.get_by_role("button", name="Book appointment").click()
    expect(page).to_have_url(re.compile(r"/app/waiting/[0-9a-f]{24}$"))
    expect(page.get_by_text(second["name"])).to_be_visible()


def test_admin_adds_two_doctors_in_a_row(site, browsers):
    """The add-doctor form used to clear "Average consultation (minutes)" after the first doctor."""
    admin, watch = browsers.page(DESKTOP)
    admin.goto("/app/admin")
    sign_in(admin, ADMIN_EMAIL, ADMIN_PASSWORD)
    doctors = admin.get_by_role("region", name="Doctors")
    doctors.get_by_text("Add a doctor").click()
    for name in (f"Dr. First {uuid.uuid4().hex[:4]}", f"Dr. Second {uuid.uuid4().hex[:4]}"):
        form = doctors.get_by_role("form", name="Add a doctor")
        form.get_by_label("Name").fill(name)
        form.get_by_label("Specialization").fill("Cardiology")
        form.get_by_label("Email").fill(f"{uuid.uuid4().hex[:8]}@example.org")
        form.get_by_label("Phone").fill("+1 555 0111")
        expect(form.get_by_label("Average consultation (minutes)")).to_have_value("12")
        form.get_by_role("button", name="Add doctor").click()
        expect(doctors.get_by_text(f"{name} is added.")).to_be_visible()
        expect(doctors.get_by_role("heading", name=name)).to_be_visible()


# -- the waiting room ----------------------------------------------------------------------------------

def test_a_booking_for_tomorrow_names_its_day_once_and_is_not_next(site, browsers):
    doctor = new_doctor(site)
    email, token, _ = new_patient(site)
    tomorrow = clinic_tomorrow_at(10)
    appointment = book(site, token, doctor, when=tomorrow)
    page, _ = open_waiting_room(browsers, email, appointment, **AT_THE_CLINIC)
    status = status_region(page)
    weekday = tomorrow.strftime("%A")
    expect(status).to_contain_text(re.compile(f"Booked for {weekday}, {tomorrow:%B} {tomorrow.day} at 10:00"))
    expect(status).to_contain_text("You are the first booking of that day.")
    expect(status).not_to_contain_text("You are next")
    expect(page.locator("main")).not_to_contain_text(re.compile(r"\d+ h \d+ min"))
    # The day is written once on the page, not in two forms.
    assert page.locator("main").inner_text().count(tomorrow.strftime("%B")) == 1


def test_a_small_delay_is_not_announced(site, browsers):
    """Someone booked a minute earlier takes 5 minutes: this patient starts a minute after the
    booked time. That changes nothing they should do: no "running about 1 minute late"."""
    doctor = new_doctor(site, avgConsultMinutes=5)
    _, other, _ = new_patient(site, "Otto Other")
    book(site, other, doctor, 1)
    email, token, _ = new_patient(site)
    mine = book(site, token, doctor, 5)
    place = site.run(site.harness.api.get(f"/api/queue/appointment/{mine['id']}/position", token=token)).body
    assert 0 < place["delayMinutes"] < 5
    page, _ = open_waiting_room(browsers, email, mine)
    status = status_region(page)
    expect(status).to_contain_text("1 person ahead of you")
    expect(page.get_by_text("Live: this page updates by itself.")).to_be_visible()
    expect(status).not_to_contain_text("late")


def test_lateness_the_schedule_absorbs_says_the_time_did_not_move(site, browsers):
    doctor = new_doctor(site)
    email, token, _ = new_patient(site)
    appointment = book(site, token, doctor, 60)
    set_status(site, doctor, isRunningLate=True, lateByMinutes=10)
    page, _ = open_waiting_room(browsers, email, appointment)
    status = status_region(page)
    expect(status).to_contain_text(
        "The doctor is running 10 minutes late, but there is room in the schedule: your time has not moved.")
    expect(status).not_to_contain_text("Your appointment is running")


def test_lateness_and_a_break_make_one_statement(site, browsers):
    doctor = new_doctor(site)
    email, token, _ = new_patient(site)
    appointment = book(site, token, doctor, 2)
    set_status(site, doctor, isRunningLate=True, lateByMinutes=20,
               awayUntil=(datetime.now(timezone.utc) + timedelta(minutes=40)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    page, _ = open_waiting_room(browsers, email, appointment)
    status = status_region(page)
    expect(status).to_contain_text(re.compile(r"Your appointment is running about \d+ minutes late: "
                                              r"the doctor is on a break until \d{1,2}:\d{2}"))
    # One statement about lateness and breaks, not three numbers to reconcile.
    assert status.locator("p.notice, p.note").count() == 1
    assert "running 20 minutes late" not in status.inner_text()


def test_the_break_notice_goes_when_the_doctor_starts_seeing_patients(site, browsers):
    doctor = new_doctor(site)
    _, first_token, _ = new_patient(site, "Fay First")
    book(site, first_token, doctor, 1)
    email, token, _ = new_patient(site)
    mine = book(site, token, doctor, 3)
    set_status(site, doctor, awayUntil=(datetime.now(timezone.utc) + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    page, _ = open_waiting_room(browsers, email, mine)
    status = status_region(page)
    expect(status).to_contain_text(re.compile(r"(break|away) until"))  # (the first pass said "away")
    response = site.run(site.harness.api.post(f"/api/doctors/{doctor['id']}/queue/next",
                                              token=site.run(site.harness.admin_token())))
    assert response.status == 200 and response.body["current"]
    expect(status).to_contain_text("You are next")
    expect(status).not_to_contain_text(re.compile(r"(break|away) until"))


# Headless chromium has no speakers: the tones a page starts are recorded in window.__tones.
RECORD_TONES = """
    window.__tones = [];
    const start = OscillatorNode.prototype.start;
    OscillatorNode.prototype.start = function (...args) { window.__tones.push(this.frequency.value); return start.apply(this, args); };
"""


def test_a_background_tab_shows_the_turn_in_its_title_and_plays_the_sound_it_was_allowed(site, browsers):
    doctor = new_doctor(site)
    email, token, _ = new_patient(site)
    appointment = book(site, token, doctor, 5)
    context, _ = browsers.context(PHONE)
    # Headless chromium is always "visible" and has no speakers: let the test hide the tab and
    # record the tones the page starts.
    context.add_init_script("""
        window.__hidden = false;
        Object.defineProperty(document, 'visibilityState', { get: () => (window.__hidden ? 'hidden' : 'visible') });
        Object.defineProperty(document, 'hidden', { get: () => window.__hidden });
    """ + RECORD_TONES)
    page = context.new_page()
    page.goto(f"/app/waiting/{appointment['id']}")
    sign_in(page, email, "patient-password")
    expect(page.get_by_text("Live: this page updates by itself.")).to_be_visible()
    page.get_by_label("Play a sound when my turn comes").check()
    page.evaluate("window.__hidden = true; document.dispatchEvent(new Event('visibilitychange'))")

    site.run(site.harness.api.post(f"/api/doctors/{doctor['id']}/queue/next", token=site.run(site.harness.admin_token())))
    expect(page).to_have_title(re.compile(r"^It is your turn · Waiting room"))
    assert page.evaluate("window.__tones.length") >= 1

    # Looking at the tab again: its own title comes back.
    page.evaluate("window.__hidden = false; document.dispatchEvent(new Event('visibilitychange'))")
    expect(page).to_have_title(re.compile(r"^Waiting room · "))


def test_no_sound_without_the_patients_consent(site, browsers):
    doctor = new_doctor(site)
    email, token, _ = new_patient(site)
    appointment = book(site, token, doctor, 5)
    context, _ = browsers.context(PHONE)
    context.add_init_script(RECORD_TONES)
    page = context.new_page()
    page.goto(f"/app/waiting/{appointment['id']}")
    sign_in(page, email, "patient-password")
    expect(page.get_by_text("Live: this page updates by itself.")).to_be_visible()
    site.run(site.harness.api.post(f"/api/doctors/{doctor['id']}/queue/next", token=site.run(site.harness.admin_token())))
    expect(page.get_by_role("link", name="Join call")).to_be_visible()
    assert page.evaluate("window.__tones") == []


def test_the_clinics_time_zone_is_named_where_it_differs(site, browsers):
    doctor = new_doctor(site)
    email, token, _ = new_patient(site)
    appointment = book(site, token, doctor, 30)
    away, _ = open_waiting_room(browsers, email, appointment, timezone_id="America/New_York")
    # Named as people say it (Intl's generic name), not as an IANA id. The test clinic's zone is a
    # fixed offset (Etc/GMT-3, chosen so that it is morning there), which Intl calls GMT+03:00.
    expect(away.get_by_text(re.compile(r"^Times are in your time zone \(Eastern Time\)\. "
                                       r"The clinic's time zone is GMT([+-]\d\d:\d\d)?\.$"))).to_be_visible()
    home, _ = open_waiting_room(browsers, email, appointment, **AT_THE_CLINIC)
    expect(home.get_by_text("The clinic's time zone")).to_have_count(0)


# -- the console ---------------------------------------------------------------------------------------

def console_for(browsers, doctor, viewport=DESKTOP, query=""):
    page, watch = browsers.page(viewport, **AT_THE_CLINIC)
    page.goto(f"/app/console{query}")
    sign_in(page, doctor["email"], "doctor-password")
    expect(page.get_by_role("heading", name="Console")).to_be_visible()
    return page, watch


def queue_entry(page, name):
    return page.locator("ol.queue > li").filter(has_text=name)


def test_the_console_is_two_columns_on_a_desktop_and_one_on_a_phone(site, browsers):
    doctor = new_doctor(site)
    site.run(site.harness.doctor_account(doctor))
    _, token, _ = new_patient(site)
    book(site, token, doctor, 10, patientName="Wide Screen")
    desktop, _ = console_for(browsers, doctor)
    expect(queue_entry(desktop, "Wide Screen")).to_be_visible()
    queue = desktop.get_by_role("region", name=re.compile(r"^Waiting")).bounding_box()
    now = desktop.get_by_role("region", name="In consultation").bounding_box()
    numbers = desktop.get_by_role("region", name="Today in numbers").bounding_box()
    assert now["x"] >= queue["x"] + queue["width"] - 1, (queue, now)   # beside, not below
    assert abs(now["y"] - queue["y"]) < 5
    assert numbers["x"] == now["x"] and numbers["y"] > now["y"]
    assert no_horizontal_scroll(desktop)

    phone, _ = console_for(browsers, doctor, PHONE)
    expect(queue_entry(phone, "Wide Screen")).to_be_visible()
    queue = phone.get_by_role("region", name=re.compile(r"^Waiting")).bounding_box()
    now = phone.get_by_role("region", name="In consultation").bounding_box()
    assert abs(now["x"] - queue["x"]) < 2 and queue["y"] > now["y"]
    assert no_horizontal_scroll(phone)


def test_the_console_shows_patients_contacts(site, browsers):
    doctor = new_doctor(site)
    site.run(site.harness.doctor_account(doctor))
    _, token, _ = new_patient(site)
    book(site, token, doctor, 10, patientName="Cora Contact", patientPhone="+33 6 12 34 56 78",
         patientEmail="cora@example.org")
    page, _ = console_for(browsers, doctor)
    entry = queue_entry(page, "Cora Contact")
    expect(entry.get_by_role("link", name="+33 6 12 34 56 78")).to_have_attribute("href", "tel:+33612345678")
    expect(entry.get_by_role("link", name="cora@example.org")).to_have_attribute("href", "mailto:cora@example.org")
    # Called in: the contacts stay with her in the consultation card.
    page.get_by_role("button", name="Call next").click()
    now = page.get_by_role("region", name="In consultation")
    expect(now.get_by_role("link", name="+33 6 12 34 56 78")).to_be_visible()


def test_the_console_shows_another_days_queue(site, browsers):
    doctor = new_doctor(site)
    site.run(site.harness.doctor_account(doctor))
    _, token, _ = new_patient(site)
    tomorrow = clinic_tomorrow_at(9, 30)
    book(site, token, doctor, when=tomorrow, patientName="Tom Orrow")
    page, _ = console_for(browsers, doctor)
    expect(page.get_by_role("heading", name="Waiting (0)")).to_be_visible()
    page.get_by_label("Day", exact=True).fill(tomorrow.strftime("%Y-%m-%d"))
    page.get_by_role("button", name="Show queue").click()
    expect(page).to_have_url(re.compile(f"date={tomorrow:%Y-%m-%d}"))
    expect(queue_entry(page, "Tom Orrow")).to_be_visible()
    expect(page.get_by_text(f"the queue of {tomorrow:%A}, {tomorrow:%B} {tomorrow.day}")).to_be_visible()
    expect(page.get_by_role("button", name="Call next")).to_have_count(0)
    expect(page.get_by_role("region", name="That day in numbers")).to_contain_text("Booked")
    assert axe_violations(page) == []
    page.get_by_role("link", name="Back to today's queue").click()
    expect(page.get_by_role("heading", name="Waiting (0)")).to_be_visible()


def test_no_show_asks_first_and_can_be_taken_back(site, browsers):
    doctor = new_doctor(site)
    site.run(site.harness.doctor_account(doctor))
    _, token, _ = new_patient(site)
    appointment = book(site, token, doctor, 5, patientName="Nell Noshow")
    site.run(site.harness.api.post(f"/api/doctors/{doctor['id']}/queue/next", token=site.run(site.harness.admin_token())))
    page, _ = console_for(browsers, doctor)
    now = page.get_by_role("region", name="In consultation")
    now.get_by_role("button", name="No-show Nell Noshow").click()
    expect(now).to_contain_text("Mark Nell Noshow as not present?")
    expect(now.get_by_role("button", name="Yes, mark as no-show")).to_be_focused()
    assert axe_violations(page) == []
    now.get_by_role("button", name="Go back").click()
    expect(now.get_by_role("button", name="No-show Nell Noshow")).to_be_focused()
    admin_token = site.run(site.harness.admin_token())
    assert site.run(site.harness.api.get(f"/api/appointments/{appointment['id']}", token=admin_token)).body["status"] \
        == "in_consultation"
    now.get_by_role("button", name="No-show Nell Noshow").click()
    now.get_by_role("button", name="Yes, mark as no-show").click()
    expect(page.get_by_text("Nell Noshow is marked as not present.")).to_be_visible()
    assert site.run(site.harness.api.get(f"/api/appointments/{appointment['id']}", token=admin_token)).body["status"] \
        == "no_show"


def test_an_error_is_announced_once_not_on_every_queue_change(site, browsers):
    """The alert that says why Call next failed is the same element after live redraws (a new
    role=alert element is read out again by screen readers)."""
    doctor = new_doctor(site)
    site.run(site.harness.doctor_account(doctor))
    _, token, _ = new_patient(site)
    book(site, token, doctor, 5, patientName="Ann Ahead")
    page, watch = browsers.page(DESKTOP)
    watch.expect_status(409)
    state = {"frozen": False}

    def relay(socket_route):
        server = socket_route.connect_to_server()
        socket_route.on_message(server.send)
        server.on_message(lambda message: None if state["frozen"] else socket_route.send(message))

    page.route_web_socket(re.compile(r"/ws"), relay)
    page.goto("/app/console")
    sign_in(page, doctor["email"], "doctor-password")
    expect(queue_entry(page, "Ann Ahead")).to_be_visible()
    # Someone else calls Ann in while this screen hears nothing: its Call next is refused.
    state["frozen"] = True
    admin_token = site.run(site.harness.admin_token())
    site.run(site.harness.api.post(f"/api/doctors/{doctor['id']}/queue/next", {"expectCurrent": None}, token=admin_token))
    page.get_by_role("button", name="Call next").click()
    now = page.get_by_role("region", name="In consultation")
    alert = now.get_by_role("alert").filter(has_text="The queue changed")
    expect(alert).to_be_visible()
    alert.evaluate("element => { element.dataset.seen = 'yes'; }")
    state["frozen"] = False
    # Live changes redraw the queue: the alert is left alone.
    _, other, _ = new_patient(site)
    book(site, other, doctor, 20, patientName="Bea Booked")
    expect(queue_entry(page, "Bea Booked")).to_be_visible()
    expect(page.get_by_role("alert").filter(has_text="The queue changed")).to_have_attribute("data-seen", "yes")
    assert page.get_by_role("alert").filter(has_text="The queue changed").count() == 1


# -- the invitation ------------------------------------------------------------------------------------

def test_the_invitation_page_says_which_email_the_account_uses(site, browsers):
    admin, _ = browsers.page(DESKTOP)
    admin.goto("/app/admin")
    sign_in(admin, ADMIN_EMAIL, ADMIN_PASSWORD)
    email = f"new-admin-{uuid.uuid4().hex[:8]}@example.org"
    invite_url = create_invitation(admin, email, "admin")
    page, _ = browsers.page(PHONE)
    page.goto(invite_url)
    expect(page.get_by_text("Your account will use the email address")).to_contain_text(email)
    page.get_by_label("Name").fill("Nadia Admin")
    page.get_by_label("Password").fill("a-good-password")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Admin", exact=True)).to_be_visible()
