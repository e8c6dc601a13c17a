"""The web UI in a real browser: Debian's Chromium driven by Playwright, one browser for
a module's tests, against a live ``nefos up`` (``tests/conftest.py``'s ``server``)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def chromium() -> str:
    """Debian's Chromium (scripts/chromium.sh installs it; ``make test`` runs that)."""
    found = subprocess.run(
        [str(ROOT / "scripts" / "chromium.sh"), "path"], capture_output=True, text=True
    )
    if found.returncode != 0:
        reason = found.stderr.strip() or "no chromium"
        if os.environ.get("CI") == "true":  # make test installs it: CI must have it
            pytest.fail(reason)
        pytest.skip(reason)
    return found.stdout.strip()


# One browser per module, not per session: while Playwright's sync API is open it marks
# its event loop as running in this thread, so no asyncio test or fixture can run until
# it closes. Launching Chromium costs about a second.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = chromium()
    with sync_api.sync_playwright() as playwright:
        # Chromium's sandbox refuses to start as root (CI's case); the pages are ours.
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        launched = playwright.chromium.launch(executable_path=executable, args=args)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the pages' screenshots go, for a reviewer (``NEFOS_UI_SCREENSHOTS`` to keep
    them elsewhere, e.g. as CI artifacts)."""
    wanted = os.environ.get("NEFOS_UI_SCREENSHOTS")
    folder = Path(wanted) if wanted else tmp_path_factory.mktemp("ui-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
