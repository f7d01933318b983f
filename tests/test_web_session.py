"""Browser tests of the web app's session with short-lived access tokens (8 s here).

The app refreshes its access token before it expires (POST /api/auth/refresh) and hands the fresh one
to its open socket with an `auth` frame, so a waiting room left open for longer than a token lives
keeps working: no sign-in prompt, and the live updates keep coming.
"""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.web_browser import PHONE, Browsers, Site, launch_browser, sign_in

TOKEN_SECONDS = 8


@pytest.fixture(scope="module")
def site():
    site = Site(settings={"jwt_expires_seconds": TOKEN_SECONDS})
    yield site
    site.close()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        yield browser
        browser.close()


@pytest.fixture
def browsers(browser, site):
    opened = Browsers(browser, site)
    yield opened
    opened.close()


def test_the_waiting_room_outlives_its_access_token(site, browsers):
    harness = site.harness
    doctor = site.run(harness.create_doctor())
    email = f"short-{uuid.uuid4().hex[:8]}@example.org"
    token, _ = site.run(harness.register(email=email, password="patient-password"))
    appointment = site.run(harness.book(token, doctor["id"]))

    page, _ = browsers.page(PHONE)
    page.goto(f"/app/waiting/{appointment['id']}")
    sign_in(page, email, "patient-password")
    status = page.get_by_role("status").filter(has=page.locator(".headline"))
    expect(status).to_contain_text("You are next")

    # Several token lifetimes pass with the page open; then the doctor calls: the page hears it live.
    page.wait_for_timeout((TOKEN_SECONDS * 2 + 2) * 1000)
    expect(page.get_by_text("Your session has ended. Sign in again to continue where you were.")).to_have_count(0)
    response = site.run(harness.api.post(f"/api/doctors/{doctor['id']}/queue/next", token=site.run(harness.admin_token())))
    assert response.status == 200
    expect(page.get_by_role("link", name="Join call")).to_be_visible(timeout=5000)
    expect(status).to_contain_text("It is your turn")
    assert re.search(f"/app/waiting/{appointment['id']}$", page.url)
