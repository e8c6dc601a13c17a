"""The Files page (Pithos's file manager) in Chromium against ``nefos up``: containers,
folders, uploads by the block protocol, downloads, moves, versions, sharing and a long
listing. What the page shows is checked against what the object store holds."""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server
from tests.ui.people import EXPECT_MS, Person, log_in, new_person

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Page, expect

expect.set_options(timeout=EXPECT_MS)
BLOCK = 4 * 1024 * 1024


class Store:
    """The object store as another client of the same user sees it (Pithos dialect)."""

    def __init__(self, server: Server, person: Person) -> None:
        self.base = f"{server.url}/pithos/object-store/v1/{person.uuid}"
        self.headers = {"X-Auth-Token": person.token}

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"

    def get(self, path: str, **params: str) -> httpx.Response:
        return httpx.get(self.url(path), headers=self.headers, params=params, timeout=30)

    def put(self, path: str, data: bytes = b"", **headers: str) -> None:
        answer = httpx.put(
            self.url(path), headers={**self.headers, **headers}, content=data, timeout=30
        )
        assert answer.status_code in (201, 202), answer.text

    def hashmap(self, path: str) -> list[str]:
        return self.get(path, hashmap="", format="json").json()["hashes"]


def block_hashes(data: bytes) -> list[str]:
    return [
        hashlib.sha256(data[i : i + BLOCK].rstrip(b"\0")).hexdigest()
        for i in range(0, len(data), BLOCK)
    ]


def count_block_posts(page: Page) -> list[str]:
    """Every block upload the page sends (POST <container>?update)."""
    posts: list[str] = []
    page.on(
        "request",
        lambda r: posts.append(r.url) if r.method == "POST" and r.url.endswith("?update") else None,
    )
    return posts


@pytest.fixture
def person(server: Server, request: pytest.FixtureRequest) -> Person:
    return new_person(server, f"{request.node.name.replace('_', '-')[:40]}@example.org")


@pytest.fixture
def page(browser: Any, server: Server, person: Person) -> Iterator[Page]:
    errors: list[str] = []
    opened = log_in(browser, server, person, errors)
    yield opened
    opened.context.close()
    assert not errors, errors  # no script failed on any page


def row(page: Page, name: str) -> Any:
    return page.locator(f'tr[data-name="{name}"]')


def upload_state(page: Page, name: str) -> Any:
    return page.locator(f'.upload[data-name="{name}"]').first


def pick(page: Page, name: str, data: bytes) -> None:
    page.set_input_files(
        "#file-picker",
        files=[{"name": name, "mimeType": "application/octet-stream", "buffer": data}],
    )


def new_container(page: Page, name: str) -> None:
    page.click('nav[aria-label="Main"] >> text=Files')
    page.click("#new-container")
    page.fill("#new-name", name)
    page.get_by_role("button", name="Create container").click()
    page.click(f'.containers tr[data-name="{name}"] a')
    expect(page.locator('.breadcrumb [aria-current="page"]')).to_have_text(name)


