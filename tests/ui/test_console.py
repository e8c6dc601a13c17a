"""The console page where no console can be had: a backend that runs no guest (the
embedded one, behind ``nefos up``) and a machine that is not running. Each says its
cause in words. The console that works, on a real guest, is test_console_ganeti.py."""

from __future__ import annotations

import time
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
def image(server: Server) -> str:
    """A public image, as an operator registers it."""
    admin = {"X-Auth-Token": server.admin_token}
    made = httpx.post(
        f"{server.url}/image/v2/images",
        headers=admin,
        json={
            "name": "Debian 12",
            "disk_format": "raw",
            "container_format": "bare",
            "visibility": "public",
        },
    )
    made.raise_for_status()
    image_id = made.json()["id"]
    httpx.put(
        f"{server.url}/image/v2/images/{image_id}/file",
        headers={**admin, "Content-Type": "application/octet-stream"},
        content=b"\0" * 65536,
    ).raise_for_status()
    return image_id


@pytest.fixture
def page(browser: Any, server: Server, request: pytest.FixtureRequest) -> Iterator[Page]:
    person = new_person(server, f"{request.node.name.replace('_', '-')[:40]}@example.org")
    errors: list[str] = []
    opened = log_in(browser, server, person, errors)
    yield opened
    opened.context.close()
    assert not errors, errors


def compute(server: Server, token: str, method: str, path: str, **kwargs: Any) -> Any:
    answer = httpx.request(
        method, f"{server.url}/compute/v2.1{path}", headers={"X-Auth-Token": token}, **kwargs
    )
    answer.raise_for_status()
    return answer.json() if answer.content else None


def wait_status(server: Server, token: str, server_id: str, status: str) -> None:
    deadline = time.monotonic() + 30
    while (found := compute(server, token, "GET", f"/servers/{server_id}"))["server"][
        "status"
    ] != status:
        assert time.monotonic() < deadline, found
        time.sleep(0.2)


def test_a_backend_without_consoles_and_a_stopped_machine_say_so(
    page: Page, server: Server, image: str, screenshots: Path
) -> None:
    token = page.person.token
    flavor = compute(server, token, "GET", "/flavors")["flavors"][0]["id"]
    body = {"server": {"name": "no-screen", "imageRef": image, "flavorRef": flavor}}
    server_id = compute(server, token, "POST", "/servers", json=body)["server"]["id"]
    wait_status(server, token, server_id, "ACTIVE")

    page.goto(f"{server.url}/ui/#/machines")
    page.locator('tr[data-name="no-screen"] [data-action="console"]').click()
    expect(page).to_have_url(f"{server.url}/ui/#/machines/{server_id}/console")
    failure = page.locator("#console-failure")
    expect(failure).to_have_text(
        "No console for no-screen: This server's backend runs no guest, so it has no console"
    )
    expect(page.locator("[data-state]")).to_have_text("No console")
    expect(page.locator("#type-text")).to_be_hidden()  # nothing to type into
    page.screenshot(path=screenshots / "console-no-guest.png", full_page=True)

    compute(server, token, "POST", f"/servers/{server_id}/action", json={"os-stop": None})
    wait_status(server, token, server_id, "SHUTOFF")
    page.locator("#open-again").click()
    expect(failure).to_contain_text("no-screen is not running (it is stopped)")
    expect(failure).to_contain_text("Start it from the machines page")
    page.screenshot(path=screenshots / "console-not-running.png", full_page=True)

    # A stopped machine offers no Console button in the list.
    page.goto(f"{server.url}/ui/#/machines")
    row = page.locator('tr[data-name="no-screen"]')
    expect(row.locator("[data-status]")).to_have_text("Stopped")
    expect(row.locator('[data-action="console"]')).to_have_count(0)
