"""Browser tests of the web app's session, with short-lived access tokens (20 s here).

The app refreshes its access token before it expires (POST /api/auth/refresh) and hands the fresh one
to its open socket with an `auth` frame, so a waiting room left open for longer than a token lives
keeps working: no sign-in prompt, the same socket, and the live updates keep coming. Two tabs of one
person share one session: the refresh token rotates, and a tab that presented a spent one would end
the session for both. Signing out ends the session on the server; a disabled account's open page is
told so.
"""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.web_browser import PHONE, sign_in

TOKEN_SECONDS = 20  # the app refreshes a fifth of a lifetime ahead: 4 s, not late even on a busy machine
STORED_SESSION = "JSON.parse(localStorage.getItem('medpharma.session'))"


SITE_SETTINGS = {"jwt_expires_seconds": TOKEN_SECONDS}  # read by the `site` fixture (tests/conftest.py)


def status_region(page):
    return page.get_by_role("status").filter(has=page.locator(".headline"))


def sockets_of(site, user_id):
    return {socket for socket in site.harness.services.sockets
            if socket.viewer is not None and socket.viewer.user_id == user_id}


@pytest.mark.parametrize("tabs", [1, 2], ids=["one tab", "two tabs"])
def test_waiting_rooms_outlive_their_access_tokens_on_the_same_sockets_and_session(site, browsers, tabs):
    """Two tabs of one browser share one stored session and refresh along one chain of refresh tokens:
    neither may present a token the other already spent (which ends the session for both)."""
    harness = site.harness
    doctor = site.run(harness.create_doctor())
    email = f"short-{uuid.uuid4().hex[:8]}@example.org"
    token, user = site.run(harness.register(email=email, password="patient-password"))
    appointment = site.run(harness.book(token, doctor["id"]))

    # Tabs of one browser: one sign-in, one stored session, every waiting room live.
    context, _ = browsers.context(PHONE)
    pages = [context.new_page() for _ in range(tabs)]
    first = pages[0]
    first.goto(f"/app/waiting/{appointment['id']}")
    sign_in(first, email, "patient-password")
    for page in pages[1:]:
        page.goto(f"/app/waiting/{appointment['id']}")
    for page in pages:
        expect(status_region(page)).to_contain_text("You are next")
        expect(page.get_by_text("Live: this page updates by itself.")).to_be_visible()
    sockets = sockets_of(site, user["id"])
    assert len(sockets) == tabs
    opened_until = {socket: socket.viewer.expires_at for socket in sockets}
    signed_in = first.evaluate(STORED_SESSION)

    # Several token lifetimes pass with the tabs open.
    first.wait_for_timeout((TOKEN_SECONDS * 2 + 2) * 1000)
    for page in pages:
        expect(page.get_by_text("Your session has ended. Sign in again to continue where you were.")).to_have_count(0)

    # The same sockets, each kept open by `auth` frames carrying newer tokens: none reconnected.
    assert sockets_of(site, user["id"]) == sockets
    assert all(socket.viewer.expires_at > opened_until[socket] for socket in sockets)
    # The tabs rotated along one chain: the session is alive and its latest tokens work.
    stored = first.evaluate(STORED_SESSION)
    assert stored["refreshToken"] != signed_in["refreshToken"]
    assert all(page.evaluate(STORED_SESSION) == stored for page in pages)
    assert site.run(harness.api.get("/api/auth/me", token=stored["token"])).status == 200

    response = site.run(harness.api.post(f"/api/doctors/{doctor['id']}/queue/next", token=site.run(harness.admin_token())))
    assert response.status == 200
    for page in pages:
        expect(page.get_by_role("link", name="Join call")).to_be_visible(timeout=5000)
        expect(status_region(page)).to_contain_text("It is your turn")
        assert re.search(f"/app/waiting/{appointment['id']}$", page.url)

def test_signing_out_ends_the_session_on_the_server(site, browsers):
    harness = site.harness
    doctor = site.run(harness.create_doctor())
    email = f"leaving-{uuid.uuid4().hex[:8]}@example.org"
    token, user = site.run(harness.register(email=email, password="patient-password"))
    appointment = site.run(harness.book(token, doctor["id"]))

    page, _ = browsers.page(PHONE)
    page.goto(f"/app/waiting/{appointment['id']}")
    sign_in(page, email, "patient-password")
    expect(page.get_by_text("Live: this page updates by itself.")).to_be_visible()
    signed_in = page.evaluate(STORED_SESSION)
    assert sockets_of(site, user["id"])

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate(STORED_SESSION) is None
    # The last access token and refresh token the page held are dead, and no socket of it is left.
    assert site.run(harness.api.get("/api/auth/me", token=signed_in["token"])).status == 401
    refreshed = site.run(harness.api.post("/api/auth/refresh", {"refreshToken": signed_in["refreshToken"]}))
    assert refreshed.status == 401
    assert sockets_of(site, user["id"]) == set()


def test_a_disabled_account_is_signed_out_of_its_open_page_with_a_sentence(site, browsers):
    harness = site.harness
    doctor = site.run(harness.create_doctor())
    email = f"disabled-{uuid.uuid4().hex[:8]}@example.org"
    token, user = site.run(harness.register(email=email, password="patient-password"))
    appointment = site.run(harness.book(token, doctor["id"]))

    page, watch = browsers.page(PHONE)
    watch.expect_status(401, 403)
    page.goto(f"/app/waiting/{appointment['id']}")
    sign_in(page, email, "patient-password")
    expect(page.get_by_text("Live: this page updates by itself.")).to_be_visible()

    admin_token = site.run(harness.admin_token())
    response = site.run(harness.api.patch(f"/api/admin/users/{user['id']}", {"disabled": True}, token=admin_token))
    assert response.status == 200 and response.body["disabled"] is True

    # The socket closes with 4003: the page signs out and says why, at the same address.
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_text("This account has been disabled. Contact the clinic if you think this is wrong.")).to_be_visible()
    assert page.url.endswith(f"/app/waiting/{appointment['id']}")
    assert page.evaluate(STORED_SESSION) is None

    # Signing in again is refused with the same sentence next to the form.
    sign_in(page, email, "patient-password")
    expect(page.get_by_role("alert")).to_contain_text("This account has been disabled.")
    assert page.url.endswith(f"/app/waiting/{appointment['id']}")
