"""Networks in the browser: a private network made in the UI, a machine on it with its
NIC and address on the machine's page, a floating IP taken, attached, detached and
released; connect and disconnect a NIC; another user does not see the network; the
API's reasons for a refused delete (409) and a quota; a phone-sized screen and the
keyboard alone.

``nefos up`` with ``[network] default_public_network`` set, the network made as an
operator makes it (``nefos network create --public --floating-ip-pool``) and one public
image. The embedded backend gives the servers real addresses from the pools.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server, start_server, stop_server
from tests.ui.people import EXPECT_MS, api, log_in, person_for, public_image

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Page, expect

expect.set_options(timeout=EXPECT_MS)
POOL = ipaddress.ip_network("10.78.0.0/24")
LAB = ipaddress.ip_network("192.168.1.0/24")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(
        tmp_path_factory.mktemp("networks"), {"NEFOS_NETWORK__DEFAULT_PUBLIC_NETWORK": "public"}
    )
    try:
        with ThreadPoolExecutor(1) as pool:  # the command runs an event loop of its own
            pool.submit(
                running.invoke,
                *("network", "create", "public", "--public", "--floating-ip-pool"),
                *("--subnet", str(POOL), "--subnet", "2001:db8:78::/64"),
            ).result()
        running.image = public_image(running)  # type: ignore[attr-defined]
        yield running
    finally:
        stop_server(running)


@pytest.fixture
def page(browser: Any, cloud: Server, request: pytest.FixtureRequest) -> Iterator[Page]:
    errors: list[str] = []
    opened = log_in(browser, cloud, person_for(cloud, request), errors)
    yield opened
    opened.context.close()
    assert not errors, errors


def network_id(client: httpx.Client, name: str) -> str:
    found = client.get("/network/v2.0/networks", params={"name": name}).json()["networks"]
    assert len(found) == 1, found
    return found[0]["id"]


def machine_on(cloud: Server, client: httpx.Client, name: str, network: str | None) -> str:
    """A machine made through the API on one network (None: the default, public), once
    ACTIVE."""
    wanted = {"name": name, "imageRef": cloud.image, "flavorRef": "1"}  # type: ignore[attr-defined]
    if network:
        wanted["networks"] = [{"uuid": network}]
    made = client.post("/compute/v2.1/servers", json={"server": wanted})
    made.raise_for_status()
    server = made.json()["server"]["id"]
    deadline = time.monotonic() + 30
    while client.get(f"/compute/v2.1/servers/{server}").json()["server"]["status"] != "ACTIVE":
        assert time.monotonic() < deadline, "the machine did not become ACTIVE"
        time.sleep(0.3)
    return str(server)


def test_private_network_machine_and_floating_ip(page: Page, cloud: Server, screenshots: Path):
    page.click("nav >> text=Networks")
    expect(page).to_have_url(re.compile(r"#/networks$"))
    expect(page.locator("#public-networks tr[data-network=public]")).to_contain_text(str(POOL))
    expect(page.locator("#public-networks tr[data-network=public]")).to_contain_text(
        "Floating IPs come from here"
    )
    page.click("#new-network")
    expect(page.locator("#network-name")).to_be_focused()
    expect(page.locator("#network-cidr")).to_have_value(str(LAB))  # none of mine overlaps
    page.click("#network-submit")  # no name: said by the field
    expect(page.locator("#network-name-error")).to_have_text("Give the network a name.")
    page.fill("#network-name", "lab")
    page.click("#network-submit")
    expect(page.locator("#network-notice")).to_have_text("Created the network lab.")
    row = page.locator("#private-networks tr[data-network=lab]")
    expect(row).to_contain_text(str(LAB))
    expect(row).to_contain_text("gateway 192.168.1.1")
    expect(row).to_contain_text("DHCP on")
    expect(row).to_contain_text("0 interfaces")
    page.screenshot(path=str(screenshots / "networks.png"), full_page=True)

    client = api(cloud, page.person)  # type: ignore[attr-defined]
    lab = network_id(client, "lab")
    subnets = client.get("/network/v2.0/subnets", params={"network_id": lab}).json()["subnets"]
    assert [(s["cidr"], s["enable_dhcp"]) for s in subnets] == [(str(LAB), True)]
    server = machine_on(cloud, client, "web-1", lab)

    page.goto(f"{cloud.url}/ui/#/machines/{server}")
    nic = page.locator("#nics tr[data-network=lab]")
    expect(nic).to_be_visible()
    expect(page.locator("#nics tbody tr")).to_have_count(1)  # only the network it asked for
    address = nic.locator("td.ips code").first.inner_text()
    assert ipaddress.ip_address(address) in LAB, address
    port = client.get("/network/v2.0/ports", params={"device_id": server}).json()["ports"][0]
    expect(nic).to_contain_text(port["mac_address"])
    expect(nic).to_contain_text("Off")  # the firewall profile, unprotected
    page.screenshot(path=str(screenshots / "machine-nics.png"), full_page=True)

    page.click("nav >> text=Networks")
    expect(page.locator("#private-networks tr[data-network=lab]")).to_contain_text("1 interface")
    expect(page.locator("#floating-ips")).to_have_count(0)
    page.click("#allocate")
    expect(page.locator("#network-notice")).to_have_text("You have a new floating IP from public.")
    ip_row = page.locator("#floating-ips tbody tr")
    expect(ip_row).to_have_count(1)
    floating = ip_row.locator("code").first.inner_text()
    assert ipaddress.ip_address(floating) in POOL, floating
    expect(ip_row).to_contain_text("not attached")
    ip_row.locator("[data-action=attach]").click()
    dialog = page.locator("dialog.confirm")
    expect(dialog.locator("#attach-machine")).to_have_value(server)
    dialog.locator("#attach-yes").click()
    expect(page.locator("#network-notice")).to_have_text(f"{floating} is attached to web-1.")
    expect(ip_row.locator(".held-by a")).to_have_text("web-1")
    page.screenshot(path=str(screenshots / "networks-floating.png"), full_page=True)
    held = client.get("/network/v2.0/floatingips").json()["floatingips"][0]
    assert held["port_id"] in {
        p["id"]
        for p in client.get("/network/v2.0/ports", params={"device_id": server}).json()["ports"]
    }

    ip_row.locator(".held-by a").click()  # to the machine: a NIC on public holds it
    public_nic = page.locator("#nics tr[data-network=public]")
    expect(public_nic).to_contain_text(floating)
    expect(public_nic).to_contain_text("(floating)")
    expect(page.locator(".hint")).to_contain_text(f"ssh root@{floating}")

    page.click("nav >> text=Networks")
    ip_row.locator("[data-action=detach]").click()
    expect(page.locator("dialog.confirm")).to_contain_text("the address stays yours")
    page.click("#ask-yes")
    expect(page.locator("#network-notice")).to_have_text(f"{floating} is detached.")
    expect(ip_row).to_contain_text("not attached")
    ip_row.locator("[data-action=release]").click()
    page.click("#ask-yes")
    expect(page.locator("#network-notice")).to_have_text(f"Released {floating}.")
    expect(page.locator("#floating-ips")).to_have_count(0)
    assert client.get("/network/v2.0/floatingips").json()["floatingips"] == []


def test_connect_and_disconnect_a_machine(page: Page, cloud: Server, screenshots: Path):
    client = api(cloud, page.person)  # type: ignore[attr-defined]
    server = machine_on(cloud, client, "db-1", None)  # the default public NIC
    page.goto(f"{cloud.url}/ui/#/machines/{server}")
    expect(page.locator("#nics tr[data-network=public]")).to_be_visible()
    # a user cannot remove a public NIC: no button offers it
    expect(page.locator("#nics tr[data-network=public] [data-action=disconnect]")).to_have_count(0)
    page.click("#connect")
    expect(page.locator("dialog.confirm")).to_contain_text("You have no private network yet.")
    page.keyboard.press("Escape")
    expect(page.locator("dialog.confirm")).to_have_count(0)

    page.click("nav >> text=Networks")
    page.click("#new-network")
    page.fill("#network-name", "backend")
    page.fill("#network-cidr", "10.20.0.0/24")
    page.uncheck("#network-dhcp")
    page.click("#network-submit")
    expect(page.locator("tr[data-network=backend]")).to_contain_text("DHCP off")

    page.goto(f"{cloud.url}/ui/#/machines/{server}")
    page.click("#connect")
    expect(page.locator("#connect-network option")).to_have_text(["backend"])
    page.click("#ask-yes")
    expect(page.locator("#machine-notice")).to_have_text("db-1 is being connected to backend.")
    nic = page.locator("#nics tr[data-network=backend]")
    expect(nic.locator("td.ips code").first).to_have_text(re.compile(r"^10\.20\.0\.\d+$"))
    expect(page.locator("#nics tbody tr")).to_have_count(2)
    page.screenshot(path=str(screenshots / "machine-connected.png"), full_page=True)
    ports = client.get("/network/v2.0/ports", params={"device_id": server}).json()["ports"]
    assert {p["network_id"] for p in ports} == {
        network_id(client, "backend"),
        network_id(client, "public"),
    }

    nic.locator("[data-action=disconnect]").click()
    dialog = page.locator("dialog.confirm")
    expect(dialog).to_contain_text("Disconnect db-1 from backend?")
    dialog.get_by_role("button", name="Stay connected").click()
    expect(page.locator("#nics tbody tr")).to_have_count(2)
    nic.locator("[data-action=disconnect]").click()
    page.click("#ask-yes")
    expect(page.locator("#machine-notice")).to_have_text("db-1 is disconnected from backend.")
    expect(page.locator("#nics tr[data-network=backend]")).to_have_count(0)
    ports = client.get("/network/v2.0/ports", params={"device_id": server}).json()["ports"]
    assert [p["network_id"] for p in ports] == [network_id(client, "public")]


def test_another_user_does_not_see_my_network(
    page: Page, browser: Any, cloud: Server, request: pytest.FixtureRequest
):
    client = api(cloud, page.person)  # type: ignore[attr-defined]
    made = client.post("/network/v2.0/networks", json={"network": {"name": "secret-lab"}})
    made.raise_for_status()
    page.click("nav >> text=Networks")
    expect(page.locator("#private-networks tr[data-network=secret-lab]")).to_be_visible()

    other = person_for(cloud, request, "-other")
    errors: list[str] = []
    theirs = log_in(browser, cloud, other, errors)
    theirs.click("nav >> text=Networks")
    expect(theirs.locator("#public-networks tr[data-network=public]")).to_be_visible()
    expect(theirs.locator("tr[data-network=secret-lab]")).to_have_count(0)
    expect(theirs.locator("main")).to_contain_text("You have no private network.")
    assert (
        api(cloud, other).get(f"/network/v2.0/networks/{made.json()['network']['id']}").status_code
        == 404
    )
    theirs.context.close()
    assert not errors, errors


def test_deleting_a_network_in_use_says_why(page: Page, cloud: Server, screenshots: Path):
    client = api(cloud, page.person)  # type: ignore[attr-defined]
    made = client.post("/network/v2.0/networks", json={"network": {"name": "busy"}})
    busy = made.json()["network"]["id"]
    client.post(
        "/network/v2.0/subnets",
        json={"subnet": {"network_id": busy, "cidr": "172.16.5.0/24", "ip_version": 4}},
    ).raise_for_status()
    client.post("/network/v2.0/ports", json={"port": {"network_id": busy}}).raise_for_status()
    client.post("/network/v2.0/networks", json={"network": {"name": "idle"}}).raise_for_status()
    page.click("nav >> text=Networks")
    row = page.locator("tr[data-network=busy]")
    expect(row).to_contain_text("1 interface")
    row.locator("[data-action=delete]").click()
    dialog = page.locator("dialog.confirm")
    expect(dialog).to_contain_text("Delete the network busy?")
    page.click("#ask-yes")
    expect(page.locator("#network-failure")).to_have_text(
        f"Deleting the network busy did not work: Unable to complete operation on network "
        f"{busy}. There are one or more ports or floating IPs still in use on it."
    )
    expect(row).to_be_visible()  # still there
    page.screenshot(path=str(screenshots / "networks-delete-refused.png"), full_page=True)
    assert client.get(f"/network/v2.0/networks/{busy}").status_code == 200

    page.locator("tr[data-network=idle] [data-action=delete]").click()
    page.click("#ask-yes")
    expect(page.locator("#network-notice")).to_have_text("Deleted the network idle.")
    expect(page.locator("tr[data-network=idle]")).to_have_count(0)


def test_quota_refusals_name_the_resource(page: Page, cloud: Server):
    client = api(cloud, page.person)  # type: ignore[attr-defined]
    for n in range(5):  # the default: 5 private networks per user
        client.post(
            "/network/v2.0/networks", json={"network": {"name": f"n{n}"}}
        ).raise_for_status()
    for _ in range(2):  # and 2 floating IPs
        client.post("/network/v2.0/floatingips", json={"floatingip": {}}).raise_for_status()
    page.click("nav >> text=Networks")
    quota = page.locator('[data-resource="cyclades.network.private"]')
    expect(quota).to_contain_text("5 of 5")
    page.click("#new-network")
    page.fill("#network-name", "one-too-many")
    page.click("#network-submit")
    # The refusal's data (as the compute API's overLimit carries it) in the page's words,
    # the project by its name: no resource key, no holder id.
    expect(page.locator("#network-form-failure")).to_have_text(
        "The network one-too-many was not created: Not enough quota for number of private "
        "networks in Personal project: this needs 1, 5 of 5 is in use, so 0 is left."
    )
    page.click("form.network-form >> text=Cancel")
    page.click("#allocate")
    expect(page.locator("#network-failure")).to_have_text(
        "Getting a floating IP from public did not work: Not enough quota for number of "
        "floating IPs in Personal project: this needs 1, 2 of 2 is in use, so 0 is left."
    )
    names = [n["name"] for n in client.get("/network/v2.0/networks").json()["networks"]]
    assert "one-too-many" not in names


def test_phone_and_keyboard(
    browser: Any, cloud: Server, request: pytest.FixtureRequest, screenshots
):
    person = person_for(cloud, request)
    client = api(cloud, person)
    lab = client.post("/network/v2.0/networks", json={"network": {"name": "phone-lab"}}).json()
    client.post(
        "/network/v2.0/subnets",
        json={"subnet": {"network_id": lab["network"]["id"], "cidr": str(LAB), "ip_version": 4}},
    ).raise_for_status()
    errors: list[str] = []
    page = log_in(browser, cloud, person, errors)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{cloud.url}/ui/#/networks")
    expect(page.locator("tr[data-network=phone-lab]")).to_be_visible()
    wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"the page is {wide}px wider than the phone"
    page.screenshot(path=str(screenshots / "networks-phone.png"), full_page=True)

    # the keyboard alone: tab to "New private network", make one, delete it
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "new-network":
            break
    else:
        pytest.fail("Tab never reached the New private network button")
    page.keyboard.press("Enter")
    expect(page.locator("#network-name")).to_be_focused()
    page.keyboard.type("keys")
    expect(page.locator("#network-cidr")).to_have_value("192.168.2.0/24")  # 1 is taken
    page.keyboard.press("Enter")  # submits the form
    expect(page.locator("#network-notice")).to_have_text("Created the network keys.")
    page.locator("tr[data-network=keys] [data-action=delete]").focus()
    page.keyboard.press("Enter")
    expect(page.locator("dialog.confirm button[autofocus]")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("#ask-yes")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#network-notice")).to_have_text("Deleted the network keys.")
    page.context.close()
    assert not errors, errors
