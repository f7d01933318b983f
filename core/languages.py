"""The languages the service speaks (the web app's catalogues, the words of a push) and which of them
a request asks for.

The web app sends its own language (`?lang=`, else the browser's) as `Accept-Language` on every API
call, so what the server writes for a person later, with their page closed (a push's title and body),
is in the language they read the app in.
"""

from __future__ import annotations

SUPPORTED = ("en", "fr")
DEFAULT = "en"


def preferred(accept_language: str | None) -> str:
    """The first supported language of an `Accept-Language` header (RFC 9110: tags with optional
    `q` weights, highest weight first, ties in the order given; `q=0` means "not this one"), else
    `DEFAULT`. Only the primary subtag counts: `fr-CA` is French."""
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        language = tag.strip().split("-")[0].lower()
        if language in SUPPORTED and weight > 0:
            ranked.append((-weight, index, language))
    return min(ranked)[2] if ranked else DEFAULT
