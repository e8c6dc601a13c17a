# ruff: noqa: RUF001 (Greek letters are the point of this table, not look-alikes of Latin ones)
"""The texts of the server-rendered pages (login, account, the UI's shell), in English
and Greek: the UI's own table (``nefos/ui/static/texts.js``) serves the pages drawn in
the browser, this one the few that stay rendered here.

The language is the one the UI's selector chose (the ``nefos_lang`` cookie, which the
browser's page sets), or one asked for by ``?lang=`` (which sets the cookie), else the
browser's ``Accept-Language``.
"""

from __future__ import annotations

from collections.abc import Callable

from markupsafe import Markup

LANGUAGES = {"en": "English", "el": "Ελληνικά"}
COOKIE = "nefos_lang"

TEXTS: dict[str, dict[str, str]] = {
    "loginTitle": {"en": "Log in", "el": "Σύνδεση"},
    "email": {"en": "E-mail", "el": "E-mail"},
    "password": {"en": "Password", "el": "Κωδικός"},
    "login": {"en": "Log in", "el": "Σύνδεση"},
    "forgot": {"en": "Forgot your password?", "el": "Ξεχάσατε τον κωδικό σας;"},
    "newHere": {"en": "New here?", "el": "Πρώτη φορά εδώ;"},
    "signup": {"en": "Create an account", "el": "Δημιουργία λογαριασμού"},
    "loginWith": {"en": "Log in with {name}", "el": "Σύνδεση με {name}"},
    "shibboleth": {
        "en": "Log in with your institution (Shibboleth)",
        "el": "Σύνδεση μέσω του ιδρύματός σας (Shibboleth)",
    },
    "language": {"en": "Language", "el": "Γλώσσα"},
    "accountTitle": {"en": "Your account", "el": "Ο λογαριασμός σας"},
    "name": {"en": "Name", "el": "Όνομα"},
    "role": {"en": "Role", "el": "Ρόλος"},
    "admin": {"en": "admin", "el": "διαχειριστής"},
    "member": {"en": "member", "el": "μέλος"},
    "logins": {"en": "Logins", "el": "Τρόποι σύνδεσης"},
    "apiToken": {"en": "API token", "el": "API token"},
    "expires": {
        "en": "Expires {when} UTC. Use it as {header}, or as the password of a Keystone login.",
        "el": "Λήγει {when} UTC. Χρησιμοποιήστε το ως {header} ή ως κωδικό σε σύνδεση Keystone.",
    },
    "noToken": {
        "en": "Your token cannot be shown; renew it to get a new one.",
        "el": "Το token σας δεν μπορεί να εμφανιστεί· ανανεώστε το για να πάρετε νέο.",
    },
    "renew": {"en": "Renew token", "el": "Ανανέωση token"},
    "renewNote": {
        "en": "(the current one stops working at once)",
        "el": "(το τρέχον σταματά αμέσως να ισχύει)",
    },
    "clientConfig": {"en": "Client configuration", "el": "Ρυθμίσεις για προγράμματα-πελάτες"},
    "withToken": {"en": "With your API token:", "el": "Με το API token σας:"},
    "forOpenstack": {"en": "for {command}", "el": "για το {command}"},
    "toSource": {"en": "to source", "el": "για source"},
    "forKamaki": {"en": "for kamaki", "el": "για το kamaki"},
    "withCredential": {
        "en": "Or with a new application credential, which an application can hold instead "
        "of your token and you can delete on its own:",
        "el": "Ή με ένα νέο διαπιστευτήριο εφαρμογής (application credential), που μια "
        "εφαρμογή κρατά αντί για το token σας και που μπορείτε να διαγράψετε χωριστά:",
    },
    "createDownload": {"en": "Create and download {file}", "el": "Δημιουργία και λήψη {file}"},
    "logout": {"en": "Log out", "el": "Αποσύνδεση"},
    "loading": {"en": "Loading your cloud…", "el": "Φορτώνεται το νέφος σας…"},
    "loadingShort": {"en": "Loading…", "el": "Φόρτωση…"},
    "needsScript": {
        "en": "This page needs JavaScript. Your {link} works without it.",
        "el": "Αυτή η σελίδα χρειάζεται JavaScript. Η {link} λειτουργεί και χωρίς αυτή.",
    },
    "accountLink": {"en": "account page", "el": "σελίδα του λογαριασμού σας"},
    "needsScriptLogin": {
        "en": "This page needs JavaScript. You can still {link}.",
        "el": "Αυτή η σελίδα χρειάζεται JavaScript. Μπορείτε πάντως να {link}.",
    },
    "loginLower": {"en": "log in", "el": "συνδεθείτε"},
    "welcome": {"en": "Welcome", "el": "Καλώς ήρθατε"},
}


def language(query: str | None, cookie: str | None, accept: str | None) -> str:
    """The page's language: asked for, chosen before, or the browser's first known one."""
    for given in (query, cookie):
        if given in LANGUAGES:
            return given
    for part in (accept or "").split(","):
        code = part.split(";")[0].strip().lower().split("-")[0]
        if code in LANGUAGES:
            return code
    return "en"


def translator(lang: str) -> Callable[..., Markup]:
    """``tx(key, **values)`` for a template: the text, with ``{name}`` filled by values
    that are escaped unless they are markup already (:func:`code`, :func:`link`)."""

    def tx(key: str, **values: object) -> Markup:
        text = TEXTS[key].get(lang) or TEXTS[key]["en"]
        return Markup.escape(text).format(**values) if values else Markup.escape(text)

    return tx


def code(text: str) -> Markup:
    return Markup("<code>{}</code>").format(text)


def link(href: str, text: str) -> Markup:
    return Markup('<a href="{}">{}</a>').format(href, text)
