"""Browser tests of booking by slot, rescheduling and editing a doctor's working hours."""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta

from playwright.sync_api import expect

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.web_browser import DESKTOP, PHONE, new_patient, no_horizontal_scroll, sign_in

ALL_DAY = [{"day": day, "start": "00:00", "end": "24:00"} for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")]


def doctor_with_hours(site, **fields):
    return site.run(site.harness.create_doctor(name=f"Dr. Slot {uuid.uuid4().hex[:4]}", hours=ALL_DAY,
                                               slotMinutes=30, **fields))


def slots(site, doctor_id, day=None):
    response = site.run(site.harness.api.get(f"/api/doctors/{doctor_id}/slots" + (f"?date={day}" if day else "")))
    assert response.status == 200
    return response.body


def book_via_api(site, token, doctor_id, start):
    body = {"patientName": "Olga Other", "patientEmail": "olga@example.org", "patientPhone": "+1 555 0100",
            "doctor": doctor_id, "date": start}
    response = site.run(site.harness.api.post("/api/appointments", body, token=token))
    assert response.status == 201, response.body
    return response.body


def test_a_patient_books_one_of_the_free_times(site, browsers):
    doctor = doctor_with_hours(site)
    today = slots(site, doctor["id"])
    _, other, _ = new_patient(site)
    book_via_api(site, other, doctor["id"], today["slots"][0]["start"])  # the first free time is gone
    email, token, _ = new_patient(site)

    page, _ = browsers.page(PHONE)
    page.goto(f"/app/book?doctor={doctor['id']}")
    sign_in(page, email, "patient-password")
    times = page.get_by_role("group", name="Free times")
    expect(times.get_by_role("button").first).to_be_visible()
    expect(page.get_by_label("Time", exact=True)).to_be_hidden()  # no free-form time for a doctor with hours
    expect(page.get_by_role("button", name="Tomorrow")).to_be_visible()
    page.get_by_label("Phone").fill("+1 555 0123")
    page.get_by_role("button", name="Book appointment").click()
    expect(page.get_by_role("alert").filter(has_text="Choose one of the free times.")).to_be_visible()

    times.get_by_role("button").first.click()
    expect(times.get_by_role("button").first).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="Book appointment").click()
    expect(page).to_have_url(re.compile(r"/app/waiting/[0-9a-f]{24}$"))
    booked = site.run(site.harness.api.get(f"/api/appointments/{page.url.rsplit('/', 1)[1]}", token=token)).body
    assert booked["date"] == today["slots"][1]["start"]
    assert no_horizontal_scroll(page)


def test_a_patient_reschedules_from_their_appointments_and_from_the_waiting_room(site, browsers):
    doctor = doctor_with_hours(site)
    email, token, _ = new_patient(site)
    today = slots(site, doctor["id"])
    appointment = book_via_api(site, token, doctor["id"], today["slots"][0]["start"])
    tomorrow = (date.fromisoformat(today["date"]) + timedelta(days=1)).isoformat()  # the clinic's next day

    page, _ = browsers.page(PHONE)
    page.goto("/app/appointments")
    sign_in(page, email, "patient-password")
    page.get_by_role("button", name="Reschedule").click()
    page.get_by_role("button", name="Tomorrow").click()
    times = page.get_by_role("group", name="Free times")
    expect(times.get_by_role("button").first).to_be_visible()
    times.get_by_role("button").first.click()
    page.get_by_role("button", name="Move my appointment").click()
    expect(page.get_by_role("button", name="Reschedule")).to_be_visible()
    moved = site.run(site.harness.api.get(f"/api/appointments/{appointment['id']}", token=token)).body
    assert slots(site, doctor["id"], tomorrow)["slots"][0] == {"start": moved["date"], "free": False}
    assert slots(site, doctor["id"])["slots"][0] == {"start": today["slots"][0]["start"], "free": True}

    page.goto(f"/app/waiting/{appointment['id']}")
    booked_line = page.locator(".booked")
    before = booked_line.inner_text()
    page.get_by_role("button", name="Reschedule").click()
    times = page.get_by_role("group", name="Free times")
    expect(times.get_by_role("button").first).to_be_visible()  # today's first free time
    times.get_by_role("button").first.click()
    page.get_by_role("button", name="Move my appointment").click()
    expect(booked_line).not_to_have_text(before)
    again = site.run(site.harness.api.get(f"/api/appointments/{appointment['id']}", token=token)).body
    assert again["date"] == today["slots"][0]["start"]


