"""People for the browser tests: a user made as an operator makes one, and a logged-in
browser page for them."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import Server

PASSWORD = "a long enough passphrase"
EXPECT_MS = 15_000
MOUNT_MS = 60_000  # the first load of the app's modules (log_in)


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
    seen = PageTrouble(opened)
    opened.goto(server.url)  # `/` leads to the UI, which asks for a login
    expect(opened).to_have_url(re.compile(r"/ui/login\?next="))
    opened.fill("#email", person.email)
    opened.fill("#password", password)
    opened.click("button[type=submit]")
    try:
        # The app replaces the server's "Loading your cloud…" once its modules ran: a
        # fresh browser on a machine busy with TCG guests may take long to get there.
        expect(opened.locator("nav[aria-label=Main]")).to_be_visible(timeout=MOUNT_MS)
        expect(opened.locator(".project-quota")).to_be_visible()
    except AssertionError as failed:
        raise AssertionError(f"{failed}\n{seen.report(errors)}") from None
    seen.stop()
    opened.person = person
    return opened


class PageTrouble:
    """What went wrong on a page while it loaded (failed requests, answers of 400 and
    more, console errors), for the message of a test that waited for it in vain."""

    def __init__(self, page: Any):
        self.page = page
        self.lines: list[str] = []
        self.handlers = {
            "requestfailed": lambda r: self.lines.append(f"failed: {r.url} {r.failure}"),
            "response": lambda r: r.status >= 400 and self.lines.append(f"{r.status}: {r.url}"),
            "console": lambda m: m.type == "error" and self.lines.append(f"console: {m.text}"),
        }
        for event, handler in self.handlers.items():
            page.on(event, handler)

    def report(self, errors: list[str]) -> str:
        seen = self.lines + [f"script error: {error}" for error in errors]
        return "The page saw:\n  " + ("\n  ".join(seen) if seen else "no error")

    def stop(self) -> None:
        for event, handler in self.handlers.items():
            self.page.remove_listener(event, handler)


def person_for(server: Server, request: pytest.FixtureRequest, suffix: str = "") -> Person:
    """A new person named after the test (``suffix`` for a second one)."""
    return new_person(server, f"{request.node.name.replace('_', '-')[:36]}{suffix}@example.org")


def api(server: Server, person: Person) -> httpx.Client:
    """The person's own API client, as a script of theirs would call nefos."""
    return httpx.Client(base_url=server.url, headers={"X-Auth-Token": person.token}, timeout=30)


def public_image(
    server: Server, name: str = "Debian 12", content: bytes = b"\0" * 65536, **properties: str
) -> str:
    """An image the administrator registers for everyone (Glance v2: create, then upload
    its bytes), as an operator does; its id."""
    admin = {"X-Auth-Token": server.admin_token}
    made = httpx.post(
        f"{server.url}/image/v2/images",
        headers=admin,
        json={
            "name": name,
            "disk_format": "raw",
            "container_format": "bare",
            "visibility": "public",
            **properties,
        },
    )
    made.raise_for_status()
    image = str(made.json()["id"])
    httpx.put(
        f"{server.url}/image/v2/images/{image}/file",
        headers={**admin, "Content-Type": "application/octet-stream"},
        content=content,
    ).raise_for_status()
    return image


def filled_cloud(server: Server, project: str) -> dict[str, str]:
    """The administrator's image, a running machine on "lab" holding a floating IP, a
    container with a file and the application of ``project``, so that every page of the
    UI has something to show (the accessibility and the Greek tests walk them all)."""
    image = public_image(server, os_distro="debian", os_version="12")
    admin = {"X-Auth-Token": server.admin_token}
    lab = lab_with_floating_ip(server)
    created = httpx.post(
        f"{server.url}/compute/v2.1/servers",
        headers=admin,
        json={
            "server": {
                "name": "web-1",
                "imageRef": image,
                "flavorRef": "1",
                "networks": [{"uuid": lab}],
            }
        },
    )
    created.raise_for_status()
    machine = created.json()["server"]["id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        shown = httpx.get(f"{server.url}/compute/v2.1/servers/{machine}", headers=admin)
        if shown.json()["server"]["status"] == "ACTIVE":
            break
        time.sleep(0.3)
    ports = httpx.get(
        f"{server.url}/network/v2.0/ports", headers=admin, params={"device_id": machine}
    ).json()["ports"]
    floating = httpx.get(f"{server.url}/network/v2.0/floatingips", headers=admin).json()
    httpx.put(
        f"{server.url}/network/v2.0/floatingips/{floating['floatingips'][0]['id']}",
        headers=admin,
        json={"floatingip": {"port_id": ports[0]["id"]}},
    ).raise_for_status()
    store = f"{server.url}/object-store/v1/{server.admin_uuid}/documents"
    httpx.put(store, headers=admin).raise_for_status()
    httpx.put(f"{store}/notes.txt", headers=admin, content=b"hello").raise_for_status()
    applied = httpx.post(
        f"{server.url}/account/v1.0/projects",
        headers=admin,
        json={
            "name": project,
            "end_date": "2099-01-01T00:00:00Z",
            "resources": {"cyclades.vm": {"project_capacity": 10, "member_capacity": 2}},
        },
    )
    applied.raise_for_status()
    return {"machine": machine}


def lab_with_floating_ip(server: Server) -> str:
    """A public network that gives floating IPs (an administrator's), one floating IP and
    a private network "lab" with an IPv4 subnet, of the administrator's: the Networks
    page shows each kind. Answers lab's id."""
    admin = {"X-Auth-Token": server.admin_token}
    net = f"{server.url}/network/v2.0"
    public = httpx.post(
        f"{net}/networks",
        headers=admin,
        json={"network": {"name": "public", "router:external": True}},
    )
    public.raise_for_status()
    lab = httpx.post(f"{net}/networks", headers=admin, json={"network": {"name": "lab"}})
    lab.raise_for_status()
    for network, cidr in ((public, "10.79.0.0/24"), (lab, "192.168.1.0/24")):
        httpx.post(
            f"{net}/subnets",
            headers=admin,
            json={
                "subnet": {
                    "network_id": network.json()["network"]["id"],
                    "cidr": cidr,
                    "ip_version": 4,
                }
            },
        ).raise_for_status()
    httpx.post(f"{net}/floatingips", headers=admin, json={"floatingip": {}}).raise_for_status()
    return lab.json()["network"]["id"]
