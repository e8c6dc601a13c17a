"""The account page in the UI (``#/account``): profile and logins, the API token copied
to the clipboard and renewed (the old one then fails a real API call, the new one
works, the page goes on), and clouds.yaml, openrc and kamakirc downloads that hold
the token. The session calls behind it refuse other sites and missing CSRF headers;
the server-rendered ``/ui/account`` still works."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server
from tests.ui.people import EXPECT_MS, log_in, new_person

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect

expect.set_options(timeout=EXPECT_MS)


def servers(server: Server, token: str) -> int:
    """A real API call with ``token``: its status."""
    return httpx.get(
        f"{server.url}/compute/v2.1/servers", headers={"X-Auth-Token": token}
    ).status_code


def test_account_page(browser: Any, server: Server, screenshots: Path, tmp_path: Path):
    person = new_person(server, "account-page@example.org")
    errors: list[str] = []
    page = log_in(browser, server, person, errors)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page.click("nav[aria-label=Main] >> text=Account")
    expect(page).to_have_url(re.compile(r"/ui/#/account$"))
    profile = page.locator("#profile")
    expect(profile).to_contain_text("Ada Lovelace")
    expect(profile).to_contain_text(person.email)
    expect(page.locator("#uuid")).to_have_text(person.uuid)
    expect(page.locator("#logins")).to_contain_text(f"Password ({person.email})")
    token = page.locator("#api-token")
    expect(token).to_have_value(person.token)
    expect(page.locator("#token-expires")).to_contain_text("Valid until")
    page.screenshot(path=str(screenshots / "account.png"), full_page=True)

    page.click("#copy-token")
    expect(page.locator("#copy-token")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == person.token
    assert servers(server, person.token) == 200

    # renew: asked first; "keep" keeps it
    page.click("#renew-token")
    expect(page.locator("#renew-question")).to_contain_text("stops working at once")
    page.click("text=Keep the current one")
    expect(token).to_have_value(person.token)
    page.click("#renew-token")
    page.click("#renew-yes")
    expect(page.locator("#token-renewed")).to_be_visible()
    expect(token).not_to_have_value(person.token)
    renewed = token.input_value()
    assert servers(server, person.token) == 401  # the old one stops at once
    assert servers(server, renewed) == 200
    page.screenshot(path=str(screenshots / "account-renewed.png"), full_page=True)

    # the downloads hold the new token, and each works with the API as it says
    files = {}
    for name in ("clouds", "openrc", "kamakirc"):
        with page.expect_download() as started:
            page.click(f"#download-{name}")
        saved = tmp_path / started.value.suggested_filename
        started.value.save_as(saved)
        files[name] = saved.read_text()
    assert started.value.suggested_filename == "kamakirc"
    assert f'token: "{renewed}"' in files["clouds"]
    auth_url = re.search(r'auth_url: "([^"]+)"', files["clouds"]).group(1).rstrip("/")
    catalog = httpx.get(f"{auth_url}/auth/catalog", headers={"X-Auth-Token": renewed})
    assert catalog.status_code == 200, catalog.text
    assert f"OS_TOKEN={renewed}" in files["openrc"].replace("'", "").replace('"', "")
    assert f"token = {renewed}" in files["kamakirc"]

    # the page goes on: it runs on its own session token, not the API token
    page.click("nav[aria-label=Main] >> text=Machines")
    expect(page.locator("main h1")).to_have_text("Machines")
    expect(page.locator("p.loading")).to_have_count(0)

    # the server-rendered page still works, and shows the same token
    page.goto(f"{server.url}/ui/account")
    expect(page.locator("#token")).to_have_text(renewed)

    # the session calls: the page's own origin and CSRF header only
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    csrf = page.goto(f"{server.url}/ui/").text()
    csrf = re.search(r'name="nefos-csrf" content="([^"]+)"', csrf).group(1)
    with httpx.Client(base_url=server.url, cookies=cookies) as session:
        assert session.get("/ui/session/account").status_code == 403
        assert session.post("/ui/session/api-token").status_code == 403
        foreign = {"X-CSRF-Token": csrf, "Origin": "https://evil.example"}
        assert session.post("/ui/session/api-token", headers=foreign).status_code == 403
        cross = {"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"}
        assert session.get("/ui/session/account", headers=cross).status_code == 403
        shown = session.get("/ui/session/account", headers={"X-CSRF-Token": csrf})
        assert shown.status_code == 200
        assert shown.json()["api_token"]["token"] == renewed
    assert servers(server, renewed) == 200  # none of the refused calls renewed it
    with httpx.Client(base_url=server.url) as stranger:  # no session at all
        refused = stranger.get("/ui/session/account", headers={"X-CSRF-Token": csrf})
        assert refused.status_code in (401, 403)
        assert "token" not in refused.text.lower() or "csrf" in refused.text.lower()
    page.context.close()
    assert not errors, errors
