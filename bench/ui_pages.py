"""First load of each UI page, cold, with 1,000 servers and 10,000 files (issue 21).

Starts ``nefos up`` (embedded backend, SQLite) on a fresh data directory, gives its
admin 1,000 ACTIVE servers (created through the Compute API) and a container of 10,000
files (one ``extract-archive`` tar), logs in once through the web login, then opens
each page ``--runs`` times in a new browser context that has the session cookie and an
empty HTTP cache. For each load it reads Chromium's performance timeline:

- first-contentful-paint (the page's skeleton: top bar and heading);
- "main content": when the page's main list or figure is in the DOM (a
  MutationObserver added before any page script runs, so no polling delay);
- bytes shipped: the navigation's and every resource's ``transferSize`` (headers and
  body as they crossed the wire), and the number of requests, and any URL fetched
  twice in one load.

    python bench/ui_pages.py [--servers 1000] [--files 10000] [--runs 5]

Needs Debian's Chromium (``scripts/chromium.sh install``) and Playwright for Python.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import io
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ui_cloud import Cloud, launch, load_average, logged_in_state, running_cloud

# Records when the selector first matches, from the first byte of the document on.
WATCH = """
window.__mainAt = null;
window.__watch = (selector) => {
  const look = () => {
    if (window.__mainAt === null && document.querySelector(selector)) {
      window.__mainAt = performance.now();
    }
  };
  new MutationObserver(look).observe(document, { subtree: true, childList: true });
  look();
};
"""

MEASURE = """() => {
  const paint = performance.getEntriesByName("first-contentful-paint")[0];
  const nav = performance.getEntriesByType("navigation")[0];
  const resources = performance.getEntriesByType("resource");
  const urls = resources.map((r) => r.name);
  const repeated = urls.filter((u, i) => urls.indexOf(u) !== i);
  return {
    fcp: paint ? paint.startTime : null,
    main: window.__mainAt,
    bytes: nav.transferSize + resources.reduce((sum, r) => sum + r.transferSize, 0),
    requests: 1 + resources.length,
    repeated,
  };
}"""


def build(cloud: Cloud, servers: int, files: int) -> tuple[str, str]:
    """The servers and the files; a server's id and the container's name."""
    auth = {"X-Auth-Token": cloud.token}
    with httpx.Client(base_url=cloud.url, headers=auth, timeout=120) as http:
        image = http.post(
            "/image/v2/images",
            json={
                "name": "Debian 12",
                "disk_format": "raw",
                "container_format": "bare",
                "visibility": "public",
                "os_distro": "debian",
            },
        ).json()["id"]
        http.put(
            f"/image/v2/images/{image}/file",
            content=b"\0" * 65536,
            headers={"Content-Type": "application/octet-stream"},
        ).raise_for_status()
        body = {"server": {"name": "web", "imageRef": image, "flavorRef": "1"}}

        def create(index: int) -> int:
            with httpx.Client(base_url=cloud.url, headers=auth, timeout=120) as own:
                named = {"server": {**body["server"], "name": f"web-{index:04d}"}}
                return own.post("/compute/v2.1/servers", json=named).status_code

        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(create, range(servers)))
        assert codes.count(202) == servers, {c: codes.count(c) for c in set(codes)}
        while True:
            listed = http.get("/compute/v2.1/servers/detail").json()["servers"]
            if all(s["status"] == "ACTIVE" for s in listed):
                break
            time.sleep(0.5)
        print(f"{servers} servers ACTIVE in {time.perf_counter() - started:.0f} s", flush=True)
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            for index in range(files):
                data = f"file {index}\n".encode()
                member = tarfile.TarInfo(f"many/notes-{index:05d}.txt")
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
        started = time.perf_counter()
        store = f"/object-store/v1/{cloud.uuid}"
        made = http.put(f"{store}?extract-archive=tar", content=archive.getvalue())
        made.raise_for_status()
        count = http.head(f"{store}/many").headers["X-Container-Object-Count"]
        assert int(count) == files, count
        print(f"{files} files stored in {time.perf_counter() - started:.0f} s", flush=True)
        return listed[0]["id"], "many"


def pages(server: str, container: str) -> list[tuple[str, str, str]]:
    """(name, path, the selector of its main content)."""
    return [
        ("dashboard", "/ui/#/", ".project-quota"),
        ("machines (1,000)", "/ui/#/machines", "tr[data-name]"),
        ("new machine", "/ui/#/machines/new", "#create:not([disabled])"),
        ("a machine", f"/ui/#/machines/{server}", ".facts"),
        ("files: containers", "/ui/#/files", "tr[data-name]"),
        ("files: 10,000 in one folder", f"/ui/#/files/{container}", "tr[data-name]"),
        ("images", "/ui/#/images", "[data-image]"),
        ("projects", "/ui/#/projects", "#mine-title"),
        ("usage", "/ui/#/usage", ".usage-chart canvas"),
        ("account (no script)", "/ui/account", "main"),
    ]


def measure(browser: Any, state: dict[str, Any], url: str, selector: str) -> dict[str, Any]:
    context = browser.new_context(storage_state=state, viewport={"width": 1280, "height": 900})
    context.add_init_script(WATCH + f"window.__watch({selector!r});")
    page = context.new_page()
    page.goto(url, wait_until="load")
    page.wait_for_selector(selector, state="attached", timeout=120_000)
    page.wait_for_load_state("networkidle")
    found = page.evaluate(MEASURE)
    context.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    n = args.servers + 10  # room for one more: the new machine form can create
    config = (
        "[compute]\nembedded_delay = 0.0\nreconcile_seconds = 0\n"
        f'[quota_defaults]\n"cyclades.vm" = {n}\n"cyclades.total_cpu" = {n}\n'
        f'"cyclades.cpu" = {n}\n"cyclades.total_ram" = {n << 30}\n"cyclades.ram" = {n << 30}\n'
        f'"cyclades.disk" = {n * 20 << 30}\n'
    )
    with tempfile.TemporaryDirectory() as scratch, running_cloud(Path(scratch), config) as cloud:
        server, container = build(cloud, args.servers, args.files)
        with sync_playwright() as playwright:
            browser = launch(playwright)
            state = logged_in_state(browser, cloud)
            print(f"load average before: {load_average()}")
            print(
                "| page | first contentful paint | main content | bytes | requests |"
                "\n|---|---|---|---|---|"
            )
            for name, path, selector in pages(server, container):
                runs = [
                    measure(browser, state, cloud.url + path, selector) for _ in range(args.runs)
                ]
                fcp = statistics.median(r["fcp"] for r in runs if r["fcp"] is not None)
                main_ms = statistics.median(r["main"] for r in runs if r["main"] is not None)
                size = statistics.median(r["bytes"] for r in runs)
                requests = statistics.median(r["requests"] for r in runs)
                repeated = sorted({u for r in runs for u in r["repeated"]})
                print(
                    f"| {name} | {fcp:.0f} ms | {main_ms:.0f} ms | {size / 1024:.0f} KiB "
                    f"| {requests:.0f} |" + (f" repeated: {repeated}" if repeated else ""),
                    flush=True,
                )
            browser.close()
            print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
