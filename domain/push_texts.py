"""The words of a Web Push, per language (`core.languages`): what a lock screen shows a patient whose
waiting room is closed. The web app's own catalogues (web/js/i18n/) say the same things on the page;
these are the server's, because a push is written while no page is open to translate it."""

from __future__ import annotations

from core.languages import DEFAULT

TEXTS = {
    "en": {
        "turn:now": ("It's your turn", "The doctor is ready for you: open the waiting room to join."),
        "turn:soon": ("Your turn is near", "Be ready: about {minutes} minutes to go."),
        "turn:soon:next": ("Your turn is near", "Be ready: you are next."),
        "delay": ("Your appointment runs late",
                  "The expected start is now about {minutes} minutes after your booked time."),
    },
    "fr": {
        "turn:now": ("C'est votre tour", "Le médecin est prêt : ouvrez la salle d'attente pour rejoindre l'appel."),
        "turn:soon": ("Votre tour approche", "Soyez prêt(e) : encore {minutes} minutes environ."),
        "turn:soon:next": ("Votre tour approche", "Soyez prêt(e) : vous êtes le prochain patient."),
        "delay": ("Votre rendez-vous a du retard",
                  "Le début prévu est maintenant environ {minutes} minutes après l'heure réservée."),
    },
}


def push_text(language: str, key: str, **values) -> tuple[str, str]:
    """(title, body) of one push in `language` (English for one it does not know)."""
    title, body = TEXTS.get(language, TEXTS[DEFAULT])[key]
    return title, body.format(**values)
