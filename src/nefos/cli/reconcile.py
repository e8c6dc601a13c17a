"""``nefos reconcile``: make the database agree with what the backends report."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from nefos.backends.embedded import EmbeddedCluster
from nefos.cli.common import ConfigFile, DataDir, out, with_engines
from nefos.compute.reconcile import Finding, reconcile_servers
from nefos.server.engines import Engines

reconcile_app = typer.Typer(help="Repair drift between nefos and its backends.")


@reconcile_app.command("servers")
def servers(
    fix: Annotated[bool, typer.Option("--fix", help="Repair what is found")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Compare every backend's instances with the servers nefos places there: servers
    the backend lost, instances nefos does not know, state and flavor mismatches, tasks
    whose outcome never arrived. Exits 1 when something is (or was) out of sync."""

    async def work(engines: Engines) -> list[Finding]:
        try:
            findings = await reconcile_servers(engines.compute, fix=fix)
            for backend in await engines.compute.backends():
                cluster = engines.compute.cluster(backend)
                if isinstance(cluster, EmbeddedCluster):
                    await cluster.idle()  # let removals finish before this process exits
            return findings
        finally:
            await engines.compute.close()

    findings = with_engines(config, data_dir, work)
    if as_json:
        out.print_json(json.dumps([asdict(f) for f in findings]))
    elif not findings:
        out.print("Every server agrees with its backend.")
    else:
        table = Table("backend", "server", "instance", "problem", "fixed")
        for f in findings:
            server = str(f.server_id) if f.server_id is not None else "-"
            table.add_row(f.backend, server, f.instance, f.problem, "yes" if f.fixed else "no")
        out.print(table)
    if findings:
        raise typer.Exit(1)
