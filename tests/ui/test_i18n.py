"""English and Greek: the language selector, its memory, the browser's language as the
default, and every page in Greek with no English text of the table left on it (nor in
its labels), ``<html lang="el">``, Greek dates and axe-core still content. The
server-rendered pages (login, account) follow the same choice. Screenshots of the
Greek pages go to the screenshots folder as ``el-*.png``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from nefos.identity import webtexts
from tests.conftest import Server
from tests.ui.people import EXPECT_MS, admin_of, filled_cloud, log_in

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Page, expect

from tests.ui.test_accessibility import violations

expect.set_options(timeout=EXPECT_MS)
GREEK = re.compile(r"[\u0370-\u03ff\u1f00-\u1fff]")

# The English of texts.js found on the page: every value's literal pieces (between its
# {placeholders}) of three letters or more that its Greek does not share (IPv6,
# clouds.yaml), matched as whole words, in the visible text and in the labels a screen
# reader reads (aria-label, title, placeholder). `spared` is the user's own data
# (their name), which is no text of ours.
LEFTOVERS = """async (spared) => {
  const { TEXTS } = await import("/ui/assets/texts.js");
  const labels = [...document.querySelectorAll("[aria-label], [title], [placeholder]")]
    .map((e) => ["aria-label", "title", "placeholder"].map((a) => e.getAttribute(a)).join("\\n"));
  let haystack = [document.body.innerText, document.title, ...labels].join("\\n");
  for (const words of spared) haystack = haystack.split(words).join(" ");
  const escape = (s) => s.replace(/[.*+?^${}()|[\\]\\\\]/g, "\\\\$&");
  const found = [];
  for (const [key, entry] of Object.entries(TEXTS)) {
    const forms = typeof entry.en === "object" ? Object.values(entry.en) : [entry.en];
    const greek = JSON.stringify(entry.el);
    for (const form of forms) {
      for (const raw of form.split(/\\{\\w+\\}/)) {
        const piece = raw.trim().replace(/^[,.:;·()]+|[,.:;·()]+$/g, "").trim();
        if (piece.replace(/[^A-Za-z]/g, "").length < 3 || greek.includes(piece)) continue;
        const word = new RegExp(`(^|[^A-Za-z])${escape(piece)}([^A-Za-z]|$)`);
        if (word.test(haystack)) found.push(`${key}: ${piece}`);
      }
    }
  }
  return found;
}"""


def english_left(page: Page, spared: list[str]) -> list[str]:
    return page.evaluate(LEFTOVERS, spared)


# Any Latin word of three letters or more in the page's main part (text and labels),
# whether texts.js has it or not: for pages whose every word is ours (no file, image or
# machine names of the user's), so that a literal left out of the table shows too.
# Units (GiB) and nefos's names for things are the same in Greek.
LATIN = """(spared) => {
  const main = document.querySelector("main");
  const labels = [...main.querySelectorAll("[aria-label], [title], [placeholder]")]
    .map((e) => ["aria-label", "title", "placeholder"].map((a) => e.getAttribute(a)).join("\\n"));
  let haystack = [main.innerText, ...labels].join("\\n");
  for (const words of spared) haystack = haystack.split(words).join(" ");
  return haystack.match(/[A-Za-z]{3,}/g) || [];
}"""
UNITS = ["byte", "KiB", "MiB", "GiB", "TiB"]


def latin_left(page: Page, spared: list[str]) -> list[str]:
    return page.evaluate(LATIN, spared + UNITS)


@pytest.fixture(scope="module")
def cloud(server: Server) -> dict[str, str]:
    return filled_cloud(server, "lab-2099")


def test_every_page_in_greek(browser: Any, server: Server, cloud: dict[str, str], screenshots):
    errors: list[str] = []
    person, password = admin_of(server)
    page = log_in(browser, server, person, errors, password, bypass_csp=True, locale="en-US")
    spared = ["Administrator", person.email]
    # an English browser gets English, and the selector says so
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#language")).to_have_value("en")
    expect(page.locator("main h1")).to_contain_text("Hello")
    found = english_left(page, spared)  # the check finds English where there is some
    assert "nav.dashboard: Dashboard" in found and "dash.quotas: Your quotas" in found, found

    page.select_option("#language", "el")
    expect(page.locator("html")).to_have_attribute("lang", "el")
    expect(page.locator("main h1")).to_have_text("Γεια σας, Administrator")
    expect(page.locator("nav[aria-label='Κύριο μενού']")).to_contain_text("Εικονικές μηχανές")
    page.reload()  # remembered
    expect(page.locator(".project-quota").first).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "el")
    expect(page.locator("#language")).to_have_value("el")

    ui = f"{server.url}/ui/"
    machine = cloud["machine"]
    pages = [
        ("dashboard", "#/", ".project-quota"),
        ("machines", "#/machines", "tr[data-name=web-1]"),
        ("new-machine", "#/machines/new", "#create"),
        ("machine", f"#/machines/{machine}", "#nics"),
        ("console", f"#/machines/{machine}/console", "#console-failure"),
        ("files", "#/files", "tr[data-name=documents]"),
        ("files-container", "#/files/documents", "text=notes.txt"),
        ("shared", "#/shared", "main .empty"),
        ("images", "#/images", "[data-image]"),
        ("networks", "#/networks", "tr[data-network=lab]"),
        ("usage", "#/usage", ".usage-chart canvas"),
        ("projects", "#/projects", "#my-applications"),
        ("moderation", "#/admin/users", "main .empty"),
        ("projects-approve", "#/admin/projects", "[data-project=lab-2099]"),
        ("account", "#/account", "#api-token"),
    ]
    left: dict[str, list[str]] = {}
    axe: dict[str, Any] = {}

    def look(name: str, ready: str) -> None:
        expect(page.locator(ready).first).to_be_visible()
        expect(page.locator("p.loading")).to_have_count(0)
        page.screenshot(path=str(screenshots / f"el-{name}.png"), full_page=True)
        if found := english_left(page, spared):
            left[name] = found
        if name.startswith("usage") and (found := latin_left(page, spared)):
            left[f"{name} (not in texts.js)"] = found
        if found := violations(page):
            axe[name] = found

    for name, hash_, ready in pages:
        page.goto(ui + hash_)
        look(name, ready)
    # dialogs and forms
    page.goto(ui + "#/machines")
    page.click("tr[data-name=web-1] [data-action=destroy]")
    look("destroy-dialog", "dialog.confirm")
    page.click("dialog.confirm button[autofocus]")
    page.goto(ui + "#/files/documents")
    page.click("tr[data-name='notes.txt'] button.name")
    page.click("#share")
    look("share-dialog", "#share-read")
    page.keyboard.press("Escape")
    page.click("#versions")
    look("versions-dialog", "tr[data-version]")
    page.keyboard.press("Escape")
    page.goto(ui + "#/projects")
    page.click("#apply")
    look("project-apply", "#project-submit")
    page.click("#project-submit")  # empty: each error by its field, in Greek
    look("project-apply-errors", "#project-name-error")
    page.goto(ui + "#/images")
    page.click("#register")
    look("image-register", "#image-submit")
    page.goto(ui + "#/networks")
    page.click("#new-network")
    look("network-new", "#network-submit")
    page.click("form.network-form button[type=button]")  # Cancel
    page.click("#floating-ips [data-action=detach]")
    look("floating-detach", "dialog.confirm #ask-yes")
    page.goto(f"{ui}#/machines/{machine}")
    page.click("#connect")
    look("connect-dialog", "#connect-network")
    page.keyboard.press("Escape")
    page.goto(ui + "#/usage")
    page.click(".usage-chart[data-resource='cyclades.vm'] summary")  # the table behind it
    page.click("[aria-pressed=false] >> nth=0")  # another period: its label and step
    look("usage-table", ".usage-chart[data-resource='cyclades.vm'] .usage-table")
    assert not left, left
    assert not axe, axe

    # dates and numbers follow the language (Intl): a Greek month on the machine's page
    page.goto(f"{ui}#/machines/{machine}")
    created = page.locator(".facts dd").nth(3)
    expect(created).to_have_text(GREEK)
    expect(page.locator("#machine-size")).to_contain_text("επεξεργαστής")

    # the server-rendered account page follows the choice (the cookie)
    page.goto(f"{server.url}/ui/account")
    expect(page.locator("html")).to_have_attribute("lang", "el")
    expect(page.locator("h1")).to_have_text("Ο λογαριασμός σας")  # noqa: RUF001
    text = page.locator("body").inner_text().replace(person.email, "")
    english = [
        entry["en"]
        for entry in webtexts.TEXTS.values()
        if entry["en"] != entry["el"]
        and "{" not in entry["en"]
        and re.search(rf"\b{re.escape(entry['en'])}\b", text)
    ]
    assert not english, english
    page.screenshot(path=str(screenshots / "el-account-server.png"), full_page=True)
    assert not violations(page)
    # and back to English from the app's selector
    page.goto(ui)
    page.select_option("#language", "en")
    expect(page.locator("main h1")).to_have_text("Hello, Administrator")
    # the Usage page's own check finds English where there is some
    page.goto(ui + "#/usage")
    expect(page.locator(".usage-chart canvas").first).to_be_visible()
    assert {"Usage", "Machines", "Refresh"} <= set(latin_left(page, spared))
    page.context.close()
    assert not errors, errors


def test_browser_language_and_login_page(browser: Any, server: Server, screenshots: Path):
    """A Greek browser gets Greek before any choice (login page by Accept-Language, the
    app by navigator.language); an English one can switch the login page, which keeps
    where the login goes on to, and the app follows that choice."""
    greek = browser.new_context(locale="el-GR", bypass_csp=True)
    page = greek.new_page()
    page.goto(f"{server.url}/ui/login")
    expect(page.locator("html")).to_have_attribute("lang", "el")
    expect(page.locator("h1")).to_have_text("Σύνδεση")
    expect(page.locator("label[for=password]")).to_have_text("Κωδικός")
    page.screenshot(path=str(screenshots / "el-login.png"), full_page=True)
    assert not violations(page)
    page.goto(f"{server.url}/ui/welcome#/signup")
    expect(page.locator("h1")).to_have_text("Δημιουργία λογαριασμού")
    expect(page.locator("html")).to_have_attribute("lang", "el")
    assert not english_left(page, [])
    page.screenshot(path=str(screenshots / "el-signup.png"), full_page=True)
    page.click("button[type=submit]")
    expect(page.locator("#name-error")).to_have_text("Γράψτε το όνομά σας")
    greek.close()

    english = browser.new_context(locale="en-US")
    page = english.new_page()
    page.goto(f"{server.url}/ui/login?next=/ui/%23/images")
    expect(page.locator("h1")).to_have_text("Log in")
    page.click("nav.languages a[lang=el]")
    expect(page.locator("h1")).to_have_text("Σύνδεση")
    expect(page.locator("input[name=next]")).to_have_value("/ui/#/images")
    person, password = admin_of(server)
    page.fill("#email", person.email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    expect(page.locator("main h1")).to_have_text("Εικόνες")  # the app read the cookie
    expect(page.locator("html")).to_have_attribute("lang", "el")
    english.close()
