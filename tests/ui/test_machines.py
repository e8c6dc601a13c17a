"""Machines in the browser, on a cloud with a default public network: five at once, each
turning ACTIVE with its own address; a machine's page with its NIC and addresses; resize against
the quota, with its confirmation.

``nefos up`` with ``[network] default_public_network`` set, the network made as an
operator makes it (``nefos network create --public``), one public image and one more
flavor with the smallest one's disk (a resize keeps the disk).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server, start_server, stop_server
from tests.ui.people import EXPECT_MS, log_in, new_person, public_image

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Page, expect

expect.set_options(timeout=EXPECT_MS)
POOL = ipaddress.ip_network("10.77.0.0/24")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(
        tmp_path_factory.mktemp("machines"), {"NEFOS_NETWORK__DEFAULT_PUBLIC_NETWORK": "public"}
    )
    try:
        with ThreadPoolExecutor(1) as pool:  # the commands run event loops of their own
            pool.submit(
                running.invoke,
                *("network", "create", "public", "--public"),
                *("--subnet", str(POOL), "--subnet", "2001:db8:77::/64"),
            ).result()
            pool.submit(
                running.invoke, "flavor", "create", "--vcpus", "2", "--ram", "2048", "--disk", "20"
            ).result()
        public_image(running, os_distro="debian", os_version="12")
        yield running
    finally:
        stop_server(running)


@pytest.fixture
def page(browser: Any, cloud: Server, request: pytest.FixtureRequest) -> Iterator[Page]:
    person = new_person(cloud, f"{request.node.name.replace('_', '-')[:40]}@example.org")
    errors: list[str] = []
    opened = log_in(browser, cloud, person, errors)
    yield opened
    opened.context.close()
    assert not errors, errors


def status(page: Page, name: str) -> Any:
    return page.locator(f'tr[data-name="{name}"] [data-status]')


def test_five_machines_at_once_each_with_an_address(page: Page, cloud: Server, screenshots: Path):
    page.click("#new-machine")
    page.fill("#name", "batch")
    page.fill("#count", "5")
    expect(page.locator("#create")).to_have_text("Create 5 machines")
    expect(page.locator('.form-side [data-resource="cyclades.vm"]')).to_contain_text(
        "0 used + 5 new, of 5"
    )
    page.click("#create")
    expect(page.locator("#notice")).to_contain_text("Created 5 machines named after batch")
    names = [f"batch-{n}" for n in range(1, 6)]
    for name in names:
        expect(status(page, name)).to_have_attribute("data-status", "ACTIVE")
    addresses = []
    for name in names:
        shown = page.locator(f'tr[data-name="{name}"] td.ips code').first.inner_text()
        assert ipaddress.ip_address(shown) in POOL, shown
        addresses.append(shown)
    assert len(set(addresses)) == 5, addresses  # each its own
    page.screenshot(path=str(screenshots / "machines-five.png"), full_page=True)
    # one stopped as any client stops it: the dashboard counts 5 machines, 4 running,
    # from two counts (the listing's with_count, no page of servers), each asked once
    auth = {"X-Auth-Token": page.person.token}  # type: ignore[attr-defined]
    servers = f"{cloud.url}/compute/v2.1/servers"
    (stopped,) = httpx.get(servers, params={"name": "^batch-5$"}, headers=auth).json()["servers"]
    httpx.post(f"{servers}/{stopped['id']}/action", json={"os-stop": None}, headers=auth)
    expect(status(page, "batch-5")).to_have_attribute("data-status", "SHUTOFF")
    asked: list[tuple[str, int]] = []
    page.on(
        "requestfinished",
        lambda r: (
            asked.append((r.url, r.sizes()["responseBodySize"])) if "/compute/" in r.url else None
        ),
    )
    page.click("nav >> text=Dashboard")
    expect(page.locator("#machine-count")).to_have_text("5")
    expect(page.locator("#running-count")).to_have_text("4 running")
    urls = [url.split("/compute/v2.1", 1)[1] for url, _ in asked]
    assert sorted(urls) == [
        "/servers?with_count=true&limit=0",
        "/servers?with_count=true&limit=0&status=ACTIVE",
    ], asked
    assert all(size < 100 for _, size in asked), asked  # {"servers": [], "count": 5}


def test_machine_page_shows_addresses_and_resizes(page: Page, screenshots: Path):
    page.click("#new-machine")
    page.fill("#name", "grow")
    page.click("#create")
    expect(status(page, "grow")).to_have_attribute("data-status", "ACTIVE")
    page.click('tr[data-name="grow"] a.machine-name')
    expect(page).to_have_url(re.compile(r"#/machines/[^/]+$"))
    expect(page.locator("h1")).to_have_text("grow")
    expect(page.locator("#machine-status")).to_have_text("Running")
    nic = page.locator("#nics tbody tr")
    expect(nic).to_have_count(1)  # one NIC on public: IPv4 from the pool, and IPv6 (SLAAC)
    expect(nic).to_have_attribute("data-network", "public")
    first = nic.locator("td.ips").nth(0).inner_text()
    assert ipaddress.ip_address(first) in POOL
    v6 = ipaddress.ip_address(nic.locator("td.ips").nth(1).inner_text())
    assert v6.version == 6 and v6 in ipaddress.ip_network("2001:db8:77::/64")
    expect(page.locator(".hint")).to_contain_text(f"ssh root@{first}")
    expect(page.locator("#machine-size")).to_have_text("1 CPU · 1 GiB RAM · 20 GiB disk")

    page.click('[data-action="resize"]')
    dialog = page.locator("dialog.confirm")
    expect(dialog).to_contain_text("is running: it is stopped, resized and started again")
    expect(dialog.locator(".choice")).to_have_count(1)  # only the same disk's sizes
    expect(page.locator("#resize-yes")).to_be_disabled()  # nothing chosen yet
    dialog.locator(".choice", has_text="2 CPUs").click()
    expect(dialog.locator('[data-resource="cyclades.total_cpu"]')).to_contain_text(
        "1 used + 1 new, of 20"
    )
    page.screenshot(path=str(screenshots / "machine-resize.png"), full_page=True)
    dialog.get_by_role("button", name="Keep this size").click()
    expect(dialog).to_have_count(0)
    expect(page.locator("#machine-size")).to_contain_text("1 CPU")

    page.click('[data-action="resize"]')
    dialog.locator(".choice", has_text="2 CPUs").click()
    page.click("#resize-yes")
    expect(page.locator("#machine-notice")).to_have_text(
        "grow now has 2 CPUs · 2 GiB RAM · 20 GiB disk.", timeout=60_000
    )
    expect(page.locator("#machine-status")).to_have_text("Running")
    expect(page.locator("#machine-size")).to_have_text("2 CPUs · 2 GiB RAM · 20 GiB disk")
    page.screenshot(path=str(screenshots / "machine.png"), full_page=True)
    person = page.person  # type: ignore[attr-defined]
    quotas = httpx.get(
        f"{page.url.split('/ui/')[0]}/account/v1.0/quotas",
        headers={"X-Auth-Token": person.token},
    ).json()
    personal = quotas[person.uuid]
    assert personal["cyclades.total_cpu"]["usage"] == 2
    assert personal["cyclades.cpu"]["usage"] == 2  # running again, with its new size


def test_a_machine_that_is_not_mine(page: Page, cloud: Server):
    page.goto(f"{cloud.url}/ui/#/machines/999999")
    expect(page.locator("h1")).to_have_text("No such machine")