def test_folders_uploads_download_rename_delete(
    page: Page, server: Server, person: Person, screenshots: Path
):
    store = Store(server, person)
    posts = count_block_posts(page)
    new_container(page, "documents")
    page.click("#new-folder")
    page.fill("#new-name", "reports")
    page.get_by_role("button", name="Create folder").click()
    page.click('tr[data-name="reports"] a')
    expect(page.locator(".breadcrumb li")).to_have_text(["My containers", "documents", "reports"])
    expect(page.locator(".empty-folder")).to_contain_text("This folder is empty")

    pick(page, "hello.txt", b"hello, world\n")
    big = bytes(range(256)) * (5 * 1024 * 1024 // 256) + b"tail"  # two blocks
    pick(page, "big.bin", big)
    expect(upload_state(page, "reports/big.bin")).to_have_attribute("data-state", "done")
    expect(row(page, "reports/hello.txt")).to_contain_text("13 bytes")
    expect(row(page, "reports/big.bin")).to_contain_text("5 MiB")
    assert store.get("documents/reports/hello.txt").content == b"hello, world\n"
    assert store.hashmap("documents/reports/big.bin") == block_hashes(big)
    assert len(posts) == 2  # both blocks, each once
    page.screenshot(path=str(screenshots / "files.png"), full_page=True)

    # The same file again: the hashmap is answered at once, no block is sent.
    pick(page, "big.bin", big)
    expect(upload_state(page, "reports/big.bin")).to_have_attribute("data-sent", "0")
    assert len(posts) == 2

    # An upload cut short (its first block already stored) resumes with the rest only.
    resumed = b"\x01" * BLOCK + b"\x02" * BLOCK + b"\x03" * 1000
    sent = httpx.post(
        store.url("documents?update"),
        headers={**store.headers, "Content-Type": "application/octet-stream"},
        content=resumed[:BLOCK],
    )
    assert sent.status_code == 202, sent.text
    pick(page, "resumed.bin", resumed)
    expect(upload_state(page, "reports/resumed.bin")).to_have_attribute("data-sent", "2")
    expect(upload_state(page, "reports/resumed.bin")).to_contain_text("2 of 3 blocks sent")
    assert len(posts) == 4
    assert store.get("documents/reports/resumed.bin").content == resumed

    # Drag and drop a file onto the page.
    page.evaluate(
        """() => {
        const data = new DataTransfer();
        data.items.add(new File(["dropped here"], "dropped.txt", {type: "text/plain"}));
        const pane = document.querySelector(".file-pane");
        const event = {dataTransfer: data, bubbles: true, cancelable: true};
        pane.dispatchEvent(new DragEvent("dragover", event));
        pane.dispatchEvent(new DragEvent("drop", event));
    }"""
    )
    expect(row(page, "reports/dropped.txt")).to_contain_text("12 bytes")
    assert store.get("documents/reports/dropped.txt").content == b"dropped here"

    # Download: the same bytes, and no token in any URL the page made.
    row(page, "reports/big.bin").locator("button.name").click()
    with page.expect_download() as download:
        page.click("#download")
    assert Path(download.value.path()).read_bytes() == big
    assert download.value.suggested_filename == "big.bin"
    assert person.token not in download.value.url

    # Rename.
    row(page, "reports/hello.txt").locator("button.name").click()
    page.click("#rename")
    page.fill("#to-name", "reports/greeting.txt")
    page.get_by_role("button", name="Move", exact=True).click()
    expect(row(page, "reports/greeting.txt")).to_be_visible()
    expect(row(page, "reports/hello.txt")).to_have_count(0)
    assert store.get("documents/reports/greeting.txt").content == b"hello, world\n"

    # Delete asks first.
    row(page, "reports/greeting.txt").locator("button.name").click()
    page.click("#delete")
    dialog = page.locator("dialog.confirm")
    expect(dialog).to_contain_text("cannot be undone")
    page.screenshot(path=str(screenshots / "files-delete.png"))
    dialog.get_by_role("button", name="Cancel").click()
    expect(row(page, "reports/greeting.txt")).to_be_visible()
    page.click("#delete")
    page.get_by_role("button", name="Delete greeting.txt").click()
    expect(row(page, "reports/greeting.txt")).to_have_count(0)
    assert store.get("documents/reports/greeting.txt").status_code == 404


def test_versions_and_restore(page: Page, server: Server, person: Person, screenshots: Path):
    store = Store(server, person)
    store.put("notes")
    store.put("notes/todo.txt", b"first draft")
    store.put("notes/todo.txt", b"second draft")
    page.goto(f"{server.url}/ui/#/files/notes")
    row(page, "todo.txt").locator("button.name").click()
    page.click("#versions")
    versions = page.locator("dialog tr[data-version]")
    expect(versions).to_have_count(2)
    # A person counts versions 1, 2 from the oldest, not in Pithos's global serials.
    expect(versions.locator("td.ordinal")).to_have_text(["2 current", "1"])
    page.screenshot(path=str(screenshots / "files-versions.png"))
    versions.nth(1).locator('[data-action="restore"]').click()
    expect(page.locator("#restored")).to_contain_text("it is now the newest")
    expect(versions).to_have_count(3)
    expect(versions.locator("td.ordinal")).to_have_text(["3 current", "2", "1"])
    assert store.get("notes/todo.txt").content == b"first draft"


def test_sharing_and_public_link(
    page: Page, browser: Any, server: Server, person: Person, screenshots: Path
):
    store = Store(server, person)
    store.put("shared")
    store.put("shared/plan.txt", b"the plan")
    friend = new_person(server, "friend-of-sharing@example.org")
    page.goto(f"{server.url}/ui/#/files/shared")
    row(page, "plan.txt").locator("button.name").click()
    page.click("#share")
    page.fill("#share-read", friend.email)
    page.click("text=Save sharing")
    expect(page.locator("#sharing-saved")).to_be_visible()
    head = httpx.head(store.url("shared/plan.txt"), headers=store.headers)
    assert head.headers["x-object-sharing"] == f"read={friend.uuid}"

    page.check("#public")
    link = page.locator("#public-url")
    expect(link).to_have_value(re.compile(r"/public/\w+$"))
    page.screenshot(path=str(screenshots / "files-sharing.png"))
    public_url = link.input_value()
    assert httpx.get(public_url).content == b"the plan"  # no token
    page.uncheck("#public")
    expect(link).to_have_count(0)
    assert httpx.get(public_url).status_code == 404
    page.get_by_role("button", name="Close").click()

    # The friend sees it under "Shared with me", and may download it.
    errors: list[str] = []
    other = log_in(browser, server, friend, errors)
    other.click('nav[aria-label="Main"] >> text=Files')
    other.click("text=Shared with me")
    other.click(f'[data-account="{person.uuid}"] a')
    expect(other.locator(".breadcrumb")).to_contain_text(person.email)
    other.click('.containers tr[data-name="shared"] a')
    row(other, "plan.txt").locator("button.name").click()
    with other.expect_download() as download:
        other.click("#download")
    assert Path(download.value.path()).read_bytes() == b"the plan"
    other.screenshot(path=str(screenshots / "files-shared-with-me.png"), full_page=True)
    other.context.close()
    assert not errors, errors


def tar_of(names: range) -> bytes:
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for i in names:
            data = f"file {i}\n".encode()
            info = tarfile.TarInfo(f"file-{i:05d}.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive.getvalue()


def test_a_long_listing_scrolls(page: Page, server: Server, person: Person, screenshots: Path):
    store = Store(server, person)
    store.put("many")

    def extract(part: int) -> httpx.Response:
        return httpx.put(
            store.url("many?extract-archive=tar"),
            headers={**store.headers, "Accept": "application/json"},
            content=tar_of(range(part * 750, (part + 1) * 750)),
            timeout=120,
        )

    # 3,000 objects in four archives at once: the store writes each object on its own,
    # and four requests overlap their waits.
    with ThreadPoolExecutor(4) as pool:
        for made in pool.map(extract, range(4)):
            assert made.status_code == 200, made.text
            assert made.json()["Number Files Created"] == 750, made.text
    page.goto(f"{server.url}/ui/#/files/many")
    expect(page.locator("#count")).to_have_text(re.compile(r"^3,000 items ·"))
    drawn = page.locator(".files tbody tr:not(.spacer)").count()
    assert 0 < drawn < 100, drawn  # only what is in view, not 3,000 rows
    page.screenshot(path=str(screenshots / "files-long.png"), full_page=True)
    pane = page.locator(".file-pane")
    pane.evaluate("p => { p.scrollTop = p.scrollHeight; }")
    expect(row(page, "file-02999.txt")).to_be_visible()
    pane.evaluate("p => { p.scrollTop = p.scrollHeight / 2; }")
    expect(row(page, "file-01500.txt")).to_be_attached()
    assert page.locator(".files tbody tr:not(.spacer)").count() < 100
