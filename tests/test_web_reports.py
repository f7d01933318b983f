"""The reports page in Chromium: charts drawn from the API's numbers, the table, the CSV download,
at phone width, for an admin and for a doctor."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from playwright.sync_api import expect

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.test_reports import build_days
from tests.web_browser import DESKTOP, PHONE, axe_violations, no_horizontal_scroll, sign_in

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


def test_an_admin_reads_one_doctor_as_charts_a_table_and_csv(site, browsers):
    harness = site.harness
    built = site.run(build_days(harness))
    day, ada = built["day"], built["ada"]
    span = f"from={day}&to={day + timedelta(days=3)}"
    rows = site.run(harness.api.get(f"/api/reports/days?{span}&doctor={ada['id']}", token=built["admin"])).body
    csv_text = site.run(harness.api.get(f"/api/reports/days?{span}&doctor={ada['id']}", token=built["admin"],
                                        headers={"Accept": "text/csv"})).text
    assert len(rows) == 3

    page, _ = browsers.page(PHONE)
    page.goto(f"/app/reports?{span}&doctor={ada['id']}")
    sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    expect(page.get_by_role("heading", name="Clinic reports", level=1)).to_be_visible()
    waits = page.get_by_role("img", name="Waiting time per day (minutes)")
    expect(waits).to_be_visible()
    # the chart's points are the API's numbers, day by day
    means = waits.locator("circle[data-series=mean]")
    expect(means).to_have_count(1)  # only day A had a wait; the other days have none to draw
    assert means.first.get_attribute("data-date") == rows[0]["date"]
    assert float(means.first.get_attribute("data-value")) == rows[0]["meanWaitMinutes"]
    p90 = waits.locator("circle[data-series=p90]").first
    assert float(p90.get_attribute("data-value")) == rows[0]["p90WaitMinutes"]
    bars = page.get_by_role("img", name="Consultations and no-shows per day")
    drawn = {(b.get_attribute("data-date"), b.get_attribute("data-series")): int(b.get_attribute("data-value"))
             for b in bars.locator("rect").all()}
    for row in rows:
        assert drawn[(row["date"], "completed")] == row["completed"]
        assert drawn[(row["date"], "noShows")] == row["noShows"]
    mae = page.get_by_role("img", name="How far the estimates were off (minutes)")
    assert float(mae.locator("circle").first.get_attribute("data-value")) == rows[0]["etaMaeMinutes"]
    ranges = page.get_by_role("img", name="Starts against the published range")
    assert int(ranges.locator(f"rect[data-date='{rows[0]['date']}'][data-series=late]").get_attribute("data-value")) == 1
    # each chart has a text summary, and the table holds every row
    # Days are written by the browser's Intl for the page's language (en-US here: "December 5, 2026").
    first = date.fromisoformat(rows[0]["date"])
    spoken = f"{first:%B} {first.day}, {first.year}"
    expect(waits).to_have_accessible_description(f"Mean wait: highest 8.3 min on {spoken}, lowest 8.3 min on {spoken}, "
                                                 f"over 1 day with data. 90th percentile wait: highest 20 min on "
                                                 f"{spoken}, lowest 20 min on {spoken}, over 1 day with data.")
    table = page.get_by_role("table", name="The numbers, day by day")
    expect(table.locator("tbody tr")).to_have_count(3)
    expect(table.locator("tbody tr").first).to_contain_text("8.3")
    assert no_horizontal_scroll(page)
    assert axe_violations(page) == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "reports-phone.png"), full_page=True)
    # the CSV link downloads what the API answers for text/csv
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert Path(download.value.path()).read_bytes().decode() == csv_text
    assert download.value.suggested_filename == f"medpharma-days-{day}-{day + timedelta(days=3)}.csv"


def test_a_doctor_reads_their_own_days_from_the_nav(site, browsers):
    harness = site.harness
    built = site.run(build_days(harness))
    day, bob = built["day"], built["bob"]
    site.run(harness.doctor_account(bob, built["admin"]))
    page, _ = browsers.page(DESKTOP)
    page.goto("/app/console")
    sign_in(page, bob["email"], "doctor-password")
    page.get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", name="My days in numbers")).to_be_visible()
    expect(page.get_by_label("Doctor")).to_have_count(0)  # a doctor has no choice of doctor
    page.get_by_label("From").fill(str(day - timedelta(days=1)))
    page.get_by_label("To").fill(str(day + timedelta(days=3)))
    page.get_by_role("button", name="Show").click()
    table = page.get_by_role("table", name="The numbers, day by day")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table.locator("tbody tr")).to_contain_text("Dr. Bob")
    expect(page).to_have_url(f"{site.base}/app/reports?from={day - timedelta(days=1)}&to={day + timedelta(days=3)}")
    expect(page.get_by_role("img", name="Waiting time per day (minutes)").locator("circle[data-series=mean]")).to_have_count(1)
    page.screenshot(path=str(SCREENSHOTS / "reports-desktop.png"), full_page=True)
