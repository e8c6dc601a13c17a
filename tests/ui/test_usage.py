"""The Usage page: machines made and destroyed through the API show in the charts.

Chromium against ``nefos up`` (embedded backend): three machines are created at once
and two destroyed as any client does it; the page then draws the machine, CPU and memory
series of the personal project from ``GET /account/v1.0/usage``, with the limit, and
says the same in words and in a table.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server
from tests.ui.people import EXPECT_MS, log_in, new_person, public_image

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

expect.set_options(timeout=EXPECT_MS)


@pytest.fixture(scope="module")
def cloud(server: Server) -> Server:
    """The server with one public image, as an operator registers it."""
    public_image(server, "Debian 12 (usage)", os_distro="debian")
    return server


@pytest.fixture
def page(browser: Any, cloud: Server) -> Iterator[Page]:
    person = new_person(cloud, "usage-chart@example.org")
    errors: list[str] = []
    opened = log_in(browser, cloud, person, errors)
    yield opened
    opened.context.close()
    assert not errors, errors


def wait_for(check: Any, what: str, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def machines(server: Server, token: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{server.url}/compute/v2.1/servers/detail", headers={"X-Auth-Token": token})
    answer.raise_for_status()
    return answer.json()["servers"]


def vm_usage(server: Server, token: str) -> list[int | None]:
    """The machines series of the last day, as any client reads it."""
    answer = httpx.get(
        f"{server.url}/account/v1.0/usage",
        params={"resource": "cyclades.vm"},
        headers={"X-Auth-Token": token},
    )
    answer.raise_for_status()
    return answer.json()["series"][0]["usage"]


def test_machines_made_and_destroyed_show_in_the_charts(
    page: Page, cloud: Server, screenshots: Path
):
    person = page.person  # type: ignore[attr-defined]
    auth = {"X-Auth-Token": person.token}
    image = httpx.get(f"{cloud.url}/image/v2/images?name=Debian 12 (usage)", headers=auth)
    made = httpx.post(
        f"{cloud.url}/compute/v2.1/servers",
        headers=auth,
        json={
            "server": {
                "name": "plot",
                "imageRef": image.json()["images"][0]["id"],
                "flavorRef": "1",
                "min_count": 3,
                "max_count": 3,
            }
        },
    )
    assert made.status_code == 202, made.text
    wait_for(
        lambda: [s for s in machines(cloud, person.token) if s["status"] == "ACTIVE"][2:],
        "three ACTIVE machines",
    )
    for doomed in sorted(machines(cloud, person.token), key=lambda s: s["name"])[:2]:
        gone = httpx.delete(f"{cloud.url}/compute/v2.1/servers/{doomed['id']}", headers=auth)
        assert gone.status_code == 204, gone.text
    wait_for(lambda: len(machines(cloud, person.token)) == 1, "two machines destroyed")
    wait_for(lambda: vm_usage(cloud, person.token)[-1] == 1, "the usage to settle at 1")

    page.click("nav >> text=Usage")
    page.click("button:has-text('Last hour')")
    expect(page.locator("button:has-text('Last hour')")).to_have_attribute("aria-pressed", "true")
    personal = page.locator(f'.project-usage[data-project="{person.uuid}"]')
    expect(personal.locator("h2")).to_have_text("Personal project")
    vm = personal.locator('.usage-chart[data-resource="cyclades.vm"]')
    expect(vm.locator("h3")).to_have_text("Machines")
    expect(vm.locator(".usage-now")).to_contain_text("1 machine in use now, of 5 machines.")
    expect(vm.locator("canvas")).to_be_visible()  # uPlot drew it
    data = json.loads(vm.get_attribute("data-usage"))
    assert data["usage"][-1] == 1 and data["limit"] == 5
    assert max(p for p in data["peak"] if p is not None) == 3  # all three were there at once
    assert len(data["times"]) == len(data["usage"]) <= 200
    # The chart's text alternative, in words, and the table behind "Show as a table".
    label = vm.locator(".chart").get_attribute("aria-label")
    assert "Machines in Personal project, last hour: 1 machine now, at most 3 machines" in label
    vm.locator("summary").click()
    table = vm.locator(".usage-table")
    expect(table).to_be_visible()
    expect(table.locator("tbody tr").last).to_contain_text("1 machine")
    expect(table).to_contain_text("3 machines")
    # Memory in units a person reads, and CPUs by name.
    ram = personal.locator('.usage-chart[data-resource="cyclades.total_ram"]')
    expect(ram.locator("h3")).to_have_text("Memory")
    expect(ram.locator(".usage-now")).to_contain_text("GiB")
    cpu = personal.locator('.usage-chart[data-resource="cyclades.total_cpu"]')
    expect(cpu.locator(".usage-now")).to_contain_text("CPU")
    page.screenshot(path=str(screenshots / "usage.png"), full_page=True)
    # On a phone, the charts (and the top bar, wrapped) fit the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    expect(vm.locator("canvas")).to_be_visible()
    # The charts take the new width when their ResizeObserver fires, a frame or more later.
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function("document.documentElement.scrollWidth <= 390", timeout=10_000)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    page.screenshot(path=str(screenshots / "usage-phone.png"), full_page=True)
