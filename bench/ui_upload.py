"""Browser upload of a new 1 GiB file against ``nf file upload``, on the same machine.

Starts ``nefos up`` (SQLite, file block store) on a fresh data directory and makes one
container. Each run writes two new files of random bytes (never seen by the store, so
every block is sent), then uploads one through the Files page in Chromium (the block
protocol of ``blocks.js``: SHA-256 with WebCrypto, the hashmap, the missing blocks) and
the other with ``nf file upload``, alternately, timing each from the start until the
object exists. Prints each run, the medians, and the ratio browser/nf pair by pair.

    python bench/ui_upload.py [--mib 1024] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ui_cloud import Cloud, launch, load_average, logged_in_state, running_cloud

NF = str(Path(sys.executable).with_name("nf"))
CHUNK = 64 << 20


def new_file(path: Path, mib: int) -> None:
    with path.open("wb") as out:
        left = mib << 20
        while left:
            out.write(os.urandom(min(CHUNK, left)))
            left -= min(CHUNK, left)


def by_browser(browser: object, state: dict, cloud: Cloud, path: Path) -> float:
    context = browser.new_context(storage_state=state)  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(f"{cloud.url}/ui/#/files/bench")
    page.wait_for_selector("#upload")
    started = time.perf_counter()
    page.set_input_files("#file-picker", str(path))
    page.wait_for_selector(
        f'li.upload[data-name="{path.name}"][data-state="done"]', state="attached", timeout=900_000
    )
    took = time.perf_counter() - started
    failed = page.locator("li.upload-failed").count()
    context.close()
    assert not failed, "the browser's upload failed"
    return took


def by_nf(cloud: Cloud, path: Path) -> float:
    env = {**os.environ, "NF_URL": cloud.url, "NF_TOKEN": cloud.token, "NF_CONFIG": "/dev/null"}
    started = time.perf_counter()
    command = [NF, "file", "upload", "--no-progress", str(path), "bench/"]
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    config = f'[quota_defaults]\n"pithos.diskspace" = {(args.mib << 20) * args.runs * 3}\n'
    with tempfile.TemporaryDirectory() as scratch, running_cloud(Path(scratch), config) as cloud:
        auth = {"X-Auth-Token": cloud.token}
        httpx.put(
            f"{cloud.url}/object-store/v1/{cloud.uuid}/bench", headers=auth
        ).raise_for_status()
        with sync_playwright() as playwright:
            browser = launch(playwright)
            state = logged_in_state(browser, cloud)
            print(f"load average before: {load_average()}")
            pairs = []
            for run in range(args.runs):
                mine, theirs = Path(scratch) / f"browser-{run}.bin", Path(scratch) / f"nf-{run}.bin"
                new_file(mine, args.mib)
                new_file(theirs, args.mib)
                seconds = (by_browser(browser, state, cloud, mine), by_nf(cloud, theirs))
                for name, path in (("browser", mine), ("nf", theirs)):
                    head = httpx.head(f"{cloud.url}/object-store/v1/{cloud.uuid}/bench/{path.name}",
                                      headers=auth)  # fmt: skip
                    assert int(head.headers["Content-Length"]) == args.mib << 20, name
                    path.unlink()
                pairs.append(seconds)
                print(
                    f"run {run + 1}: browser {seconds[0]:.1f} s "
                    f"({args.mib / seconds[0]:.0f} MiB/s), "
                    f"nf {seconds[1]:.1f} s ({args.mib / seconds[1]:.0f} MiB/s), "
                    f"ratio {seconds[0] / seconds[1]:.2f}",
                    flush=True,
                )
            browser.close()
        rate = [args.mib / b for b, _ in pairs], [args.mib / n for _, n in pairs]
        print(
            f"median: browser {statistics.median(rate[0]):.0f} MiB/s, nf "
            f"{statistics.median(rate[1]):.0f} MiB/s, time ratio browser/nf "
            f"{statistics.median(b / n for b, n in pairs):.2f}"
        )
        print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
