"""Browser tests of the web app's session, with short-lived access tokens (20 s here).

The app refreshes its access token before it expires (POST /api/auth/refresh) and hands the fresh one
to its open socket with an `auth` frame, so a waiting room left open for longer than a token lives
keeps working: no sign-in prompt, the same socket, and the live updates keep coming. The refresh token
is an HttpOnly cookie no script can read, and nothing of it is in the page's storage. Two tabs of one
person share one session (and the cookie): it rotates, and a tab that presented a spent one would end
the session for both. Signing out ends the session on the server and clears the cookie; a disabled
account's open page is told so.
"""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.web_browser import PHONE, sign_in

TOKEN_SECONDS = 20  # the app refreshes a fifth of a lifetime ahead: 4 s, not late even on a busy machine
STORED_SESSION = "JSON.parse(localStorage.getItem('medpharma.session'))"
COOKIE = "medpharma_refresh"
# Everything a script of the page can read: both storages, every IndexedDB store, and document.cookie.
READABLE_BY_SCRIPTS = """async () => {
    const dump = {local: {...localStorage}, session: {...sessionStorage}, cookie: document.cookie, indexedDB: {}};
    for (const info of await indexedDB.databases()) {
        const db = await new Promise((ok, fail) => {
            const opening = indexedDB.open(info.name); opening.onsuccess = () => ok(opening.result);
            opening.onerror = () => fail(opening.error); });
        for (const store of db.objectStoreNames) {
            const read = db.transaction(store).objectStore(store);
            const [keys, values] = await Promise.all([read.getAllKeys(), read.getAll()].map((request) =>
                new Promise((ok) => { request.onsuccess = () => ok(request.result); })));
            dump.indexedDB[`${info.name}/${store}`] = {keys, values};
        }
        db.close();
    }
    return JSON.stringify(dump);
}"""


def session_cookie(context) -> dict | None:
    found = [cookie for cookie in context.cookies() if cookie["name"] == COOKIE]
    return found[0] if found else None


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
    first_cookie = session_cookie(context)
    assert first_cookie["httpOnly"] and first_cookie["sameSite"] == "Strict" and first_cookie["path"] == "/api/auth"

    # Several token lifetimes pass with the tabs open.
    first.wait_for_timeout((TOKEN_SECONDS * 2 + 2) * 1000)
    for page in pages:
        expect(page.get_by_text("Your session has ended. Sign in again to continue where you were.")).to_have_count(0)

    # The same sockets, each kept open by `auth` frames carrying newer tokens: none reconnected.
    assert sockets_of(site, user["id"]) == sockets
    assert all(socket.viewer.expires_at > opened_until[socket] for socket in sockets)
    # The tabs rotated along one chain (the one cookie): the session is alive and its latest tokens work.
    stored = first.evaluate(STORED_SESSION)
    assert session_cookie(context)["value"] != first_cookie["value"] and stored["token"] != signed_in["token"]
    assert all(page.evaluate(STORED_SESSION) == stored for page in pages)
    assert "refreshToken" not in stored
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
    cookie = session_cookie(page.context)["value"]
    assert sockets_of(site, user["id"])

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate(STORED_SESSION) is None
    assert session_cookie(page.context) is None  # the server cleared it
    # The last access token and refresh token the page held are dead, and no socket of it is left.
    assert site.run(harness.api.get("/api/auth/me", token=signed_in["token"])).status == 401
    refreshed = site.run(harness.api.post("/api/auth/refresh", headers={"Cookie": f"{COOKIE}={cookie}",
                                                                        "Origin": site.base}))
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


def test_no_script_of_the_page_can_read_the_refresh_token(site, browsers):
    """The app signs in with the session cookie: the refresh token is HttpOnly, and neither it nor any
    refresh token is in localStorage, sessionStorage or IndexedDB, after sign-in, after a refresh, and
    after a reload that finds a session an older version of the app stored with its refresh token."""
    harness = site.harness
    email = f"cookie-{uuid.uuid4().hex[:8]}@example.org"
    site.run(harness.register(email=email, password="patient-password"))
    page, _ = browsers.page(PHONE)
    page.goto("/app/signin")
    sign_in(page, email, "patient-password")
    expect(page.get_by_role("heading", name="My appointments")).to_be_visible()

    def readable() -> str:
        return page.evaluate(READABLE_BY_SCRIPTS)

    cookie = session_cookie(page.context)
    assert cookie["httpOnly"]
    dump = readable()
    assert cookie["value"] not in dump and "refreshToken" not in dump and COOKIE not in dump

    # A refresh (as the timer would do it): the cookie rotates, and still nothing of it is readable.
    assert page.evaluate("async () => (await import('/app/js/session.js')).session.refresh()") is True
    rotated = session_cookie(page.context)
    assert rotated["value"] != cookie["value"]
    dump = readable()
    assert rotated["value"] not in dump and cookie["value"] not in dump and "refreshToken" not in dump
    assert site.run(harness.api.get("/api/auth/me", token=page.evaluate(STORED_SESSION)["token"])).status == 200

    # A session stored by the app's previous version, refresh token and all: dropped at the next load.
    page.evaluate("""() => { const stored = JSON.parse(localStorage.getItem('medpharma.session'));
        localStorage.setItem('medpharma.session', JSON.stringify({...stored, refreshToken: 'left-by-an-old-version'})); }""")
    page.reload()
    expect(page.get_by_role("heading", name="My appointments")).to_be_visible()
    assert "refreshToken" not in readable() and "left-by-an-old-version" not in readable()
