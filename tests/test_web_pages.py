"""Every page of the web app at phone and desktop width: no horizontal scroll, no accessibility
violation found by axe-core (WCAG 2.1 A and AA, colour contrast included), and a screenshot.

Screenshots go to a temporary folder; `make screenshots` sets MEDPHARMA_SCREENSHOTS=docs/screenshots
to refresh the ones in the README.
"""

from __future__ import annotations

import os
import re
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.web_browser import DESKTOP, PHONE, axe_violations, no_horizontal_scroll, sign_in


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = os.environ.get("MEDPHARMA_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def world(site):
    """A doctor running late with a queue, a patient in it (not first), one called patient, an invite."""
    harness = site.harness
    admin_token = site.run(harness.admin_token())
    doctor = site.run(harness.create_doctor(admin_token, name="Dr. Amara Okafor", specialization="Family medicine"))
    site.run(harness.create_doctor(admin_token, name="Dr. Jonas Lind", specialization="Dermatology"))
    site.run(harness.doctor_account(doctor, admin_token))
    soon = datetime.now(timezone.utc) + timedelta(minutes=5)
    for index, (name, reason) in enumerate([("Maria Santos", "Persistent cough"), ("Li Wei", "Blood test results")]):
        token, _ = site.run(harness.register(name=name))
        site.run(harness.book(token, doctor["id"], soon + timedelta(minutes=5 * index), patientName=name, reason=reason))
    email = f"sam-{uuid.uuid4().hex[:8]}@example.org"
    token, _ = site.run(harness.register(name="Sam Patel", email=email, password="patient-password"))
    mine = site.run(harness.book(token, doctor["id"], soon + timedelta(minutes=20), patientName="Sam Patel",
                                 reason="Knee pain after running"))
    site.run(harness.api.patch(f"/api/doctors/{doctor['id']}/status", {"isRunningLate": True, "lateByMinutes": 15},
                               token=admin_token))
    invite = site.run(harness.api.post("/api/admin/invites", {"email": "new.admin@example.org", "role": "admin"},
                                       token=admin_token))
    return {"doctor": doctor, "patient_email": email, "appointment": mine, "invite_token": invite.body["token"]}


def check_page(page, shots: Path, name: str, width: str) -> None:
    assert no_horizontal_scroll(page), f"{name} scrolls sideways at {width} width"
    violations = axe_violations(page)
    assert violations == [], f"{name} at {width} width: {violations}"
    page.mouse.move(0, 0)  # no hover highlight left from the last click
    page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True)


@pytest.mark.parametrize("viewport, width", [(PHONE, "phone"), (DESKTOP, "desktop")])
def test_every_page_fits_passes_axe_and_is_pictured(site, browsers, world, shots, viewport, width):
    signed_out, _ = browsers.page(viewport)
    signed_out.goto("/app/signin")
    expect(signed_out.get_by_role("button", name="Sign in")).to_be_visible()
    check_page(signed_out, shots, "signin", width)
    signed_out.goto("/app/register")
    expect(signed_out.get_by_role("button", name="Create account")).to_be_visible()
    check_page(signed_out, shots, "register", width)
    signed_out.goto(f"/app/invite?token={world['invite_token']}&email=new.admin%40example.org")  # as the admin page links it
    expect(signed_out.get_by_role("button", name="Create account")).to_be_visible()
    check_page(signed_out, shots, "invite", width)

    patient, _ = browsers.page(viewport)
    patient.goto("/app/signin")
    sign_in(patient, world["patient_email"], "patient-password")
    expect(patient.get_by_role("heading", name="My appointments")).to_be_visible()
    check_page(patient, shots, "appointments", width)
    patient.goto("/app/book")
    expect(patient.get_by_role("button", name="Book appointment")).to_be_visible()
    check_page(patient, shots, "book", width)
    patient.goto(f"/app/waiting/{world['appointment']['id']}")
    expect(patient.get_by_role("status").filter(has=patient.locator(".headline"))).to_contain_text("2 people ahead of you")
    # The declared lateness moves this patient's time: said once, as the cause of the delay.
    expect(patient.get_by_role("status")).to_contain_text("the doctor is running 15 minutes late")
    expect(patient.get_by_text("Live: this page updates by itself.")).to_be_visible()
    check_page(patient, shots, "waiting", width)

    doctor, _ = browsers.page(viewport)
    doctor.goto("/app/console")
    sign_in(doctor, world["doctor"]["email"], "doctor-password")
    expect(doctor.get_by_text("Maria Santos")).to_be_visible()
    check_page(doctor, shots, "console", width)

    admin, _ = browsers.page(viewport)
    admin.goto("/app/admin")
    sign_in(admin, ADMIN_EMAIL, ADMIN_PASSWORD)
    expect(admin.get_by_role("heading", name="Dr. Amara Okafor")).to_be_visible()
    expect(admin.get_by_role("region", name="Audit log").get_by_text("Doctor added").first).to_be_visible()
    check_page(admin, shots, "admin", width)

    admin.goto("/app/no-such-page")
    expect(admin.get_by_role("heading", name="Page not found")).to_be_visible()
    check_page(admin, shots, "not-found", width)


def test_join_call_page_passes_axe(site, browsers, shots):
    """The waiting room at its best moment, pictured and checked like the rest."""
    harness = site.harness
    doctor = site.run(harness.create_doctor(name="Dr. Rosa Diaz"))
    email = f"joiner-{uuid.uuid4().hex[:8]}@example.org"
    token, _ = site.run(harness.register(name="Joy Joiner", email=email, password="patient-password"))
    appointment = site.run(harness.book(token, doctor["id"]))
    site.run(harness.api.post(f"/api/doctors/{doctor['id']}/queue/next", token=site.run(harness.admin_token())))
    for viewport, width in [(PHONE, "phone"), (DESKTOP, "desktop")]:
        page, _ = browsers.page(viewport)
        page.goto(f"/app/waiting/{appointment['id']}")
        sign_in(page, email, "patient-password")
        expect(page.get_by_role("link", name="Join call")).to_be_visible()
        check_page(page, shots, "waiting-join", width)


def test_keyboard_alone_signs_in_books_and_opens_the_waiting_room(site, browsers, world):
    email = f"keys-{uuid.uuid4().hex[:8]}@example.org"
    site.run(site.harness.register(name="Kim Keys", email=email, password="patient-password"))
    page, _ = browsers.page(PHONE)
    page.goto("/app/signin")
    expect(page.get_by_role("heading", name="Sign in")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Email")).to_be_focused()
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type("patient-password")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="My appointments")).to_be_focused()

    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Book an appointment")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Book an appointment")).to_be_focused()
    tab_to(page, page.get_by_label("Phone"))
    page.keyboard.type("+1 555 0142")
    tab_to(page, page.get_by_role("button", name="Book appointment"))
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/app/waiting/[0-9a-f]{24}$"))
    expect(page.get_by_role("heading", name="Waiting room")).to_be_focused()
    tab_to(page, page.get_by_role("button", name="Cancel appointment"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Yes, cancel it")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").filter(has=page.locator(".headline"))).to_contain_text("Cancelled")


def tab_to(page, locator, limit: int = 40) -> None:
    """Presses Tab until `locator` has the focus; fails if it never gets it."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if locator.evaluate("element => element === document.activeElement"):
            return
    raise AssertionError(f"{locator} was not reachable with Tab")
