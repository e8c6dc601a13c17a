"""Operators' quota commands, and recovery from a crash mid-commission."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from nefos.identity.models import Project
from nefos.quotas.resources import RESOURCES
from nefos.quotas.service import project_holder, user_holder
from nefos.server.engines import Engines
from tests.conftest import invoke_nefos, run_nefos

NEFOS = str(Path(sys.executable).with_name("nefos"))
CRASH_CLIENT = Path(__file__).with_name("crash_client.py")
APP = "astakos.pending_app"


async def usage(engines: Engines, holder: str) -> tuple[int, int]:
    (found,) = [h for h in await engines.quotas.holdings([holder]) if h.resource == APP]
    return found.usage_min, found.usage_max


@pytest.mark.parametrize(("when", "outcome"), [("after-commit", 1), ("before-commit", 0)])
async def test_reconcile_repairs_a_crash(settings, engines: Engines, when: str, outcome: int):
    user, _ = await engines.identity.create_user("crash@example.org")
    crashed = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            str(CRASH_CLIENT),
            settings.database,
            str(settings.data_dir),
            str(user.id),
            when,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert crashed.returncode == -9, crashed.stderr
    assert len(await engines.quotas.pending("astakos")) == 1
    assert await usage(engines, user_holder(user.id)) == (0, 1)  # reserved, unsettled

    result = await invoke_nefos(settings, "quota", "reconcile")
    assert ("accepted [" if outcome else "rejected [") in result.stdout
    assert await engines.quotas.pending("astakos") == []
    assert await usage(engines, user_holder(user.id)) == (outcome, outcome)
    assert await usage(engines, project_holder(user.id)) == (outcome, outcome)
    async with engines.db.session() as s:
        created = await s.scalar(select(Project).where(Project.name == f"crash-{when}"))
    assert (created is not None) == bool(outcome)
    # Nothing is left to do the second time.
    assert (
        "accepted none, rejected none"
        in (await invoke_nefos(settings, "quota", "reconcile")).stdout
    )


async def test_quota_show_and_set(settings, engines: Engines):
    user, _ = await engines.identity.create_user("q@example.org")
    # The installed script, end to end; the other commands run in process.
    await run_nefos(settings, "quota", "set", "q@example.org", "cyclades.vm", "7")
    await invoke_nefos(settings, "quota", "set", str(user.id), "pithos.diskspace", "100GiB")
    rows = json.loads(
        (await invoke_nefos(settings, "quota", "show", "q@example.org", "--json")).stdout
    )
    by_resource = {row["resource"]: row for row in rows}
    assert by_resource["cyclades.vm"]["limit"] == 7
    assert by_resource["cyclades.vm"]["project_limit"] == 7
    assert by_resource["pithos.diskspace"]["limit"] == 100 << 30
    # People read sizes in binary units; --json above keeps the bytes.
    table = (await invoke_nefos(settings, "quota", "show", "q@example.org")).stdout
    disk = next(line for line in table.splitlines() if "pithos.diskspace" in line)
    assert "100 GiB" in disk and str(100 << 30) not in table
    assert "│ 7 " in next(line for line in table.splitlines() if "cyclades.vm" in line)
    said = await invoke_nefos(settings, "quota", "set", "q@example.org", "cyclades.ram", "3G")
    assert said.stdout.strip() == "base quota of q@example.org: cyclades.ram = 3 GiB"
    bad = await invoke_nefos(
        settings, "quota", "set", "q@example.org", "cyclades.vm", "lots", check=False
    )
    assert bad.returncode == 2
    unknown = await invoke_nefos(
        settings, "quota", "set", "q@example.org", "cyclades.nope", "1", check=False
    )
    assert unknown.returncode == 1 and "Unknown resource" in unknown.stderr
    nobody = await invoke_nefos(settings, "quota", "set", "nobody", "cyclades.vm", "1", check=False)
    assert nobody.returncode == 1 and "No user or project" in nobody.stderr


async def test_usage_report(settings, engines: Engines):
    user, _ = await engines.identity.create_user("r@example.org")
    await engines.quotas.issue(
        "svc", [*engines_charge(user.id, "cyclades.vm", 2)], auto_accept=True
    )
    # The installed script, end to end; the other command runs in process.
    report = (await run_nefos(settings, "usage", "report", "--csv")).stdout
    rows = list(csv.DictReader(io.StringIO(report)))
    mine = [r for r in rows if r["holder"] == "r@example.org" and r["resource"] == "cyclades.vm"]
    assert mine == [
        {
            "kind": "user",
            "holder": "r@example.org",
            "project": f"system:{user.id}",
            "resource": "cyclades.vm",
            "limit": "5",
            "usage": "2",
            "pending": "0",
        }
    ]
    table = (await invoke_nefos(settings, "usage", "report")).stdout
    assert "r@example.org" in table
    disk = [line for line in table.splitlines() if "r@example.org" in line and "diskspace" in line]
    assert len(disk) == 1 and "50 GiB" in disk[0], table  # the default, not 53687091200
    assert str(RESOURCES["pithos.diskspace"].default) not in table


def engines_charge(user_id, resource: str, quantity: int):
    from nefos.quotas.service import charge

    return charge(user_id, user_id, resource, quantity)
