"""``nefos project``: operators decide on applications and on projects' lives.

The operator acts as no user (the project log records no actor) and with every right.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.table import Table

from nefos.cli.common import ConfigFile, DataDir, fail, out, with_engines
from nefos.cli.quota import shown_amount
from nefos.quotas.project_rules import describe_project
from nefos.server.engines import Engines

project_app = typer.Typer(
    help="Projects: applications, approval, suspension.", no_args_is_help=True
)

Reason = Annotated[str, typer.Option("--reason", help="Why (kept in the project log)")]
AppId = Annotated[
    int | None, typer.Option("--app", help="Application id [default: the pending one]")
]
AsJson = Annotated[bool, typer.Option("--json", help="JSON output")]


@project_app.command("list")
def project_list(
    state: Annotated[str | None, typer.Option(help="Only projects in this state")] = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """List projects (system projects included)."""

    async def work(engines: Engines) -> list[dict[str, Any]]:
        views = await engines.projects.list_projects(None, state=state)
        return [describe_project(v) for v in views]

    projects = with_engines(config, data_dir, work)
    if as_json:
        out.print_json(json.dumps(projects))
        return
    table = Table("id", "name", "state", "owner", "end date", "application")
    for p in projects:
        app = p.get("last_application")
        pending = f"{app['id']} {app['state']}" if app else "-"
        table.add_row(p["id"], p["name"], p["state"], p["owner"] or "-", p["end_date"], pending)
    out.print(table)


@project_app.command("show")
def project_show(
    project: Annotated[str, typer.Argument(help="Project UUID")],
    as_json: AsJson = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Show one project, its resources and its latest application."""

    async def work(engines: Engines) -> dict[str, Any]:
        return describe_project(await engines.projects.get_project(None, project))

    shown = with_engines(config, data_dir, work)
    if as_json:
        out.print_json(json.dumps(shown))
        return
    for key, value in shown.items():
        if key == "resources":
            value = ", ".join(
                f"{name} {shown_amount(name, spec['project_capacity'])}/"
                f"{shown_amount(name, spec['member_capacity'])}"
                for name, spec in value.items()
                if spec["project_capacity"] or spec["member_capacity"]
            )
        elif key == "last_application":
            value = f"{value['id']} ({value['state']})"
        out.print(f"{key}: {value if value not in (None, '') else '-'}")


def _decide(action: str, project: str, app: int | None, reason: str, data_dir, config) -> int:
    async def work(engines: Engines) -> int:
        app_id = app if app is not None else await engines.projects.pending_application(project)
        await engines.projects.application_action(None, project, action, app_id, reason)
        return app_id

    return with_engines(config, data_dir, work)


@project_app.command("approve")
def project_approve(
    project: Annotated[str, typer.Argument(help="Project UUID")],
    app: AppId = None,
    reason: Reason = "",
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Approve an application: it becomes the project, and its quota takes effect."""
    app_id = _decide("approve", project, app, reason, data_dir, config)
    out.print(f"application {app_id} of {project} approved")


@project_app.command("deny")
def project_deny(
    project: Annotated[str, typer.Argument(help="Project UUID")],
    app: AppId = None,
    reason: Reason = "",
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Deny an application (the applicant may then dismiss it)."""
    app_id = _decide("deny", project, app, reason, data_dir, config)
    out.print(f"application {app_id} of {project} denied")


def _change(action: str, project: str, reason: str, data_dir, config) -> str:
    async def work(engines: Engines) -> str:
        return (await engines.projects.project_action(None, project, action, reason)).state

    return with_engines(config, data_dir, work)


STATE_CHANGES = {
    "suspend": "Suspend a project: nothing new may be charged to it until it is unsuspended.",
    "unsuspend": "Give a suspended project its quota back.",
    "terminate": "End a project: its quota goes to zero and its name is free for others.",
    "reinstate": "Bring a terminated project back, if its name is still free.",
}


def _state_command(action: str) -> Callable[..., None]:
    def command(
        project: Annotated[str, typer.Argument(help="Project UUID")],
        reason: Reason = "",
        data_dir: DataDir = None,
        config: ConfigFile = None,
    ) -> None:
        out.print(f"{project} is {_change(action, project, reason, data_dir, config)}")

    return command


for _action, _help in STATE_CHANGES.items():
    project_app.command(_action, help=_help)(_state_command(_action))


@project_app.command("default-network")
def project_default_network(
    project: Annotated[str, typer.Argument(help="Project UUID")],
    network: Annotated[
        str | None, typer.Argument(help="A public network, by id or name [default: show it]")
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Back to the deployment's default network")
    ] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Name the public network that the project's servers get when created without
    networks, over [network] default_public_network; without NETWORK, show it."""
    if clear and network is not None:
        raise fail("Give a NETWORK or --clear, not both")

    async def work(engines: Engines) -> str:
        await engines.projects.get_project(None, project)  # an unknown project: an error
        if clear:
            await engines.network.set_project_network(project, None)
            return f"project {project}: the deployment's default network"
        found = (
            await engines.network.project_network(project)
            if network is None
            else await engines.network.set_project_network(project, network)
        )
        if found is None:
            return f"project {project}: the deployment's default network"
        return f"project {project}: default network {found.id} {found.name}"

    out.print(with_engines(config, data_dir, work))
