"""Issue 21's upload test, at full size: a 100 MiB file uploaded from the Files page by
the block protocol, with its progress bar; the connection cut at half (every block
request the browser sends is aborted, as a dropped network does); the page reloaded
and the same file uploaded again, which sends only the blocks the store still lacks;
the object's hash (X-Object-Hash, the Merkle root of its hashmap) equals the file's.
Then a few bytes changed in one block and the file uploaded once more: exactly one
block goes, as the page says and as the block requests counted here say.

The times of each phase are printed (``-s`` shows them)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from nefos.blocks import hashmap, merkle
from tests.conftest import Server
from tests.ui.people import EXPECT_MS, log_in, new_person
from tests.ui.test_files import BLOCK, Store

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Page, Request, Route, expect

expect.set_options(timeout=EXPECT_MS)
SIZE = 100 * 1024 * 1024
BLOCKS = SIZE // BLOCK  # 25
CUT_AFTER = BLOCKS // 2  # blocks stored before the connection drops


def is_block(request: Request) -> bool:
    return request.method == "POST" and request.url.endswith("/big?update")


def newest(page: Page) -> Any:
    return page.locator("li.upload[data-name='big.bin']").first


def test_100_mib_cut_at_half_and_resumed(
    browser: Any, server: Server, screenshots: Path, tmp_path: Path
):
    person = new_person(server, "upload-100mib@example.org")
    store = Store(server, person)
    store.put("big")
    data = os.urandom(SIZE)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    errors: list[str] = []
    page = log_in(browser, server, person, errors)
    page.goto(f"{server.url}/ui/#/files/big")
    expect(page.locator("#upload")).to_be_visible()

    stored: list[str] = []  # blocks the store answered for
    sent: list[str] = []  # block requests the page made (aborted ones too)
    cut = {"on": False}

    def answered(response: Any) -> None:
        if is_block(response.request) and response.ok:
            stored.append(response.url)
            if len(stored) == CUT_AFTER:
                cut["on"] = True

    def network(route: Route) -> None:
        if cut["on"]:
            route.abort("internetdisconnected")
        else:
            route.continue_()

    page.on("response", answered)
    page.on("request", lambda r: sent.append(r.url) if is_block(r) else None)
    page.route(re.compile(r"/big\?update$"), network)

    started = time.monotonic()
    page.set_input_files("#file-picker", str(source))
    upload = newest(page)
    bar = upload.locator("progress")
    # the bar shows the checking (hashing) first, then the bytes sent
    expect(upload.locator(".upload-text")).to_contain_text("Sending", timeout=60_000)
    hashed = time.monotonic()
    deadline = time.monotonic() + 60
    while not cut["on"] and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert cut["on"], f"only {len(stored)} blocks were stored in a minute"
    halfway = time.monotonic()
    # the page retries the next block into a dead network, says so, and its bar stays
    expect(upload.locator(".upload-text")).to_have_text(
        re.compile(r"^Connection lost after (4[0-9]|5[0-9]) MiB of 100 MiB; trying again in \d+ s$")
    )
    value, most = float(bar.get_attribute("value")), float(bar.get_attribute("max"))
    assert most == SIZE and 0.4 < value / most < 0.6, (value, most)
    assert upload.get_attribute("data-state") == "running"
    page.screenshot(path=str(screenshots / "upload-cut-at-half.png"), full_page=True)
    assert len(stored) == CUT_AFTER  # the aborted ones reached nothing

    # back online, after a reload (the page forgot the upload): the same file again
    page.reload()
    page.unroute(re.compile(r"/big\?update$"))
    cut["on"] = False
    expect(page.locator("#upload")).to_be_visible()
    before = len(sent)
    resumed_at = time.monotonic()
    page.set_input_files("#file-picker", str(source))
    upload = newest(page)
    expect(upload).to_have_attribute("data-state", "done", timeout=60_000)
    resumed = time.monotonic()
    missing = BLOCKS - CUT_AFTER
    assert len(sent) - before == missing, (len(sent) - before, missing)
    expect(upload).to_have_attribute("data-sent", str(missing))
    expect(upload.locator(".upload-text")).to_have_text(
        f"Uploaded: {missing} of {BLOCKS} blocks sent, the rest was already stored"
    )
    page.screenshot(path=str(screenshots / "upload-resumed.png"), full_page=True)
    head = store.get("big/big.bin")
    assert int(head.headers["content-length"]) == SIZE
    assert head.content == data
    assert head.headers["x-object-hash"] == merkle(hashmap(data))
    assert store.hashmap("big/big.bin") == hashmap(data)

    # a few bytes changed in one block: that block alone goes
    changed = bytearray(data)
    changed[7 * BLOCK + 1000 : 7 * BLOCK + 1016] = os.urandom(16)
    source.write_bytes(bytes(changed))
    before = len(sent)
    again_at = time.monotonic()
    page.set_input_files("#file-picker", str(source))
    upload = newest(page)
    expect(upload).to_have_attribute("data-state", "done", timeout=60_000)
    again = time.monotonic()
    assert len(sent) - before == 1
    assert sent[-1].endswith("/big?update")
    expect(upload).to_have_attribute("data-sent", "1")
    expect(upload.locator(".upload-text")).to_have_text(
        f"Uploaded: 1 of {BLOCKS} blocks sent, the rest was already stored"
    )
    head = store.get("big/big.bin")
    assert head.headers["x-object-hash"] == merkle(hashmap(bytes(changed)))
    assert head.content == bytes(changed)
    page.context.close()
    assert not errors, errors
    print(
        f"\n100 MiB: checked (hashed) after {hashed - started:.1f} s, half sent after "
        f"{halfway - started:.1f} s; resumed ({missing} blocks, hashing again) in "
        f"{resumed - resumed_at:.1f} s; one changed block in {again - again_at:.1f} s"
    )
