"""Browser tests of the web app's session with short-lived access tokens (8 s here).

This server version answers sign-ins without a refresh token, so when the token runs out while the
waiting room is open, the socket is closed with 4001 and the app must say so, ask to sign in, and
come back to the same waiting room with the truth. (With a refresh token the app refreshes before
expiry and keeps the socket with an `auth` frame; that test needs the server's sessions.)
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


def test_an_expired_token_in_the_waiting_room_asks_to_sign_in_and_returns_there(site, browsers):
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

    # The token runs out: the server closes the socket with 4001 and the page asks to sign in again.
    expect(page.get_by_text("Your session has ended. Sign in again to continue where you were.")).to_be_visible(
        timeout=(TOKEN_SECONDS + 10) * 1000)
    assert re.search(f"/app/waiting/{appointment['id']}$", page.url)

    # The queue moved meanwhile; after signing in, the same waiting room shows it.
    response = site.run(harness.api.post(f"/api/doctors/{doctor['id']}/queue/next", token=site.run(harness.admin_token())))
    assert response.status == 200
    sign_in(page, email, "patient-password")
    expect(page.get_by_role("link", name="Join call")).to_be_visible()
    expect(status).to_contain_text("It is your turn")
