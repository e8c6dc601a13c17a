"""Accounts in the browser, as a person makes one: sign up with the terms of use, read
the verification mail from a real SMTP server (aiosmtpd, started here), open its link,
wait for an administrator (who approves in the UI, in a browser of their own), get the
mail that says so, log in; and a forgotten password reset by mail."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server, start_server, stop_server
from tests.mailbox import Mailbox, body, link, smtp_server
from tests.ui.people import EXPECT_MS, new_person
from tests.ui.people import PASSWORD as OLD_PASSWORD

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Page, expect

expect.set_options(timeout=EXPECT_MS)

TERMS = "1. Use this cloud for your studies and your research.\n2. Be kind to the machines.\n"
PASSWORD = "blue tulips in spring"


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as running:
        yield running


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, mailbox: Mailbox) -> Iterator[Server]:
    """``nefos up`` with a mail relay (the test's SMTP server), terms of use, and
    moderation of new accounts."""
    folder = tmp_path_factory.mktemp("signup")
    terms = folder / "terms.txt"
    terms.write_text(TERMS)
    running = start_server(
        folder,
        {
            "NEFOS_MAIL__HOST": mailbox.host,
            "NEFOS_MAIL__PORT": str(mailbox.port),
            "NEFOS_SIGNUP_AUTO_ACTIVATE": "false",
            "NEFOS_SIGNUP__TERMS_FILE": str(terms),
            "NEFOS_SIGNUP__TERMS_VERSION": "2026-1",
        },
    )
    yield running
    stop_server(running)


@pytest.fixture
def browse(browser: Any) -> Iterator[Any]:
    """New browser contexts (one per person); no script may fail on their pages."""
    contexts: list[Any] = []
    errors: list[str] = []

    def new_page() -> Page:
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        context.set_default_timeout(EXPECT_MS)
        contexts.append(context)
        opened = context.new_page()
        opened.on("pageerror", lambda error: errors.append(str(error)))
        return opened

    yield new_page
    for context in contexts:
        context.close()
    assert not errors, errors


def log_in(page: Page, cloud: Server, email: str, password: str) -> None:
    page.goto(f"{cloud.url}/ui/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")


def test_sign_up_verify_get_approved_and_log_in(
    browse: Any, cloud: Server, mailbox: Mailbox, screenshots: Path
) -> None:
    email = "student-signup@example.org"
    page = browse()
    page.goto(f"{cloud.url}/ui/login")
    page.click("text=Create an account")
    expect(page.locator("h1")).to_have_text("Create an account")
    expect(page.locator(".terms-text")).to_contain_text("Be kind to the machines.")

    # Sent empty: each field says what is wrong with it, and nothing is made.
    page.click("button[type=submit]")
    expect(page.locator("#name-error")).to_have_text("Please type your name")
    expect(page.locator("#email-error")).to_have_text("Please type your e-mail address")
    expect(page.locator("#password-error")).to_have_text("Please choose a password")
    expect(page.locator("#terms-error")).to_contain_text("accept them")
    expect(page.locator("#name")).to_be_focused()
    page.screenshot(path=str(screenshots / "accounts-signup-errors.png"), full_page=True)

    page.fill("#name", "Alan Turing")
    page.fill("#email", email)
    page.fill("#password", "short")
    page.check("#terms")
    page.click("button[type=submit]")
    expect(page.locator("#password-error")).to_contain_text("at least 8 characters")
    expect(page.locator("#name-error")).to_have_count(0)
    page.fill("#password", PASSWORD)
    page.screenshot(path=str(screenshots / "accounts-signup.png"), full_page=True)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Check your mail")
    expect(page.locator("main")).to_contain_text(email)
    page.screenshot(path=str(screenshots / "accounts-check-mail.png"), full_page=True)

    mail = mailbox.wait(email, "Confirm your e-mail address")
    verify = link(mail)
    assert verify.startswith(f"{cloud.url}/ui/welcome#/verify/")
    page.goto(verify)
    expect(page.locator("h1")).to_have_text("Almost there")
    page.screenshot(path=str(screenshots / "accounts-pending.png"), full_page=True)
    page.reload()  # the link worked once
    expect(page.locator("h1")).to_have_text("We could not confirm your address")
    expect(page.locator("[role=alert]")).to_contain_text("used already")
    page.screenshot(path=str(screenshots / "accounts-link-used.png"), full_page=True)

    log_in(page, cloud, email, PASSWORD)
    expect(page.locator(".error")).to_contain_text("waits for an administrator")

    told = mailbox.wait(cloud.admin_email, "waits for approval")
    assert email in body(told)
    admin = browse()
    log_in(admin, cloud, cloud.admin_email, cloud.admin_password)
    expect(admin.locator(".project-quota").first).to_be_visible()
    admin.click("text=Accounts to approve")
    row = admin.locator("tr", has_text=email)
    expect(row).to_contain_text("Alan Turing")
    admin.screenshot(path=str(screenshots / "accounts-moderation.png"), full_page=True)
    row.get_by_role("button", name=f"Activate Alan Turing ({email})").click()
    expect(admin.locator("[role=status]")).to_contain_text("is active. We sent them a mail.")
    expect(admin.locator("tr", has_text=email)).to_have_count(0)
    expect(admin.locator(".empty")).to_contain_text("Nobody is waiting")

    ready = mailbox.wait(email, "ready")
    assert link(ready) == f"{cloud.url}/ui/login"
    page.goto(link(ready))
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator(".project-quota")).to_be_visible()
    expect(page.locator(".topbar")).not_to_contain_text("Accounts to approve")  # not an admin


def test_a_non_admin_sees_no_moderation(
    browse: Any, cloud: Server, mailbox: Mailbox, screenshots: Path
) -> None:
    person = new_person(cloud, "plain-user@example.org")
    page = browse()
    log_in(page, cloud, person.email, OLD_PASSWORD)
    expect(page.locator(".project-quota")).to_be_visible()
    page.goto(f"{cloud.url}/ui/#/admin/users")
    expect(page.locator("[role=alert]")).to_have_text("This page is for administrators.")


def test_forgotten_password(browse: Any, cloud: Server, mailbox: Mailbox, screenshots: Path):
    email = "forgetful@example.org"
    new_person(cloud, email)
    before = browse()  # logged in before the reset: that session ends with it
    log_in(before, cloud, email, OLD_PASSWORD)
    expect(before.locator(".project-quota")).to_be_visible()

    page = browse()
    page.goto(f"{cloud.url}/ui/login")
    page.click("text=Forgot your password?")
    expect(page.locator("h1")).to_have_text("Forgot your password?")
    page.fill("#email", email)
    page.screenshot(path=str(screenshots / "accounts-forgot.png"), full_page=True)
    page.click("button[type=submit]")
    expect(page.locator("[role=status]")).to_contain_text(f"If {email} belongs to an account")

    reset = link(mailbox.wait(email, "Set a new nefos password"))
    assert reset.startswith(f"{cloud.url}/ui/welcome#/reset/")
    page.goto(reset)
    page.fill("#password", "new and long enough")
    page.fill("#repeat", "new and long enuogh")
    page.click("button[type=submit]")
    expect(page.locator("#repeat-error")).to_have_text("The two passwords are not the same")
    page.fill("#repeat", "new and long enough")
    page.screenshot(path=str(screenshots / "accounts-reset.png"), full_page=True)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Your password is changed")
    page.screenshot(path=str(screenshots / "accounts-reset-done.png"), full_page=True)

    before.reload()  # its session was ended by the reset
    expect(before).to_have_url(re.compile(r"/ui/login"))
    log_in(page, cloud, email, OLD_PASSWORD)
    expect(page.locator(".error")).to_contain_text("wrong")
    log_in(page, cloud, email, "new and long enough")
    expect(page.locator(".project-quota")).to_be_visible()
