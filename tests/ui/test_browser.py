"""The web UI as a person uses it: Chromium against ``nefos up``, counting clicks.

Each test logs in through the web login in a fresh browser context, as a user made with
``nefos user create``; a public image is registered once through Glance, as an operator
would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server
from tests.ui.people import EXPECT_MS, log_in, new_person

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Page, expect

expect.set_options(timeout=EXPECT_MS)


@pytest.fixture(scope="module")
def cloud(server: Server) -> Server:
    """The server with one public image, as an operator registers it."""
    admin = {"X-Auth-Token": server.admin_token}
    made = httpx.post(
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
    made.raise_for_status()
    upload = httpx.put(
        f"{server.url}/image/v2/images/{made.json()['id']}/file",
        headers={**admin, "Content-Type": "application/octet-stream"},
        content=b"\0" * 65536,
    )
    upload.raise_for_status()
    return server


@pytest.fixture
def page(browser: Any, cloud: Server, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context for a new user (named after the test), logged in: it is
    on the dashboard."""
    person = new_person(cloud, f"{request.node.name.replace('_', '-')[:40]}@example.org")
    errors: list[str] = []
    opened = log_in(browser, cloud, person, errors)
    yield opened
    opened.context.close()
    assert not errors, errors  # no script failed on any page


def row(page: Page, name: str) -> Any:
    return page.locator(f'tr[data-name="{name}"]')


def status(page: Page, name: str) -> Any:
    return row(page, name).locator("[data-status]")


def watch_statuses(page: Page) -> None:
    """Record every state the list shows, so a short BUILD is not missed between looks."""
    page.evaluate(
        """() => {
        window.seenStatuses = [];
        new MutationObserver(() => {
          for (const s of document.querySelectorAll("[data-status]")) {
            const name = s.closest("tr").dataset.name;
            window.seenStatuses.push(name + "=" + s.dataset.status);
          }
        }).observe(document.body, {subtree: true, childList: true, attributes: true});
        window.notReloaded = true;
    }"""
    )


def test_dashboard_shows_what_i_have_and_my_quotas(page: Page, screenshots: Path):
    quota = page.locator('.project-quota [data-resource="cyclades.vm"]')
    expect(quota).to_contain_text("Number of virtual machines")
    expect(quota).to_contain_text("0 of 5 used")
    ram = page.locator('.project-quota [data-resource="cyclades.total_ram"]')
    expect(ram).to_contain_text("0 bytes of 40 GiB used")  # sizes in units people read
    expect(page.locator(".project-quota h3")).to_have_text("Personal project")
    expect(page.locator("#machine-count")).to_have_text("0")
    page.screenshot(path=str(screenshots / "dashboard.png"), full_page=True)


def test_three_clicks_from_dashboard_to_a_building_machine(page: Page, screenshots: Path):
    watch_statuses(page)
    clicks = 0
    page.click("#new-machine")
    clicks += 1
    expect(page.locator("#create")).to_be_enabled()
    expect(page.locator("#name")).to_have_value("debian-1")  # every default filled in
    expect(page.locator('.form-side [data-resource="cyclades.vm"]')).to_contain_text(
        "0 used + 1 new, of 5"
    )
    page.screenshot(path=str(screenshots / "new-machine.png"), full_page=True)
    page.click("#create")
    clicks += 1
    assert clicks <= 3
    expect(page.locator("#notice")).to_contain_text("Created debian-1.")
    expect(page.locator("#password")).to_have_text(re.compile(r"\S{8,}"))
    expect(status(page, "debian-1")).to_have_attribute("data-status", "ACTIVE")
    expect(status(page, "debian-1")).to_have_text("Running")
    seen = page.evaluate("window.seenStatuses")
    assert "debian-1=BUILD" in seen, seen
    assert page.evaluate("window.notReloaded"), "the list reloaded the page"
    page.screenshot(path=str(screenshots / "machines.png"), full_page=True)


def create_from_the_form(page: Page, name: str) -> None:
    page.click("#new-machine")
    page.fill("#name", name)
    page.click("#create")
    expect(status(page, name)).to_have_attribute("data-status", "ACTIVE")


def test_stop_and_start(page: Page):
    create_from_the_form(page, "worker")
    row(page, "worker").locator('[data-action="stop"]').click()
    expect(status(page, "worker")).to_have_attribute("data-status", "SHUTOFF")
    expect(status(page, "worker")).to_have_text("Stopped")
    row(page, "worker").locator('[data-action="start"]').click()
    expect(status(page, "worker")).to_have_attribute("data-status", "ACTIVE")


def test_destroy_asks_first(page: Page, screenshots: Path):
    create_from_the_form(page, "doomed")
    row(page, "doomed").locator('[data-action="destroy"]').click()
    dialog = page.locator("dialog.confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("everything on its disk")
    page.screenshot(path=str(screenshots / "destroy-confirm.png"))
    dialog.get_by_role("button", name="Keep it").click()
    expect(dialog).to_have_count(0)
    expect(status(page, "doomed")).to_have_attribute("data-status", "ACTIVE")
    row(page, "doomed").locator('[data-action="destroy"]').click()
    page.get_by_role("button", name="Destroy doomed").click()
    expect(row(page, "doomed")).to_have_count(0)


def test_over_quota_create_names_what_ran_short(page: Page, cloud: Server, screenshots: Path):
    page.click("#new-machine")
    expect(page.locator("#create")).to_be_enabled()
    # Meanwhile another client of the same user takes the whole machine quota.
    person = page.person  # type: ignore[attr-defined]
    images = httpx.get(
        f"{cloud.url}/image/v2/images", headers={"X-Auth-Token": person.token}
    ).json()
    taken = httpx.post(
        f"{cloud.url}/compute/v2.1/servers",
        headers={"X-Auth-Token": person.token},
        json={
            "server": {
                "name": "elsewhere",
                "imageRef": images["images"][0]["id"],
                "flavorRef": "1",
                "min_count": 5,
                "max_count": 5,
            }
        },
    )
    assert taken.status_code == 202, taken.text
    page.click("#create")
    failure = page.locator("#failure")
    expect(failure).to_contain_text("Not enough quota for number of virtual machines")
    expect(failure).to_contain_text("in Personal project")
    expect(failure).to_contain_text("this needs 1, 5 of 5 is in use, so 0 is left")
    # The form now shows the quota as it is, and offers no create that cannot succeed.
    expect(page.locator('.form-side [data-resource="cyclades.vm"]')).to_contain_text(
        "5 used + 1 new, of 5"
    )
    expect(page.locator("#create")).to_be_disabled()
    page.screenshot(path=str(screenshots / "over-quota.png"), full_page=True)
    page.reload()
    expect(page.locator("#blocked")).to_contain_text(
        "Not enough quota for number of virtual machines: this machine needs 1, and 0 is left."
    )
    expect(page.locator("#create")).to_be_disabled()
