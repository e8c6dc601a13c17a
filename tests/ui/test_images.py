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
from tests.ui.people import EXPECT_MS, Person, log_in, new_person, public_image

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
    public_image(server, content=DISK, os_distro="debian", os_version="12")
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


# (name, properties as a client sends them, the logo drawn, its accessible name)
SYSTEMS = [
    ("Logo Debian", {"os_distro": "debian", "os_version": "12"}, "debian", "Debian"),
    ("Logo Ubuntu", {"OS": "Ubuntu"}, "ubuntu", "Ubuntu"),  # Synnefo's OS, as kept by v2
    ("Logo Fedora", {"os_distro": "fedora"}, "fedora", "Fedora"),
    ("Logo Rocky", {"os_distro": "rocky"}, "rocky", "Rocky Linux"),
    ("Logo Alma", {"os_distro": "almalinux"}, "alma", "AlmaLinux"),
    ("Logo Windows", {"OSFAMILY": "windows"}, "windows", "Windows"),  # the family alone
    ("Logo FreeBSD", {"os_distro": "freebsd"}, "freebsd", "FreeBSD"),
    ("Logo Arch", {"os_distro": "arch"}, "arch", "Arch Linux"),
    ("Logo Leap", {"os_distro": "opensuse-leap"}, "opensuse", "openSUSE"),
    ("Logo Haiku", {"os_distro": "haiku"}, "generic", "Haiku"),  # one no logo knows
    ("Logo Bare", {}, "generic", "Operating system not given"),
]


def test_each_os_has_its_logo(browser: Any, server: Server, screenshots: Path):
    """Images of many systems, set by Glance v2's properties and by Plankton's headers
    (kamaki's), each drawn with its own logo, named for a screen reader, on the Images
    page and in the new machine's picker; an OS no logo knows gets the plain one."""
    me = new_person(server, "logos@example.org")
    errors: list[str] = []
    page = log_in(browser, server, me, errors)
    auth = {"X-Auth-Token": me.token}
    for name, properties, _, _ in SYSTEMS:
        made = httpx.post(
            f"{server.url}/image/v2/images",
            headers=auth,
            json={"name": name, "disk_format": "raw", "container_format": "bare", **properties},
        )
        made.raise_for_status()
        httpx.put(
            f"{server.url}/image/v2/images/{made.json()['id']}/file",
            headers={**auth, "Content-Type": "application/octet-stream"},
            content=DISK,
        ).raise_for_status()
    upload(server, me, "disks", "centos.img")
    httpx.post(  # Plankton lowers the header's name: the property is "os"
        f"{server.url}/image/v1/images/",
        headers={
            **auth,
            "X-Image-Meta-Name": "Logo CentOS",
            "X-Image-Meta-Location": f"pithos://{me.uuid}/disks/centos.img",
            "X-Image-Meta-Property-OS": "centos",
            "X-Image-Meta-Property-OSFamily": "linux",
        },
    ).raise_for_status()
    systems = [*SYSTEMS, ("Logo CentOS", {}, "centos", "CentOS")]

    page.click("nav >> text=Images")
    for name, _, logo, label in systems:
        card = page.locator(f'#my-images [data-image="{name}"]')
        expect(card.get_by_role("img", name=label, exact=True)).to_have_attribute("data-logo", logo)
    page.screenshot(path=str(screenshots / "images-logos.png"), full_page=True)

    page.goto(f"{server.url}/ui/#/machines/new")
    for name, _, logo, label in systems:
        choice = page.locator(".choice", has_text=name)
        expect(choice.locator("svg.logo")).to_have_attribute("data-logo", logo)
        expect(choice.locator("svg.logo")).to_have_attribute("aria-label", label)
        expect(choice.locator(".sub")).to_contain_text(label, ignore_case=True)  # in words too
    # the image is still chosen by its radio, whose name carries the OS too
    expect(page.get_by_role("radio", name="Windows Logo Windows")).to_have_count(1)
    page.screenshot(path=str(screenshots / "new-machine-logos.png"), full_page=True)
    page.context.close()
    assert not errors, errors
