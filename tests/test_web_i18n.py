"""The web app's languages, checked without a browser: every catalogue has every key (and the same
placeholders), every key the code asks for exists, and no view writes English past the catalogues.

A catalogue is web/js/i18n/<code>.js: `export default { 'key': 'text', 'key': {one, other}, … }`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.audit import ACTIONS

WEB = Path(__file__).resolve().parent.parent / "web"
CATALOGUES = WEB / "js" / "i18n"
KEY_LINE = re.compile(r"^  '([^']+)':(.*)$")
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def catalogue(code: str) -> dict[str, str]:
    """key → the source text of its value (one line, or the lines of a plural object)."""
    entries: dict[str, str] = {}
    key = None
    for line in (CATALOGUES / f"{code}.js").read_text().splitlines():
        match = KEY_LINE.match(line)
        if match:
            key = match.group(1)
            assert key not in entries, f"{code}.js has {key!r} twice"
            entries[key] = match.group(2)
        elif key and line.startswith("    "):
            entries[key] += line
        else:
            key = None
    return entries


def languages() -> list[str]:
    return sorted(path.stem for path in CATALOGUES.glob("*.js"))


def source_files():
    for path in sorted((WEB / "js").rglob("*.js")):
        if "vendor" in path.parts or path.parent == CATALOGUES:
            continue
        yield path


def without_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(re.sub(r"(^|\s)//.*$", "", line) for line in text.splitlines())


def test_there_are_english_and_french_catalogues_and_the_app_offers_both():
    assert {"en", "fr"} <= set(languages())
    offered = re.search(r"LANGUAGES = \{([^}]*)\}", (WEB / "js" / "i18n.js").read_text()).group(1)
    assert set(re.findall(r"(\w+):", offered)) == set(languages())


@pytest.mark.parametrize("code", [code for code in languages() if code != "en"])
def test_every_catalogue_has_exactly_the_english_keys_with_the_same_placeholders(code):
    english, other = catalogue("en"), catalogue(code)
    assert sorted(set(english) - set(other)) == [], f"missing in {code}.js"
    assert sorted(set(other) - set(english)) == [], f"in {code}.js but not in en.js"
    differing = {key: (english[key], other[key]) for key in english
                 if set(PLACEHOLDER.findall(english[key])) != set(PLACEHOLDER.findall(other[key]))}
    assert differing == {}
    untranslated = [key for key in english if english[key] == other[key] and len(PLACEHOLDER.sub("", english[key])) > 12
                    and key not in UNTRANSLATED_ON_PURPOSE]
    assert untranslated == [], f"{code}.js repeats the English of {untranslated}"


# Words that read the same in both languages.
UNTRANSLATED_ON_PURPOSE = {"app.name", "wait.doctorLine", "appointments.cardTitle", "duration.hoursMinutes",
                           "duration.minutes", "invite.title", "admin.invites", "reports.what.consultations"}


def test_every_key_the_code_asks_for_is_in_english():
    english = catalogue("en")
    asked = set()
    for path in source_files():
        asked |= {(path.name, key) for key in re.findall(r"\bt\('([\w.]+)'", path.read_text())}
    assert asked, "no t('…') call found: the pattern is wrong"
    assert sorted((name, key) for name, key in asked if key not in english) == []


def test_every_key_built_from_data_is_in_english():
    """Keys the code builds from a value (`status.${status}`) exist for every value the API sends."""
    english = catalogue("en")
    built = [f"status.{s}" for s in ("pending", "confirmed", "in_consultation", "completed", "cancelled", "no_show")]
    built += [f"role.{r}" for r in ("patient", "doctor", "admin")] + [f"role.plural.{r}" for r in ("patient", "doctor", "admin")]
    built += [f"audit.{action}" for action in ACTIONS]
    built += [f"invite.status.{s}" for s in ("active", "used", "expired", "revoked")]
    built += [f"wait.finished.{s}" for s in ("completed", "cancelled", "no_show")]
    built += [f"auth.signedOut.{reason}" for reason in ("expired", "disabled")]
    codes = re.search(r"const SENTENCES = new Set\(\[([^\]]*)\]\)", (WEB / "js" / "api.js").read_text(), re.S).group(1)
    built += [f"error.{code}" for code in re.findall(r"'(\w+)'", codes)]
    reports = (WEB / "js" / "views" / "reports.js").read_text()
    columns = re.search(r"const columns = \[([^\]]*)\]", reports).group(1)
    built += [f"reports.column.{key}" for key in re.findall(r"'(\w+)'", columns)]
    assert sorted(key for key in built if key not in english) == []


# A string literal that reads like an English sentence or label: a capitalised word and at least
# two more words ("Call next" alone is two words and slips through; its siblings do not).
ENGLISH_LITERAL = re.compile(r"""(['"`])([A-Z][a-z]+(?:[ ,][a-z'’]+){2,}[^'"`]*)\1""")


def test_no_script_writes_english_outside_the_catalogues():
    offenders = []
    for path in source_files():
        for number, line in enumerate(without_comments(path.read_text()).splitlines(), 1):
            for match in ENGLISH_LITERAL.finditer(line):
                offenders.append(f"{path.relative_to(WEB)}:{number}: {match.group(2)}")
    assert offenders == []


def test_the_heuristic_finds_english_when_there_is_some():
    line = "replace(root, h('p', {}, 'There are no doctors yet.'));"
    assert ENGLISH_LITERAL.search(line)
    assert not ENGLISH_LITERAL.search("h('p', {}, t('console.noDoctors'))")


def test_index_html_holds_no_english_the_app_does_not_replace():
    """Only the brand, the skip link (both rewritten by app.js) and the bilingual <noscript>."""
    html = (WEB / "index.html").read_text()
    assert "Loading…" not in html
    assert 'lang="fr"' in html and 'lang="en"' in html  # the <noscript> note speaks both
    app = (WEB / "js" / "app.js").read_text()
    assert "t('app.skip')" in app and "t('app.name')" in app
