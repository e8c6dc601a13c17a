"""``nefos quota`` and ``nefos usage``: operators' view of quotas."""

from __future__ import annotations

import csv
import json
import re
import sys
import uuid
from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import select

from nefos.cli.common import ConfigFile, DataDir, out, with_engines
from nefos.core import errors
from nefos.identity.models import Project
from nefos.quotas.resources import RESOURCES
from nefos.quotas.serials import LOCAL_CLIENTS, reconcile
from nefos.quotas.service import user_holder
from nefos.quotas.usage import usage_report
from nefos.server.engines import Engines
from nefos.units import human_amount

quota_app = typer.Typer(help="Quotas of users and projects.", no_args_is_help=True)
usage_app = typer.Typer(help="Resource usage reports.", no_args_is_help=True)

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}
_AMOUNT = re.compile(r"^(\d+)\s*([KMGTP]?)(i?B)?$", re.IGNORECASE)


def parse_amount(text: str) -> int:
    """``10``, ``512M``, ``20GiB``: counts, or bytes with binary units."""
    match = _AMOUNT.match(text.strip())
    if not match:
        raise typer.BadParameter(f"{text!r} is not an amount like 10, 512M or 20GiB")
    return int(match.group(1)) * _UNITS[match.group(2).upper()]


_AMOUNTS = {"limit", "usage", "pending", "project_limit", "project_usage"}


def shown_amount(resource: str, amount: object) -> str:
    """An amount of ``resource`` for people: sizes in binary units (``--json`` and
    ``--csv`` keep exact numbers)."""
    if not isinstance(amount, int):
        return "-" if amount is None else str(amount)
    known = RESOURCES.get(resource)
    return human_amount(amount, known.unit if known else "")


@quota_app.command("show")
def quota_show(
    user: Annotated[str, typer.Argument(help="UUID or e-mail")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """A user's quota in each of their projects."""

    async def work(engines: Engines) -> list[dict[str, object]]:
        found = await engines.identity.get_user(user)
        holdings = await engines.quotas.holdings([user_holder(found.id)])
        projects = await engines.quotas.holdings(sorted({h.source for h in holdings}))
        totals = {(p.holder, p.resource): p for p in projects}
        rows = []
        for h in holdings:
            project = totals.get((h.source, h.resource))
            rows.append(
                {
                    "project": h.source.removeprefix("project:"),
                    "resource": h.resource,
                    "limit": h.limit,
                    "usage": h.usage_max,
                    "pending": h.usage_max - h.usage_min,
                    "project_limit": project.limit if project else None,
                    "project_usage": project.usage_max if project else None,
                }
            )
        return rows

    rows = with_engines(config, data_dir, work)
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(*rows[0].keys()) if rows else Table("project", "resource")
    for row in rows:
        what = str(row["resource"])
        table.add_row(*(shown_amount(what, v) if k in _AMOUNTS else str(v) for k, v in row.items()))
    out.print(table)


@quota_app.command("set")
def quota_set(
    target: Annotated[
        str, typer.Argument(help="A user (UUID or e-mail) or a project (UUID or name)")
    ],
    resource: Annotated[str, typer.Argument(help="Resource name, e.g. cyclades.vm")],
    limit: Annotated[str, typer.Argument(help="New limit: 10, 512M, 20GiB")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Set a user's base quota, or a project's capacity in all."""
    amount = parse_amount(limit)

    async def work(engines: Engines) -> str:
        try:
            user = await engines.identity.get_user(target)
        except errors.NotFound:
            user = None
        if user is not None:
            await engines.quotas.set_base_quota(user.id, resource, amount)
            return f"base quota of {user.email}: {resource} = {shown_amount(resource, amount)}"
        async with engines.db.session() as s:
            try:
                wanted = uuid.UUID(target)
            except ValueError:
                project = await s.scalar(select(Project).where(Project.name == target))
            else:
                project = await s.get(Project, wanted)
        if project is None:
            raise errors.NotFound(f"No user or project {target}")
        await engines.quotas.set_project_capacity(project.id, resource, amount)
        return f"capacity of project {project.name}: {resource} = {shown_amount(resource, amount)}"

    out.print(with_engines(config, data_dir, work))


@quota_app.command("reconcile")
def quota_reconcile(data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Settle the commissions a crash left pending (accept what committed)."""

    async def work(engines: Engines) -> list[tuple[str, list[int], list[int]]]:
        results = []
        for client in LOCAL_CLIENTS:
            accepted, rejected = await reconcile(engines.db, engines.quotas, client)
            results.append((client, accepted, rejected))
        return results

    for client, accepted, rejected in with_engines(config, data_dir, work):
        out.print(f"{client}: accepted {accepted or 'none'}, rejected {rejected or 'none'}")


@usage_app.command("report")
def usage_report_command(
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV output")] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Limit, usage and pending usage of every project and member, by resource."""
    rows = with_engines(config, data_dir, lambda engines: usage_report(engines.db))
    if as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["kind", "holder", "project", "resource", "limit", "usage", "pending"])
        for row in rows:
            writer.writerow(asdict(row).values())
        return
    if not rows:
        out.print("no holdings yet")
        return
    table = Table("kind", "holder", "project", "resource", "limit", "usage", "pending")
    for row in rows:
        table.add_row(
            row.kind,
            row.holder,
            row.project,
            row.resource,
            shown_amount(row.resource, row.limit),
            shown_amount(row.resource, row.usage),
            shown_amount(row.resource, row.pending),
        )
    out.print(table)
