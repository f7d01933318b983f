"""The web app in French and English: the browser's language by default, `?lang=` to switch,
`<html lang>` to match, dates by the browser's Intl for that language, and every page passing axe
in French too (its own screenshots go with the English ones)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.test_web_pages import check_page, shots  # noqa: F401 (a fixture)
from tests.test_web_second_pass import AT_THE_CLINIC, clinic_tomorrow_at
from tests.web_browser import DESKTOP, PHONE, sign_in

DAYS_FR = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]
MONTHS_FR = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
             "novembre", "décembre"]


def patient_with_booking(site, doctor, when):
    email = f"fr-{uuid.uuid4().hex[:8]}@example.org"
    token, _ = site.run(site.harness.register(name="Chloé Patiente", email=email, password="patient-password"))
    return email, site.run(site.harness.book(token, doctor["id"], when, patientName="Chloé Patiente"))


def test_lang_in_the_address_switches_and_html_lang_follows(site, browsers):
    page, _ = browsers.page(PHONE)
    page.goto("/app/signin?lang=fr")
    expect(page.get_by_role("heading", name="Se connecter")).to_be_visible()
    assert page.evaluate("document.documentElement.lang") == "fr"
    expect(page).to_have_title("Se connecter · MedPharma Queue")
    expect(page.get_by_role("link", name="Aller au contenu")).to_have_count(1)
    # Remembered for the tab: the next page, without ?lang=, is still French.
    page.get_by_role("link", name="Créer un compte").first.click()
    expect(page.get_by_role("heading", name="Créer un compte")).to_be_visible()
    page.goto("/app/signin?lang=en")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("document.documentElement.lang") == "en"


def test_the_browsers_language_is_the_default_and_the_address_overrides_it(site, browsers):
    french, _ = browsers.page(PHONE, locale="fr-FR")
    french.goto("/app/signin")
    expect(french.get_by_role("heading", name="Se connecter")).to_be_visible()
    assert french.evaluate("document.documentElement.lang") == "fr"
    english, _ = browsers.page(PHONE, locale="fr-FR")
    english.goto("/app/signin?lang=en")
    expect(english.get_by_role("heading", name="Sign in")).to_be_visible()
    german, _ = browsers.page(PHONE, locale="de-DE")  # no German catalogue: English
    german.goto("/app/signin")
    expect(german.get_by_role("heading", name="Sign in")).to_be_visible()


def test_the_waiting_room_speaks_french_with_french_dates(site, browsers):
    harness = site.harness
    doctor = site.run(harness.create_doctor(name=f"Dr. Dupont {uuid.uuid4().hex[:4]}"))
    other_token = site.run(harness.register(name="Olivier Autre"))[0]
    site.run(harness.book(other_token, doctor["id"], datetime.now(timezone.utc) + timedelta(minutes=5)))
    email, today = patient_with_booking(site, doctor, datetime.now(timezone.utc) + timedelta(minutes=30))
    page, _ = browsers.page(PHONE, locale="fr-FR", **AT_THE_CLINIC)
    page.goto(f"/app/waiting/{today['id']}")
    sign_in(page, email, "patient-password", language="fr")
    status = page.get_by_role("status").filter(has=page.locator(".headline"))
    expect(status).to_contain_text("1 personne avant vous")
    expect(status).to_contain_text(re.compile(r"Prévu dans environ \d+ minutes, vers \d{1,2}:\d{2}\."))
    expect(status).to_contain_text(re.compile(r"Soyez prêt\(e\) dès \d{1,2}:\d{2}"))
    expect(page.get_by_text("En direct : cette page se met à jour toute seule.")).to_be_visible()

    tomorrow = clinic_tomorrow_at(10)
    other_doctor = site.run(harness.create_doctor(name=f"Dr. Martin {uuid.uuid4().hex[:4]}"))
    token = site.run(harness.api.post("/api/auth/login", {"email": email, "password": "patient-password"})).body["token"]
    later = site.run(harness.book(token, other_doctor["id"], tomorrow))
    page.goto(f"/app/waiting/{later['id']}")
    expect(status).to_contain_text(
        f"Rendez-vous le {DAYS_FR[tomorrow.weekday()]} {tomorrow.day} {MONTHS_FR[tomorrow.month - 1]} à 10:00")
    expect(status).to_contain_text("Vous êtes le premier rendez-vous de cette journée.")


def test_the_console_speaks_french(site, browsers):
    harness = site.harness
    doctor = site.run(harness.create_doctor(name=f"Dr. Bernard {uuid.uuid4().hex[:4]}"))
    site.run(harness.doctor_account(doctor))
    email, _ = patient_with_booking(site, doctor, datetime.now(timezone.utc) + timedelta(minutes=10))
    page, _ = browsers.page(DESKTOP, locale="fr-FR")
    page.goto("/app/console")
    sign_in(page, doctor["email"], "doctor-password", language="fr")
    expect(page.get_by_role("heading", name="En attente (1)")).to_be_visible()
    expect(page.get_by_text("Chloé Patiente")).to_be_visible()
    page.get_by_role("button", name="Appeler le suivant").click()
    expect(page.get_by_text("Consultation en cours avec Chloé Patiente.")).to_be_visible()
    expect(page.get_by_role("region", name="Aujourd'hui en chiffres")).to_contain_text("Réservés")


@pytest.mark.parametrize("viewport, width", [(PHONE, "phone"), (DESKTOP, "desktop")])
def test_every_page_passes_axe_in_french(site, browsers, shots, viewport, width):  # noqa: F811
    harness = site.harness
    admin_token = site.run(harness.admin_token())
    doctor = site.run(harness.create_doctor(admin_token, name="Dr. Élise Laurent", specialization="Médecine générale"))
    site.run(harness.doctor_account(doctor, admin_token))
    soon = datetime.now(timezone.utc) + timedelta(minutes=5)
    for index, name in enumerate(["Marie Lefèvre", "Hugo Petit"]):
        token, _ = site.run(harness.register(name=name))
        site.run(harness.book(token, doctor["id"], soon + timedelta(minutes=5 * index), patientName=name,
                              reason="Toux persistante"))
    email, mine = patient_with_booking(site, doctor, soon + timedelta(minutes=20))
    site.run(harness.api.patch(f"/api/doctors/{doctor['id']}/status", {"isRunningLate": True, "lateByMinutes": 15},
                               token=admin_token))

    signed_out, _ = browsers.page(viewport, locale="fr-FR")
    signed_out.goto("/app/signin")
    expect(signed_out.get_by_role("button", name="Se connecter")).to_be_visible()
    check_page(signed_out, shots, "signin-fr", width)
    signed_out.goto("/app/register")
    expect(signed_out.get_by_role("button", name="Créer le compte")).to_be_visible()
    check_page(signed_out, shots, "register-fr", width)

    patient, _ = browsers.page(viewport, locale="fr-FR")
    patient.goto("/app/book")
    sign_in(patient, email, "patient-password", language="fr")
    expect(patient.get_by_role("button", name="Réserver")).to_be_visible()
    check_page(patient, shots, "book-fr", width)
    patient.goto("/app/appointments")
    expect(patient.get_by_role("heading", name="Mes rendez-vous")).to_be_visible()
    check_page(patient, shots, "appointments-fr", width)
    patient.goto(f"/app/waiting/{mine['id']}")
    expect(patient.get_by_role("status").filter(has=patient.locator(".headline"))).to_contain_text("2 personnes avant vous")
    expect(patient.get_by_text("En direct : cette page se met à jour toute seule.")).to_be_visible()
    check_page(patient, shots, "waiting-fr", width)

    console, _ = browsers.page(viewport, locale="fr-FR")
    console.goto("/app/console")
    sign_in(console, doctor["email"], "doctor-password", language="fr")
    expect(console.get_by_text("Marie Lefèvre")).to_be_visible()
    check_page(console, shots, "console-fr", width)

    admin, _ = browsers.page(viewport, locale="fr-FR")
    admin.goto("/app/admin")
    sign_in(admin, ADMIN_EMAIL, ADMIN_PASSWORD, language="fr")
    expect(admin.get_by_role("heading", name="Dr. Élise Laurent").first).to_be_visible()
    expect(admin.get_by_role("region", name="Journal d'audit").locator("ol.audit > li").first).to_contain_text(" par ")
    check_page(admin, shots, "admin-fr", width)
    admin.goto("/app/reports")
    expect(admin.get_by_role("heading", name="Rapports de la clinique")).to_be_visible()
    check_page(admin, shots, "reports-fr", width)


STATUS_CARD = """async (state) => {
    const { statusLines } = await import('/app/js/views/waiting/status.js');
    const soon = (minutes) => new Date(Date.now() + minutes * 60_000).toISOString();
    const base = { status: 'pending', date: soon(30), position: 1, etaMinutes: 30, expectedStartAt: soon(30),
                   earliestStartAt: soon(20), latestStartAt: soon(40), delayMinutes: 0, isRunningLate: false,
                   lateByMinutes: 0, awayUntil: null, joinUrl: null };
    const cases = {
        later: { ...base, date: soon(60 * 48), position: 2 },
        smallDelay: { ...base, delayMinutes: 4 },
        queueDelay: { ...base, delayMinutes: 5 },
        calledNoLink: { ...base, status: 'in_consultation', position: -1 },
        missed: { ...base, status: 'no_show', position: -1 },
    };
    return Object.fromEntries(Object.entries(cases).map(([name, value]) =>
        [name, statusLines(value).map(([, text]) => text).join(' | ')]));
}"""


@pytest.mark.parametrize("lang, expected", [
    ("en", {"later": "2 people are booked before you that day.",
            "queueDelay": "Your appointment is running about 5 minutes late: the consultations before yours are "
                          "taking longer than planned.",
            "calledNoLink": "The call link will appear here in a moment.",
            "missed": "Marked as not present | The doctor marked this appointment as missed."}),
    ("fr", {"later": "2 personnes ont rendez-vous avant vous ce jour-là.",
            "queueDelay": "Votre rendez-vous a environ 5 minutes de retard : les consultations précédentes durent "
                          "plus longtemps que prévu.",
            "calledNoLink": "Le lien de l'appel va apparaître ici dans un instant.",
            "missed": "Noté absent | Le médecin a noté ce rendez-vous comme manqué."}),
])
def test_the_status_card_reads_each_case_in_each_language(site, browsers, lang, expected):
    """The card's rules, case by case, as the page's own module writes them (in the page's language)."""
    page, _ = browsers.page(PHONE)
    page.goto(f"/app/signin?lang={lang}")
    expect(page.locator("h1")).to_be_visible()
    lines = page.evaluate(STATUS_CARD)
    for case, text in expected.items():
        assert text in lines[case], (case, lines[case])
    assert "late" not in lines["smallDelay"] and "retard" not in lines["smallDelay"]
    assert "You are next" not in lines["later"] and "Plus personne" not in lines["later"]
