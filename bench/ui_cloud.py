"""A cloud for the UI benchmarks: ``nefos up`` on a fresh data directory, its admin's
credentials, and Debian's Chromium through Playwright (as ``tests/ui`` drives it).

Used by ``bench/ui_pages.py`` and ``bench/ui_upload.py``; not a benchmark itself.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

NEFOS = str(Path(sys.executable).with_name("nefos"))
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Cloud:
    url: str
    email: str
    password: str
    token: str
    uuid: str
    data_dir: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_cloud(scratch: Path, config: str = "") -> Iterator[Cloud]:
    """``nefos up`` with ``config`` as its nefos.toml; stopped (by its PID) on exit."""
    data_dir = scratch / "cloud"
    data_dir.mkdir()
    (data_dir / "nefos.toml").write_text(config)
    port = free_port()
    output = scratch / "nefos.out"
    env = {k: v for k, v in os.environ.items() if k not in ("NEFOS_DATA_DIR", "NEFOS_CONFIG")}
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [NEFOS, "up", "--data-dir", str(data_dir), "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/identity/v3", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        while "  token:" not in output.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        printed = dict(
            line.strip().split(":", 1)
            for line in output.read_text().splitlines()
            if line.startswith("  ") and ":" in line
        )
        yield Cloud(
            url=url,
            email=printed["e-mail"].strip(),
            password=printed["password"].strip(),
            token=printed["token"].strip(),
            uuid=printed["uuid"].strip(),
            data_dir=data_dir,
        )
    finally:
        process.terminate()
        process.wait(timeout=30)


def chromium() -> str:
    found = subprocess.run(
        [str(ROOT / "scripts" / "chromium.sh"), "path"], capture_output=True, text=True
    )
    if found.returncode != 0:
        sys.exit(f"no chromium: {found.stderr.strip()} (scripts/chromium.sh install)")
    return found.stdout.strip()


def launch(playwright: Any) -> Any:
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    return playwright.chromium.launch(executable_path=chromium(), args=args)


def logged_in_state(browser: Any, cloud: Cloud) -> dict[str, Any]:
    """The session cookie of a web login, for contexts that start with an empty cache."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{cloud.url}/ui/login")
    page.fill("#email", cloud.email)
    page.fill("#password", cloud.password)
    page.click("button[type=submit]")
    page.wait_for_selector(".project-quota", timeout=60_000)
    state = context.storage_state()
    context.close()
    return state


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
