"""What the browser tests of the web app share: a real server, Debian's chromium driven by
Playwright, and the checks every page must pass (no request to another host, no console error).

The server runs on its own asyncio loop in a background thread (`LoopThread`), so Playwright's
synchronous API can drive the browser from the test thread. One browser per test module; each test
opens its own contexts (separate storage = separate people).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import LoopThread, start_harness, stop_harness

CHROMIUM = os.environ.get("MEDPHARMA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
AXE_SOURCE = Path(__file__).parent / "vendor" / "axe-4.14.1.min.js"
# Chromium logs every HTTP error answer a page fetched as a console error; a test that provokes
# one on purpose names it, any other is a failure.
RESOURCE_ERROR = re.compile(r"Failed to load resource: the server responded with a status of (\d+)")


def require_chromium() -> str:
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.fail(f"The browser tests need Debian's chromium at {CHROMIUM}: as root, run "
                    "`apt-get update && apt-get install -y chromium` (make test does this itself when it "
                    "runs as root), or set MEDPHARMA_CHROMIUM to a chromium binary.", pytrace=False)
    return CHROMIUM


class Site:
    """A running server for browser tests; `run` executes a coroutine on the server's loop."""

    def __init__(self, **options) -> None:
        self.loop = LoopThread("web-test-server")
        self.harness = self.loop.run(start_harness(**options))
        self.base = self.harness.base

    def run(self, coroutine, timeout: float = 60):
        return self.loop.run(coroutine, timeout)

    def url(self, path: str) -> str:
        return self.base + path

    def close(self) -> None:
        try:
            self.loop.run(stop_harness(self.harness))
        finally:
            self.loop.close()


@dataclass
class PageWatch:
    """Everything a page did that it should not have: other hosts, console errors, uncaught errors."""

    allowed_host: str
    foreign_requests: list = field(default_factory=list)
    console_errors: list = field(default_factory=list)
    page_errors: list = field(default_factory=list)
    expected_statuses: set = field(default_factory=set)

    def attach(self, context) -> None:
        context.on("request", self._request)
        context.on("page", self._page)
        for page in context.pages:
            self._page(page)

    def _page(self, page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def _request(self, request) -> None:
        host = urlsplit(request.url).netloc
        if request.url.startswith(("data:", "blob:", "about:")):
            return
        if host != self.allowed_host:
            self.foreign_requests.append(request.url)

    def _console(self, message) -> None:
        if message.type != "error":
            return
        match = RESOURCE_ERROR.search(message.text)
        if match and int(match.group(1)) in self.expected_statuses:
            return
        self.console_errors.append(message.text)

    def expect_status(self, *statuses: int) -> None:
        """This test provokes these HTTP error answers on purpose."""
        self.expected_statuses.update(statuses)

    def check(self) -> None:
        assert self.foreign_requests == [], f"requests to other hosts: {self.foreign_requests}"
        assert self.page_errors == [], f"uncaught errors: {self.page_errors}"
        assert self.console_errors == [], f"console errors: {self.console_errors}"


class Browsers:
    """Opens watched contexts and closes them (and checks them) at the end of the test."""

    def __init__(self, browser, site: Site) -> None:
        self.browser = browser
        self.site = site
        self.opened: list[tuple] = []

    def context(self, viewport=PHONE, **options):
        context = self.browser.new_context(viewport=viewport, base_url=self.site.base, **options)
        context.set_default_timeout(10_000)
        watch = PageWatch(allowed_host=urlsplit(self.site.base).netloc)
        watch.attach(context)
        self.opened.append((context, watch))
        return context, watch

    def page(self, viewport=PHONE, **options):
        context, watch = self.context(viewport, **options)
        return context.new_page(), watch

    def close(self) -> None:
        watches = [watch for _, watch in self.opened]
        for context, _ in self.opened:
            context.close()
        for watch in watches:
            watch.check()


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=require_chromium(), headless=True, args=CHROMIUM_ARGS)


SIGN_IN_LABELS = {"en": ("Email", "Password", "Sign in"), "fr": ("E-mail", "Mot de passe", "Se connecter")}


def sign_in(page, email: str, password: str, language: str = "en") -> None:
    email_label, password_label, button = SIGN_IN_LABELS[language]
    page.get_by_label(email_label).fill(email)
    page.get_by_label(password_label).fill(password)
    page.get_by_role("button", name=button).click()


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def axe_violations(page) -> list:
    """Runs the vendored axe-core (WCAG 2 A and AA rules) on the page; returns the violations."""
    page.evaluate(AXE_SOURCE.read_text())
    result = page.evaluate("""async () => {
        const result = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}});
        return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                            nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
    }""")
    return result


# -- people and invitations the browser tests start from ----------------------------------------------

def new_doctor(site, **fields):
    """A doctor made through the harness (no page involved), named uniquely unless `name` is given."""
    return site.run(site.harness.create_doctor(name=fields.pop("name", f"Dr. Ada {uuid.uuid4().hex[:4]}"), **fields))


def new_patient(site, name: str = "Pat Patient"):
    """A freshly registered patient: `(email, access token, user)`; the password is `patient-password`."""
    email = f"patient-{uuid.uuid4().hex[:10]}@example.org"
    token, user = site.run(site.harness.register(name=name, email=email, password="patient-password"))
    return email, token, user


def create_invitation(admin_page, email: str, role: str, doctor_profile: str | None = None) -> str:
    """Fills the admin page's Invitations form and returns the invitation link it shows."""
    from playwright.sync_api import expect

    invites = admin_page.get_by_role("region", name="Invitations")
    invites.get_by_label("Email").fill(email)
    invites.get_by_label("Role").select_option(role)
    if doctor_profile is not None:
        invites.get_by_label("Doctor profile (for a doctor)").select_option(label=doctor_profile)
    invites.get_by_role("button", name="Create invitation").click()
    link = invites.get_by_label("Invitation link")
    expect(link).to_have_value(re.compile(r"/app/invite\?token="))
    return link.input_value()