def test_a_doctor_edits_their_hours_in_the_console_and_an_admin_in_the_admin_page(site, browsers):
    harness = site.harness
    doctor = site.run(harness.create_doctor(name=f"Dr. Hours {uuid.uuid4().hex[:4]}"))
    site.run(harness.doctor_account(doctor))

    page, watch = browsers.page(DESKTOP)
    watch.expect_status(400)  # the overlapping rows, refused on purpose
    page.goto("/app/console")
    sign_in(page, doctor["email"], "doctor-password")
    hours = page.get_by_role("region", name="Working hours")
    expect(hours).to_contain_text("No working hours set")
    hours.get_by_role("button", name="Edit hours").click()
    hours.get_by_role("button", name="Add hours").click()
    hours.locator('[name="hours.0.start"]').fill("09:00")
    hours.locator('[name="hours.0.end"]').fill("12:00")
    hours.get_by_role("button", name="Add hours").click()
    hours.locator('[name="hours.1.day"]').select_option("mon")
    hours.locator('[name="hours.1.start"]').fill("11:00")
    hours.locator('[name="hours.1.end"]').fill("13:00")
    hours.get_by_role("button", name="Save hours").click()
    expect(hours).to_contain_text("overlaps mon 09:00-12:00")
    hours.locator('[name="hours.1.start"]').fill("14:00")
    hours.locator('[name="hours.1.end"]').fill("18:00")
    hours.get_by_role("button", name="Save hours").click()
    expect(hours).to_contain_text("Working hours saved.")
    expect(hours).to_contain_text("Mon 09:00–12:00, 14:00–18:00")
    saved = site.run(harness.api.get(f"/api/doctors/{doctor['id']}")).body
    assert saved["hours"] == [{"day": "mon", "start": "09:00", "end": "12:00"},
                              {"day": "mon", "start": "14:00", "end": "18:00"}]

    admin_page, _ = browsers.page(DESKTOP)
    admin_page.goto("/app/admin")
    sign_in(admin_page, ADMIN_EMAIL, ADMIN_PASSWORD)
    admin_page.get_by_role("button", name=f"Hours of {doctor['name']}").click()
    admin_page.get_by_label("Slot length (minutes)").fill("20")
    admin_page.get_by_role("button", name="Save hours").click()
    expect(admin_page.get_by_text(f"The hours of {doctor['name']} are saved.")).to_be_visible()
    assert site.run(harness.api.get(f"/api/doctors/{doctor['id']}")).body["slotMinutes"] == 20


def test_a_time_taken_while_choosing_is_explained_in_the_page_language(site, browsers):
    """The API's refusals a patient can meet have a sentence in each catalogue: in French, a time
    someone else booked between the listing and the press reads in French, not in the API's English."""
    doctor = doctor_with_hours(site)
    email, _, _ = new_patient(site)
    page, watch = browsers.page(PHONE)
    watch.expect_status(409)
    page.goto(f"/app/book?doctor={doctor['id']}&lang=fr")
    sign_in(page, email, "patient-password", language="fr")
    times = page.get_by_role("group", name="Horaires libres")
    times.get_by_role("button").first.click()
    _, other, _ = new_patient(site)
    book_via_api(site, other, doctor["id"], slots(site, doctor["id"])["slots"][0]["start"])
    page.get_by_label("Téléphone").fill("+33 6 12 34 56 78")
    page.get_by_role("button", name="Réserver").click()
    expect(page.get_by_text("Cet horaire vient d'être pris par quelqu'un d'autre.")).to_be_visible()
