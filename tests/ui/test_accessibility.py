"""axe-core on every page of the UI: no serious or critical violation (labels, names,
contrast, roles). Each page's screenshot goes to the screenshots folder.

axe-core comes from its npm package (``tests/ui/vendor/axe-core``, THIRD_PARTY.md) and
is injected into each page by the test; the pages' policy runs no injected script, so
these browser contexts bypass it (``bypass_csp``), and only these.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server
from tests.ui.people import EXPECT_MS, admin_of, filled_cloud, log_in

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Page, expect

expect.set_options(timeout=EXPECT_MS)
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe-4.10.3.min.js"
SERIOUS = ("serious", "critical")


@pytest.fixture(scope="module")
def cloud(server: Server) -> dict[str, str]:
    return filled_cloud(server, "a11y-course")


def violations(page: Page) -> list[dict[str, Any]]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    checked = page.evaluate(
        """async (serious) => {
        const result = await axe.run(document);
        return {
          passes: result.passes.length,
          minor: result.violations.filter((v) => !serious.includes(v.impact)).map((v) => v.id),
          violations: result.violations.filter((v) => serious.includes(v.impact)).map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + ": " + n.failureSummary),
          })),
        };
    }""",
        list(SERIOUS),
    )
    assert checked["passes"] > 10, checked  # axe ran its rules on this page
    if checked["minor"]:
        print(f"{page.url}: moderate or minor: {checked['minor']}")
    return checked["violations"]


class Checker:
    def __init__(self, screenshots: Path) -> None:
        self.screenshots = screenshots
        self.found: dict[str, list[dict[str, Any]]] = {}

    def check(self, page: Page, name: str, ready: str) -> None:
        expect(page.locator(ready).first).to_be_visible()
        page.screenshot(path=str(self.screenshots / f"axe-{name}.png"), full_page=True)
        found = violations(page)
        if found:
            self.found[name] = found


@pytest.fixture
def checker(screenshots: Path) -> Iterator[Checker]:
    checking = Checker(screenshots)
    yield checking
    assert not checking.found, checking.found


def test_every_signed_in_page(browser: Any, server: Server, cloud: dict[str, str], checker):
    errors: list[str] = []
    person, password = admin_of(server)
    page = log_in(browser, server, person, errors, password, bypass_csp=True)
    ui = f"{server.url}/ui/"
    machine = cloud["machine"]
    pages = [
        ("dashboard", "#/", ".project-quota"),
        ("machines", "#/machines", "tr[data-name=web-1]"),
        ("new-machine", "#/machines/new", "#create"),
        ("machine", f"#/machines/{machine}", "#nics"),
        ("console", f"#/machines/{machine}/console", ".console-bar"),
        ("files", "#/files", "main h1"),
        ("files-container", "#/files/documents", "text=notes.txt"),
        ("shared", "#/shared", "main h1"),
        ("images", "#/images", "[data-image]"),
        ("networks", "#/networks", "tr[data-network=lab]"),
        ("projects", "#/projects", "#my-applications"),
        ("moderation", "#/admin/users", "main .empty"),
        ("projects-approve", "#/admin/projects", "[data-project=a11y-course]"),
        ("usage", "#/usage", ".usage-chart canvas"),
    ]
    for name, hash_, ready in pages:
        page.goto(ui + hash_)
        checker.check(page, name, ready)
    page.locator(".usage-chart summary").first.click()  # the charts' text alternative
    checker.check(page, "usage-table", ".usage-table")
    page.goto(ui + "#/projects")
    page.click("#apply")
    checker.check(page, "project-apply", "#project-submit")
    page.goto(f"{ui}#/images")
    page.click("#register")
    checker.check(page, "image-register", "#image-submit")
    page.goto(f"{ui}#/networks")
    page.click("#new-network")
    checker.check(page, "network-new", "#network-submit")
    page.click("form.network-form button[type=button]")  # Cancel
    page.click("#floating-ips [data-action=detach]")
    checker.check(page, "floating-detach", "dialog.confirm #ask-yes")
    page.goto(f"{ui}#/machines/{machine}")
    page.click("#connect")
    checker.check(page, "connect-dialog", "#connect-network")
    page.keyboard.press("Escape")
    phone = page.context.new_page()
    phone.set_viewport_size({"width": 390, "height": 844})
    phone.goto(f"{ui}#/networks")
    checker.check(phone, "networks-phone", "tr[data-network=lab]")
    phone.goto(f"{ui}#/machines/{machine}")
    checker.check(phone, "machine-phone", "#nics")
    phone.close()
    page.goto(f"{server.url}/ui/account")
    checker.check(page, "account", "main, body")
    page.context.close()
    assert not errors, errors


def test_pages_without_a_login(browser: Any, server: Server, checker):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    for name, path, ready in [
        ("login", "/ui/login", "#email"),
        ("signup", "/ui/welcome#/signup", "#name"),
        ("forgot", "/ui/welcome#/forgot", "#email"),
    ]:
        page.goto(server.url + path)
        checker.check(page, name, ready)
    phone = browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True)
    small = phone.new_page()
    small.goto(f"{server.url}/ui/welcome#/signup")
    checker.check(small, "signup-phone", "#name")
    context.close()
    phone.close()
