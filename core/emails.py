"""One spelling per email address, so look-alikes cannot become separate accounts that look the same.

An address is trimmed, NFKC-normalised (a full-width `ａdmin@…` is `admin@…`) and lower-cased. What
could still look like another address is refused rather than kept: a local part that is not ASCII
after that, and an invisible or control character anywhere (a zero-width space, a right-to-left
mark, a Hangul filler…). An internationalised domain is kept in its ASCII form (`xn--…`, IDNA 2008
with UTS #46 mapping, by the `idna` package), so a domain with a Cyrillic `а` for a Latin `a` shows
as what it is in every list.
"""

from __future__ import annotations

import re
import unicodedata

import idna

MAX_EMAIL_LENGTH = 254

# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt): drawn as nothing at all. Most
# are format characters (category Cf, refused anyway); these ranges also catch the fillers and
# variation selectors filed under letters and marks.
_IGNORABLE = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
                        "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3"
                        "\U0001d173-\U0001d17a\U000e0000-\U000e0fff]")
# control, format, surrogate, private use, unassigned; line and paragraph separators; any space
_INVISIBLE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"}
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+")


def normalise_email(text: str) -> str:
    """The one stored spelling of an address, or `ValueError` saying why it cannot be one."""
    email = unicodedata.normalize("NFKC", text.strip()).lower()
    if any(unicodedata.category(c) in _INVISIBLE_CATEGORIES for c in email) or _IGNORABLE.search(email):
        raise ValueError("Must not contain invisible or control characters.")
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain:
        raise ValueError("Not a valid email address.")
    if not local.isascii() or not _LOCAL_PART.fullmatch(local):
        raise ValueError("The part before @ must be plain ASCII letters, digits and punctuation.")
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            raise ValueError("Not a valid email domain.") from None
    email = f"{local}@{domain}"
    if len(email) > MAX_EMAIL_LENGTH:
        raise ValueError(f"Longer than {MAX_EMAIL_LENGTH} characters.")
    return email
