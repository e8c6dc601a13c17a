"""Disks in the browser: a disk made in the UI, attached to a machine, seen on the
machine's page, detached, renamed, grown, snapshotted, a new disk from the snapshot, all
deleted; a machine booted from a disk snapshotted into an image from its page (and one
on its own disk, which cannot be); another user does not see the disks; quota refusals
name the resource, the numbers and the project; the page in Greek and axe-core clean.

``nefos up`` on the embedded backend (attachments complete through its events, as on
Ganeti) with one public image.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server, start_server, stop_server
from tests.ui.people import EXPECT_MS, api, log_in, person_for, public_image

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Page, expect

from tests.ui.test_accessibility import violations
from tests.ui.test_i18n import english_left

expect.set_options(timeout=EXPECT_MS)
CINDER = "/volume/v3"
GiB = 1 << 30


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("disks"))
    try:
        running.image = public_image(running, content=b"\1" * 65536, os_distro="debian")  # type: ignore[attr-defined]
        yield running
    finally:
        stop_server(running)


@pytest.fixture
def page(browser: Any, cloud: Server, request: pytest.FixtureRequest) -> Iterator[Page]:
    errors: list[str] = []
    opened = log_in(browser, cloud, person_for(cloud, request), errors, bypass_csp=True)
    yield opened
    opened.context.close()
    assert not errors, errors


def active(client: httpx.Client, made: httpx.Response) -> str:
    made.raise_for_status()
    server = made.json()["server"]["id"]
    deadline = time.monotonic() + 30
    while client.get(f"/compute/v2.1/servers/{server}").json()["server"]["status"] != "ACTIVE":
        assert time.monotonic() < deadline, "the machine did not become ACTIVE"
        time.sleep(0.3)
    return str(server)


def machine(cloud: Server, client: httpx.Client, name: str) -> str:
    """A machine on its own disk, made through the API, once ACTIVE."""
    wanted = {"name": name, "imageRef": cloud.image, "flavorRef": "1"}  # type: ignore[attr-defined]
    return active(client, client.post("/compute/v2.1/servers", json={"server": wanted}))


def machine_on_a_disk(cloud: Server, client: httpx.Client, name: str) -> str:
    """A machine booted from a new 1 GiB volume cloned from the image."""
    root = {"uuid": cloud.image, "boot_index": 0, "source_type": "image",  # type: ignore[attr-defined]
            "destination_type": "volume", "volume_size": 1}  # fmt: skip
    wanted = {"name": name, "flavorRef": "1", "block_device_mapping_v2": [root]}
    return active(client, client.post("/compute/v2.1/servers", json={"server": wanted}))


def volumes(client: httpx.Client) -> dict[str, dict]:
    return {v["name"]: v for v in client.get(f"{CINDER}/volumes/detail").json()["volumes"]}


def test_a_disk_from_making_to_deleting(page: Page, cloud: Server, screenshots: Path):
    client = api(cloud, page.person)  # type: ignore[attr-defined]
    web = machine(cloud, client, "web-1")
    page.click("nav >> text=Disks")
    expect(page.locator("#no-disks")).to_have_text("You have no disks yet.")
    quota = page.locator('[data-resource="cyclades.disk"]')
    expect(quota).to_contain_text("20 GiB of 200 GiB used")  # web-1's own disk

    page.click("#new-disk")
    expect(page.locator("#disk-name")).to_be_focused()
    expect(page.locator("#disk-name")).to_have_value("disk-1")
    page.fill("#disk-name", "")
    page.fill("#disk-size", "2")
    side = page.locator(".disk-form .form-side")
    expect(side.locator('[data-resource="cyclades.disk"]')).to_contain_text(
        "20 GiB used + 2 GiB new, of 200 GiB"
    )
    expect(side).to_contain_text("Personal project")
    page.click("#disk-submit")  # no name: said by the field, nothing made
    expect(page.locator("#disk-name-error")).to_have_text("Give it a name.")
    page.fill("#disk-name", "data")
    page.screenshot(path=str(screenshots / "disks-new.png"), full_page=True)
    page.click("#disk-submit")
    expect(page.locator("#disk-notice")).to_have_text("Created the disk data.")
    row = page.locator("#disks tr[data-disk=data]")
    expect(row).to_contain_text("2 GiB")
    expect(row.locator(".status")).to_have_text("Free")
    expect(row.locator(".attached-to")).to_have_text("not attached")
    expect(row).to_contain_text("No")  # not bootable: it came from nothing
    made = volumes(client)["data"]
    assert (made["size"], made["status"], made["bootable"]) == (2, "available", "false")

    row.locator("[data-action=attach]").click()
    dialog = page.locator("dialog.confirm")
    expect(dialog.locator("#attach-machine option")).to_have_text(["web-1"])
    dialog.locator("#attach-machine-yes").click()
    expect(page.locator("#disk-notice")).to_have_text("data is being attached to web-1.")
    expect(row.locator(".status")).to_have_text("In use")  # the list follows the state
    expect(row.locator(".attached-to")).to_have_text("web-1 /dev/vdb")
    page.screenshot(path=str(screenshots / "disks-attached.png"), full_page=True)
    attached = client.get(f"/compute/v2.1/servers/{web}/os-volume_attachments").json()
    assert [(a["volumeId"], a["device"]) for a in attached["volumeAttachments"]] == [
        (made["id"], "/dev/vdb")
    ]

    row.locator("[data-action=delete]").click()  # refused while attached, and said why
    expect(page.locator("#refusal-text")).to_have_text(
        "data is attached to web-1. Detach it first; then it can be deleted."
    )
    page.keyboard.press("Escape")
    expect(page.locator("dialog.confirm")).to_have_count(0)
    assert volumes(client)["data"]["status"] == "in-use"

    row.locator(".attached-to a").click()  # to the machine's page: its disk is there
    disk = page.locator("#machine-disks tr[data-disk=data]")
    expect(disk).to_contain_text("/dev/vdb")
    expect(disk).to_contain_text("2 GiB")
    expect(disk.locator(".status")).to_have_text("In use")
    # on its own disk: no snapshot button, and the page says why
    expect(page.locator("#snapshot-machine")).to_have_count(0)
    expect(page.locator("#no-snapshot")).to_contain_text("web-1 runs on its own disk")
    page.screenshot(path=str(screenshots / "machine-disks.png"), full_page=True)
    disk.locator("[data-action=detach]").click()
    expect(page.locator("dialog.confirm")).to_contain_text("Detach data from web-1?")
    page.click("#ask-yes")
    expect(page.locator("#machine-notice")).to_have_text("data is being detached from web-1.")
    expect(page.locator("#no-machine-disks")).to_be_visible()
    page.click("#attach-disk-open")  # and back again from this page
    expect(page.locator("#attach-disk option")).to_have_text(["data (2 GiB)"])
    page.click("#attach-disk-yes")
    expect(disk.locator(".status")).to_have_text("In use")

    page.click("nav >> text=Disks")
    row.locator("[data-action=detach]").click()
    page.click("#ask-yes")
    expect(page.locator("#disk-notice")).to_have_text("data is being detached from web-1.")
    expect(row.locator(".status")).to_have_text("Free")
    assert client.get(f"/compute/v2.1/servers/{web}/os-volume_attachments").json() == {
        "volumeAttachments": []
    }

    row.locator("[data-action=rename]").click()
    page.fill("#rename-disk", "store")
    page.click("#rename-disk-yes")
    expect(page.locator("#disk-notice")).to_have_text("data is now called store.")
    row = page.locator("#disks tr[data-disk=store]")
    row.locator("[data-action=extend]").click()
    expect(page.locator("#extend-disk")).to_have_value("3")
    page.fill("#extend-disk", "2")  # the same size: a disk only grows
    page.click("#extend-disk-yes")
    expect(page.locator("#extend-disk-error")).to_have_text(
        "Write a whole number of GiB, 3 or more: a disk only grows."
    )
    page.fill("#extend-disk", "3")
    expect(page.locator('dialog [data-resource="cyclades.disk"]')).to_contain_text(
        "22 GiB used + 1 GiB new"
    )
    page.click("#extend-disk-yes")
    expect(page.locator("#disk-notice")).to_have_text("store now has 3 GiB.")
    expect(row).to_contain_text("3 GiB")
    assert volumes(client)["store"]["size"] == 3

    row.locator("[data-action=snapshot]").click()
    expect(page.locator("#snapshot-disk")).to_have_value("store-snapshot-1")
    page.click("#snapshot-disk-yes")
    notice = page.locator("#disk-notice")
    expect(notice).to_contain_text("Took the snapshot store-snapshot-1 of store.")
    expect(notice).to_contain_text("Your images")
    snap = page.locator("#snapshots tr[data-snapshot=store-snapshot-1]")
    expect(snap.locator(".status")).to_have_text("Ready")
    expect(snap).to_contain_text("store")
    page.screenshot(path=str(screenshots / "disks-snapshot.png"), full_page=True)
    (snapshot,) = client.get(f"{CINDER}/snapshots/detail").json()["snapshots"]
    assert snapshot["volume_id"] == volumes(client)["store"]["id"]
    image = client.get(f"/image/v2/images/{snapshot['id']}").json()
    assert (image["name"], image["status"]) == ("store-snapshot-1", "active")

    snap.locator("[data-action=new-disk]").click()
    expect(page.locator("input[name=disk-source][value=snapshot]")).to_be_checked()
    expect(page.locator("#disk-snapshot")).to_have_value(snapshot["id"])
    expect(page.locator("#disk-size")).to_have_value("3")
    page.fill("#disk-size", "2")  # smaller than the snapshot
    page.fill("#disk-name", "copy")
    page.click("#disk-submit")
    expect(page.locator("#disk-size-error")).to_have_text("Write a whole number of GiB, 3 or more.")
    page.fill("#disk-size", "4")
    page.click("#disk-submit")
    expect(page.locator("#disk-notice")).to_have_text("Created the disk copy.")
    copy = page.locator("#disks tr[data-disk=copy]")
    expect(copy).to_contain_text("4 GiB")
    expect(copy).to_contain_text("Yes")  # bootable: it came from a snapshot
    made = volumes(client)["copy"]
    assert (made["snapshot_id"], made["size"]) == (snapshot["id"], 4)

    copy.locator("[data-action=delete]").click()
    expect(page.locator("dialog.confirm")).to_contain_text("Delete the disk copy?")
    page.get_by_role("button", name="Keep it").click()
    expect(copy).to_be_visible()
    copy.locator("[data-action=delete]").click()
    page.click("#ask-yes")
    expect(page.locator("#disk-notice")).to_have_text("Deleted the disk copy.")
    expect(copy).to_have_count(0)
    snap.locator("[data-action=delete]").click()
    page.click("#ask-yes")
    expect(page.locator("#disk-notice")).to_have_text("Deleted the snapshot store-snapshot-1.")
    expect(page.locator("#no-snapshots")).to_be_visible()
    row.locator("[data-action=delete]").click()
    page.click("#ask-yes")
    expect(page.locator("#no-disks")).to_be_visible()
    assert volumes(client) == {}
    assert client.get(f"{CINDER}/snapshots").json()["snapshots"] == []


def test_snapshot_of_a_machine_booted_from_a_disk(page: Page, cloud: Server, screenshots: Path):
    client = api(cloud, page.person)  # type: ignore[attr-defined]
    server = machine_on_a_disk(cloud, client, "bfv-1")
    page.goto(f"{cloud.url}/ui/#/machines/{server}")
    (root,) = volumes(client).values()
    boot = page.locator("#machine-disks tbody tr")
    expect(boot).to_contain_text("/dev/vda (boot disk)")
    expect(boot.locator("[data-action=detach]")).to_have_count(0)  # it boots the machine
    # its size shows the boot disk it has (the 1 GiB volume), not the flavor's disk
    expect(page.locator("#machine-size")).to_contain_text("1 GiB disk")
    expect(page.locator("#no-snapshot")).to_have_count(0)
    page.click("#snapshot-machine")
    expect(page.locator("dialog.confirm")).to_contain_text("Makes an image of bfv-1's boot disk")
    expect(page.locator("#image-name")).to_have_value("bfv-1-image")
    page.fill("#image-name", "golden")
    page.click("#image-name-yes")
    notice = page.locator("#machine-notice")
    expect(notice).to_contain_text("Made the image golden of bfv-1's boot disk.")
    expect(notice).to_contain_text("find it on Images under “Your images”")
    page.screenshot(path=str(screenshots / "machine-snapshot.png"), full_page=True)
    images = client.get("/image/v2/images", params={"name": "golden"}).json()["images"]
    assert [(i["status"], i["volume_id"]) for i in images] == [("active", root["id"])]

    page.click("#snapshot-machine")  # the same name again: the API's reason
    page.fill("#image-name", "golden")
    page.click("#image-name-yes")
    expect(page.locator("#failure")).to_contain_text("A snapshot of bfv-1 did not work:")

    page.click("nav >> text=Images")
    expect(page.locator("[data-image]", has_text="golden")).to_be_visible()

    page.click("nav >> text=Disks")
    row = page.locator(f"#disks tr[data-id='{root['id']}']")
    expect(row.locator(".attached-to")).to_have_text("bfv-1 (boots it)")
    expect(row.locator("[data-action=detach]")).to_have_count(0)
    row.locator("[data-action=delete]").click()
    expect(page.locator("#refusal-text")).to_contain_text("is the disk bfv-1 boots from")
    page.click("dialog.confirm >> text=Close")
    snap = page.locator("#snapshots tr[data-snapshot=golden]")
    expect(snap.locator("[data-action=start]")).to_have_attribute(
        "href", f"#/machines/new/{images[0]['id']}"
    )


def test_another_user_does_not_see_my_disks(
    page: Page, browser: Any, cloud: Server, request: pytest.FixtureRequest
):
    client = api(cloud, page.person)  # type: ignore[attr-defined]
    made = client.post(f"{CINDER}/volumes", json={"volume": {"name": "secret-disk", "size": 1}})
    made.raise_for_status()
    secret = made.json()["volume"]["id"]
    client.post(
        f"{CINDER}/snapshots", json={"snapshot": {"volume_id": secret, "name": "secret-snap"}}
    ).raise_for_status()
    page.click("nav >> text=Disks")
    expect(page.locator("#disks tr[data-disk=secret-disk]")).to_be_visible()

    other = person_for(cloud, request, "-other")
    errors: list[str] = []
    theirs = log_in(browser, cloud, other, errors)
    their_api = api(cloud, other)
    theirs_server = machine(cloud, their_api, "mine-1")
    theirs.click("nav >> text=Disks")
    expect(theirs.locator("#no-disks")).to_be_visible()
    expect(theirs.locator("#no-snapshots")).to_be_visible()
    expect(theirs.locator("main")).not_to_contain_text("secret")
    theirs.goto(f"{cloud.url}/ui/#/machines/{theirs_server}")
    theirs.click("#attach-disk-open")
    expect(theirs.locator("dialog.confirm")).to_contain_text("You have no free disk.")
    # and through the API, as an attacker would: not found
    assert their_api.get(f"{CINDER}/volumes/{secret}").status_code == 404
    attach = their_api.post(
        f"/compute/v2.1/servers/{theirs_server}/os-volume_attachments",
        json={"volumeAttachment": {"volumeId": secret}},
    )
    assert attach.status_code == 404
    theirs.context.close()
    assert not errors, errors


def test_quota_refusals_name_the_resource(page: Page, cloud: Server):
    client = api(cloud, page.person)  # type: ignore[attr-defined]
    page.click("nav >> text=Disks")
    page.click("#new-disk")
    page.fill("#disk-size", "500")  # the default quota is 200 GiB
    expect(page.locator("#disk-blocked")).to_have_text(
        "Not enough virtual disk space in Personal project: this needs 500 GiB, "
        "and 200 GiB is left."
    )
    expect(page.locator("#disk-submit")).to_be_disabled()
    page.fill("#disk-size", "150")
    expect(page.locator("#disk-submit")).to_be_enabled()
    # another client takes 100 GiB meanwhile: the API's 413, in words
    client.post(
        f"{CINDER}/volumes", json={"volume": {"name": "elsewhere", "size": 100}}
    ).raise_for_status()
    page.fill("#disk-name", "big")
    page.click("#disk-submit")
    expect(page.locator("#disk-form-failure")).to_have_text(
        "The disk big was not created: Not enough quota for virtual disk space in Personal "
        "project: this needs 150 GiB, 100 GiB of 200 GiB is in use, so 100 GiB is left."
    )
    # the form now shows the quota as it is
    expect(page.locator('.form-side [data-resource="cyclades.disk"]')).to_contain_text(
        "100 GiB used + 150 GiB new, of 200 GiB"
    )
    assert set(volumes(client)) == {"elsewhere"}
    page.click("form.disk-form >> text=Cancel")
    page.locator("tr[data-disk=elsewhere] [data-action=extend]").click()
    page.fill("#extend-disk", "250")
    page.click("#extend-disk-yes")
    expect(page.locator("#extend-disk-error")).to_have_text(
        "Not enough virtual disk space in Personal project: this needs 150 GiB, "
        "and 100 GiB is left."
    )


def test_disks_in_greek_and_accessible(page: Page, cloud: Server, screenshots: Path):
    client = api(cloud, page.person)  # type: ignore[attr-defined]
    web = machine(cloud, client, "web-1")
    made = client.post(f"{CINDER}/volumes", json={"volume": {"name": "data", "size": 2}})
    made.raise_for_status()
    data = made.json()["volume"]["id"]
    client.post(
        f"{CINDER}/snapshots", json={"snapshot": {"volume_id": data, "name": "data-monday"}}
    ).raise_for_status()
    client.post(
        f"/compute/v2.1/servers/{web}/os-volume_attachments",
        json={"volumeAttachment": {"volumeId": data}},
    ).raise_for_status()
    client.post(f"{CINDER}/volumes", json={"volume": {"name": "spare", "size": 1}})
    spared = ["Ada Lovelace", page.person.email, "web-1", "data-monday", "data", "spare"]  # type: ignore[attr-defined]

    page.click("nav >> text=Disks")
    expect(page.locator("#disks tr[data-disk=data] .status")).to_have_text("In use")
    assert violations(page) == []
    page.screenshot(path=str(screenshots / "disks.png"), full_page=True)

    page.select_option("#language", "el")
    expect(page.locator("main h1")).to_have_text("Δίσκοι")
    expect(page.locator("#disks tr[data-disk=data] .status")).to_have_text("Σε χρήση")
    expect(page.locator("#disks tr[data-disk=spare] .status")).to_have_text("Ελεύθερος")
    expect(page.locator("#snapshots tr[data-snapshot=data-monday] .status")).to_have_text("Έτοιμο")
    assert english_left(page, spared) == []
    assert violations(page) == []
    page.screenshot(path=str(screenshots / "el-disks.png"), full_page=True)

    page.locator("#disks tr[data-disk=data] [data-action=delete]").click()
    expect(page.locator("#refusal-text")).to_have_text(
        "Ο data είναι συνδεδεμένος με τη web-1. Αποσυνδέστε τον πρώτα· μετά διαγράφεται."  # noqa: RUF001
    )
    assert english_left(page, spared) == []
    page.keyboard.press("Escape")
    page.locator("#disks tr[data-disk=spare] [data-action=extend]").click()
    assert english_left(page, spared) == []
    assert violations(page) == []
    page.keyboard.press("Escape")

    page.click("#new-disk")
    page.click("input[name=disk-source][value=image]")
    expect(page.locator("#disk-image")).to_contain_text("Debian 12")
    assert english_left(page, [*spared, "Debian 12"]) == []
    assert violations(page) == []
    page.screenshot(path=str(screenshots / "el-disks-new.png"), full_page=True)

    page.goto(f"{cloud.url}/ui/#/machines/{web}")
    expect(page.locator("#machine-disks tr[data-disk=data]")).to_contain_text("/dev/vdb")
    own = "Η web-1 λειτουργεί στον δικό της δίσκο"  # noqa: RUF001
    expect(page.locator("#no-snapshot")).to_contain_text(own)
    expect(page.locator("p.loading")).to_have_count(0)
    assert english_left(page, [*spared, "Debian 12"]) == []
    assert violations(page) == []
    page.screenshot(path=str(screenshots / "el-machine-disks.png"), full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    page.click("nav >> text=Δίσκοι")
    expect(page.locator("#disks tr[data-disk=data]")).to_be_visible()
    wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"the page is {wide}px wider than the phone"
    page.screenshot(path=str(screenshots / "el-disks-phone.png"), full_page=True)
