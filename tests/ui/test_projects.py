"""Projects in the browser: apply as a user, approve as an administrator in a browser of
their own, join, and see the quota grow on the dashboard; join another's project, ask to
join a moderated one, leave.

Chromium against ``nefos up``; each person is a browser context of one browser.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server
from tests.ui.people import EXPECT_MS, PASSWORD, Person, admin_of, log_in, new_person

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Page, expect

expect.set_options(timeout=EXPECT_MS)
GiB = 1 << 30


@pytest.fixture
def browse(browser: Any, server: Server) -> Iterator[Callable[[Person], Page]]:
    """Logged-in pages, each in its own browser context; no script may fail on any."""
    errors: list[str] = []
    opened: list[Page] = []

    def open_for(person: Person, password: str = PASSWORD) -> Page:
        page = log_in(browser, server, person, errors, password)
        opened.append(page)
        return page

    yield open_for
    for page in opened:
        page.context.close()
    assert not errors, errors


def test_apply_approve_join_and_the_quota_grows(
    browse: Callable[..., Page], server: Server, screenshots: Path
):
    user = browse(new_person(server, "applicant@example.org"))
    vm = user.locator('.project-quota [data-resource="cyclades.vm"]')
    expect(vm).to_have_count(1)  # only the personal project
    user.click("nav >> text=Projects")
    expect(user.locator(".empty")).to_contain_text("You are in no project yet")
    user.click("#apply")
    user.click("#project-submit")  # nothing filled in: each error by its field
    expect(user.locator("#project-name-error")).to_have_text("Give the project a name.")
    expect(user.locator("#project-resources-error")).to_contain_text("at least one resource")
    user.fill("#project-name", "physics-lab")
    user.fill("#project-description", "Simulations for the second-year physics lab")
    user.fill("#project-end", (dt.date.today() + dt.timedelta(days=90)).isoformat())
    user.fill("#project-members", "4")
    user.check("input[name=policy][value=auto]")
    user.fill("#grant-cyclades\\.vm", "3")
    user.fill("#grant-cyclades\\.total_ram", "8")
    user.click("#project-submit")  # machines without CPUs or disk: nobody could make one
    expect(user.locator("#project-resources-error")).to_have_text(
        "Machines need these too, or nobody can create one: Number of virtual CPUs, "
        "Virtual disk space."
    )
    user.fill("#grant-cyclades\\.total_cpu", "2")
    user.fill("#grant-cyclades\\.disk", "20")
    expect(user.locator("#project-name-error")).to_have_count(0)  # gone once fixed
    row = user.locator('.grant-table [data-resource="cyclades.total_ram"]')
    expect(row).to_contain_text("GiB")
    expect(row).to_contain_text("32 GiB for the whole project")
    user.screenshot(path=str(screenshots / "project-apply.png"), full_page=True)
    user.click("#project-submit")
    expect(user.locator("#project-notice")).to_contain_text("physics-lab: your application is sent")
    application = user.locator('#my-applications tr[data-project="physics-lab"]')
    expect(application.locator("[data-state]")).to_have_text("Waiting for an administrator")
    user.screenshot(path=str(screenshots / "projects.png"), full_page=True)

    admin = browse(*admin_of(server))
    admin.click("nav >> text=Projects to approve")
    waiting = admin.locator('#applications tr[data-project="physics-lab"]')
    expect(waiting).to_contain_text("by applicant@example.org")
    expect(waiting).to_contain_text("Number of virtual machines: 3")
    expect(waiting).to_contain_text("Virtual machine memory: 8 GiB")
    expect(waiting).to_contain_text("up to 4 members")
    admin.screenshot(path=str(screenshots / "projects-approve.png"), full_page=True)
    waiting.get_by_role("button", name="Approve physics-lab").click()
    expect(admin.locator("[role=status]")).to_contain_text("physics-lab is approved")
    expect(admin.locator(".empty")).to_contain_text("No application is waiting")

    user.reload()
    expect(application.locator("[data-state]")).to_have_text("Approved")
    mine = user.locator('#my-projects tr[data-project="physics-lab"]')
    expect(mine).to_contain_text("join to use its resources")
    mine.get_by_role("button", name="Join physics-lab").click()
    expect(user.locator("#project-notice")).to_contain_text("You joined physics-lab")
    expect(mine.locator(".state")).to_have_text("Member")

    user.click("nav >> text=Dashboard")
    lab = user.locator(".project-quota", has_text="physics-lab")
    expect(lab.locator('[data-resource="cyclades.vm"]')).to_contain_text("0 of 3 used")
    ram = lab.locator('[data-resource="cyclades.total_ram"]')
    expect(ram).to_contain_text("0 bytes of 8 GiB used")
    expect(lab.locator('[data-resource="cyclades.cpu"]')).to_contain_text("0 of 2 used")
    expect(lab.locator('[data-resource="pithos.diskspace"]')).to_have_count(0)  # not given
    expect(vm).to_have_count(2)  # personal and physics-lab
    user.screenshot(path=str(screenshots / "dashboard-with-project.png"), full_page=True)
    # The API agrees: the member's quota in the project is what was asked for.
    quotas = httpx.get(
        f"{server.url}/account/v1.0/quotas", headers={"X-Auth-Token": user.person.token}
    ).json()
    granted = [q for q in quotas.values() if q["cyclades.vm"]["limit"] == 3]
    assert len(granted) == 1 and granted[0]["cyclades.total_ram"]["limit"] == 8 * GiB


def test_refused_with_a_reason_join_moderated_and_leave(
    browse: Callable[..., Page], server: Server
):
    owner_person = new_person(server, "owner@example.org")
    member_person = new_person(server, "member@example.org")
    admin_headers = {"X-Auth-Token": server.admin_token}
    end = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()

    def project(name: str, policy: str) -> str:
        made = httpx.post(
            f"{server.url}/account/v1.0/projects",
            headers={"X-Auth-Token": owner_person.token},
            json={
                "name": name,
                "end_date": end,
                "join_policy": policy,
                "resources": {"cyclades.vm": {"project_capacity": 4, "member_capacity": 2}},
            },
        )
        assert made.status_code == 201, made.text
        return made.json()["id"]

    moderated, refused = project("course-moderated", "moderated"), project("too-big", "auto")
    for project_id, action in ((moderated, "approve"), (refused, "deny")):
        app = httpx.get(f"{server.url}/account/v1.0/projects/{project_id}", headers=admin_headers)
        app_id = app.json()["last_application"]["id"]
        decided = httpx.post(
            f"{server.url}/account/v1.0/projects/{project_id}/action",
            headers=admin_headers,
            json={action: {"app_id": app_id, "reason": "Ask for fewer machines"}},
        )
        assert decided.status_code == 200, decided.text

    owner = browse(owner_person)
    owner.click("nav >> text=Projects")
    denied = owner.locator('#my-applications tr[data-project="too-big"]')
    expect(denied.locator("[data-state]")).to_contain_text("Refused")
    expect(denied).to_contain_text("Why: Ask for fewer machines")
    expect(owner.locator("nav")).not_to_contain_text("Projects to approve")  # not an admin

    member = browse(member_person)
    member.click("nav >> text=Projects")
    offer = member.locator('#joinable tr[data-project="course-moderated"]')
    expect(offer).to_contain_text("The owner accepts who joins")
    offer.get_by_role("button", name="Ask to join course-moderated").click()
    expect(offer.locator(".state")).to_have_text("Waiting for the owner to accept you")
    expect(member.locator('#joinable tr[data-project="too-big"]')).to_have_count(0)

    owner.reload()
    asking = owner.locator("#join-requests tr", has_text="member@example.org")
    asking.get_by_role("button", name=re.compile("Accept member@example.org")).click()
    expect(owner.locator("#project-notice")).to_contain_text("is a member of course-moderated")

    member.reload()
    mine = member.locator('#my-projects tr[data-project="course-moderated"]')
    expect(mine.locator(".state")).to_have_text("Member")
    mine.get_by_role("button", name="Leave course-moderated").click()
    expect(member.locator("#project-notice")).to_contain_text("You left course-moderated")
    expect(member.locator('#joinable tr[data-project="course-moderated"]')).to_have_count(1)
    member.goto(f"{server.url}/ui/#/admin/projects")  # a non-admin is refused the page
    expect(member.locator("[role=alert]")).to_have_text("This page is for administrators.")
