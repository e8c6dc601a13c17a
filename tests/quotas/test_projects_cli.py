"""``nefos project``: operators decide on applications, run as a user runs them."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from pathlib import Path

from nefos.core.db import utcnow
from nefos.quotas.project_rules import Actor
from nefos.server.engines import Engines
from tests.conftest import invoke_nefos, run_nefos

NEFOS = str(Path(sys.executable).with_name("nefos"))
VM = "cyclades.vm"


async def test_operator_decides_and_suspends(settings, engines: Engines):
    user, _ = await engines.identity.create_user("applicant@example.org")
    applicant = Actor(user.id)
    end = utcnow() + dt.timedelta(days=30)
    resources = {VM: {"project_capacity": 4, "member_capacity": 2}}
    project, app = await engines.projects.submit(
        applicant, {"name": "cli-project", "end_date": end, "resources": resources}
    )
    refused, refused_app = await engines.projects.submit(
        applicant, {"name": "cli-refused", "end_date": end}
    )

    # Independent commands run side by side. The first is the installed script, end to
    # end; the rest run in process (one at a time, without a process start each).
    approved, denied = await asyncio.gather(
        run_nefos(settings, "project", "approve", str(project)),  # its pending application
        invoke_nefos(settings, "project", "deny", str(refused), "--app", str(refused_app)),
    )
    assert f"application {app}" in approved.stdout and "denied" in denied.stdout
    suspended, again = await asyncio.gather(
        invoke_nefos(settings, "project", "suspend", str(project), "--reason", "unpaid"),
        invoke_nefos(settings, "project", "approve", str(refused), check=False),
    )
    assert "suspended" in suspended.stdout
    assert again.returncode == 1 and "no pending application" in again.stderr
    listed, shown = await asyncio.gather(
        invoke_nefos(settings, "project", "list", "--json"),
        invoke_nefos(settings, "project", "show", str(project), "--json"),
    )
    states = {p["id"]: p["state"] for p in json.loads(listed.stdout)}
    assert states[str(project)] == "suspended" and states[str(refused)] == "uninitialized"
    assert states[str(user.id)] == "active"  # system projects are listed too
    shown = json.loads(shown.stdout)
    assert shown["deactivation_date"].endswith("Z")
    assert shown["resources"][VM] == resources[VM]
    assert shown["last_application"]["id"] == app
    assert shown["last_application"]["state"] == "approved"
    view = await engines.projects.get_project(None, refused)
    assert view.last_application is not None and view.last_application.state == "denied"
