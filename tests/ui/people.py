"""People for the browser tests: a user made as an operator makes one, and a logged-in
browser page for them."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tests.conftest import Server

PASSWORD = "a long enough passphrase"
EXPECT_MS = 15_000


@dataclass
class Person:
    email: str
    token: str  # the API token that `nefos user create` printed
    uuid: str


def new_person(server: Server, email: str) -> Person:
    """Made in process (``Server.invoke``: a process start costs seconds per user), in a
    thread of its own, because the command runs its own event loop and Playwright's
    sync API holds this thread's."""
    with ThreadPoolExecutor(1) as pool:
        made = pool.submit(
            server.invoke,
            *("user", "create", email, "--name", "Ada Lovelace", "--password-stdin"),
            input=PASSWORD,
        ).result()
    token = re.search(r"token:\s*(\S+)", made.stdout).group(1)
    uuid = re.search(r"uuid:\s*(\S+)", made.stdout).group(1)
    return Person(email, token, uuid)


def admin_of(server: Server) -> tuple[Person, str]:
    """The administrator ``nefos up`` made, and their password."""
    return Person(server.admin_email, server.admin_token, server.admin_uuid), server.admin_password


def log_in(
    browser: Any,
    server: Server,
    person: Person,
    errors: list[str],
    password: str = PASSWORD,
    **options: Any,
) -> Any:
    """A fresh browser context for ``person``, logged in through the web login from
    ``/``: it is on the dashboard. Script failures on its pages go to ``errors``;
    ``options`` go to the context (e.g. ``bypass_csp`` to inject a test's script)."""
    from playwright.sync_api import expect

    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, accept_downloads=True, **options
    )
    context.set_default_timeout(EXPECT_MS)
    opened = context.new_page()
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.goto(server.url)  # `/` leads to the UI, which asks for a login
    expect(opened).to_have_url(re.compile(r"/ui/login\?next="))
    opened.fill("#email", person.email)
    opened.fill("#password", password)
    opened.click("button[type=submit]")
    expect(opened.locator(".project-quota")).to_be_visible()
    opened.person = person
    return opened
