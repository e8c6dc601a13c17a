"""Images in the browser: mine, shared with me and public, and a file of mine registered
as an image, which the new machine form then offers and a machine starts from.

Chromium against ``nefos up``; the disk image is uploaded through the object store as
a client would, and another user shares theirs through Plankton (Glance v1), as
kamaki does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server
from tests.ui.people import EXPECT_MS, Person, log_in, new_person

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Page, expect

expect.set_options(timeout=EXPECT_MS)
DISK = b"\xeb\x63\x90" + b"\0" * (1 << 16)  # a boot sector's jump, then zeros


def upload(server: Server, person: Person, container: str, name: str) -> None:
    auth = {"X-Auth-Token": person.token}
    base = f"{server.url}/object-store/v1/{person.uuid}/{container}"
    httpx.put(base, headers=auth).raise_for_status()
    httpx.put(f"{base}/{name}", headers=auth, content=DISK).raise_for_status()


def register(server: Server, person: Person, container: str, name: str, image: str) -> str:
    made = httpx.post(
        f"{server.url}/image/v1/images/",
        headers={
            "X-Auth-Token": person.token,
            "X-Image-Meta-Name": image,
            "X-Image-Meta-Location": f"pithos://{person.uuid}/{container}/{name}",
            "X-Image-Meta-Property-OS-Distro": "fedora",
        },
    )
    made.raise_for_status()
    return made.json()["image"]["id"]


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Page]:
    person = new_person(server, "imagemaker@example.org")
    errors: list[str] = []
    opened = log_in(browser, server, person, errors)
    yield opened
    opened.context.close()
    assert not errors, errors


def test_lists_mine_shared_and_public_and_registers_a_file(
    page: Page, server: Server, screenshots: Path
):
    me = page.person  # type: ignore[attr-defined]
    admin = {"X-Auth-Token": server.admin_token}
    public = httpx.post(
        f"{server.url}/image/v2/images",
        headers=admin,
        json={
            "name": "Debian 12",
            "disk_format": "raw",
            "container_format": "bare",
            "visibility": "public",
            "os_distro": "debian",
            "os_version": "12",
        },
    )
    public.raise_for_status()
    httpx.put(
        f"{server.url}/image/v2/images/{public.json()['id']}/file",
        headers={**admin, "Content-Type": "application/octet-stream"},
        content=DISK,
    ).raise_for_status()
    friend = new_person(server, "friend@example.org")
    upload(server, friend, "disks", "lab.img")
    shared = register(server, friend, "disks", "lab.img", "Lab image")
    httpx.put(
        f"{server.url}/image/v1/images/{shared}/members/{me.uuid}",
        headers={"X-Auth-Token": friend.token},
    ).raise_for_status()
    upload(server, me, "images", "ubuntu-24.04.img")

    page.click("nav >> text=Images")
    expect(page.locator('#public-images [data-image="Debian 12"]')).to_contain_text("Debian 12")
    lab = page.locator('#shared-images [data-image="Lab image"]')
    expect(lab).to_contain_text("Fedora")
    expect(lab).to_contain_text("accept it to use it")
    lab.get_by_role("button", name="Accept Lab image").click()
    expect(page.locator("#image-notice")).to_contain_text("Lab image is in your list")
    expect(lab.get_by_role("link", name="Start a machine from Lab image")).to_be_visible()
    expect(page.locator("#my-images")).to_have_count(0)
    expect(page.locator("main")).to_contain_text("None yet. Register a disk image")

    page.click("#register")
    expect(page.locator("#image-file")).to_have_value("ubuntu-24.04.img")
    expect(page.locator("#image-name")).to_have_value("ubuntu-24.04")  # from the file's name
    page.fill("#image-name", "")
    page.click("#image-submit")
    expect(page.locator("#image-name-error")).to_have_text("Give the image a name.")
    page.fill("#image-name", "My Ubuntu")
    page.fill("#image-distro", "Ubuntu")
    page.fill("#image-version", "24.04")
    page.screenshot(path=str(screenshots / "image-register.png"), full_page=True)
    page.click("#image-submit")
    expect(page.locator("#image-notice")).to_contain_text("My Ubuntu is registered")
    mine = page.locator('#my-images [data-image="My Ubuntu"]')
    expect(mine).to_contain_text("Ubuntu 24.04")
    page.screenshot(path=str(screenshots / "images.png"), full_page=True)

    # The API agrees: the image is the file, with the metadata given.
    images = httpx.get(f"{server.url}/image/v2/images", headers={"X-Auth-Token": me.token}).json()[
        "images"
    ]
    (made,) = [i for i in images if i["name"] == "My Ubuntu"]
    assert (made["status"], made["os_distro"], made["os_version"]) == ("active", "ubuntu", "24.04")

    mine.get_by_role("link", name="Start a machine from My Ubuntu").click()
    chosen = page.locator(".choice.chosen", has_text="My Ubuntu")
    expect(chosen).to_have_count(1)
    expect(page.locator("#name")).to_have_value("ubuntu-1")
    page.click("#create")
    row = page.locator('tr[data-name="ubuntu-1"]')
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "ACTIVE")
    expect(row).to_contain_text("My Ubuntu")
