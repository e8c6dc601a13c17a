"""``nf``: the user's command-line client, modelled on kamaki's ``file``, ``container``
and ``group`` commands (spec §7).

It needs a cloud URL and a token: ``nf config set url http://127.0.0.1:8000`` and ``nf
config set token TOKEN`` (or ``NF_URL`` / ``NF_TOKEN``). Errors end with the server's
reason and exit code 1; usage and configuration errors with 2.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from nefos.client import config
from nefos.client.cli_files import file_app, list_containers
from nefos.client.console import (
    Account,
    AsJson,
    connect,
    fail,
    out,
    parse_size,
    print_headers,
    print_json,
    session,
)
from nefos.client.errors import ClientError

app = typer.Typer(
    help="nf: the nefos client for files, containers and groups.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
container_app = typer.Typer(help="Containers and their policies.", no_args_is_help=True)
group_app = typer.Typer(help="Groups of users, to share with.", no_args_is_help=True)
config_app = typer.Typer(help="The cloud URL and token nf uses.", no_args_is_help=True)
user_app = typer.Typer(help="Who the token belongs to.", no_args_is_help=True)
app.add_typer(file_app, name="file")
app.add_typer(container_app, name="container")
app.add_typer(group_app, name="group")
app.add_typer(config_app, name="config")
app.add_typer(user_app, name="user")

Quota = Annotated[
    str | None, typer.Option(help="Bytes the container may hold, e.g. 10G (0: no limit)")
]
Versioning = Annotated[
    str | None, typer.Option(help="auto: keep old versions; none: keep only the latest")
]
Project = Annotated[str | None, typer.Option(help="Project UUID whose quota the container uses")]


# -- config ---------------------------------------------------------------------------


@config_app.command("set")
def config_set(
    key: Annotated[str, typer.Argument(help="url or token")],
    value: Annotated[str, typer.Argument(help="The cloud's base URL or identity URL; a token")],
) -> None:
    """Save a setting in the configuration file."""
    path = config.config_path()
    try:
        config.set_value(path, key, value)
    except config.ConfigError as exc:
        raise fail(str(exc), 2) from None


@config_app.command("unset")
def config_unset(key: Annotated[str, typer.Argument(help="url or token")]) -> None:
    """Remove a setting from the configuration file."""
    try:
        config.unset_value(config.config_path(), key)
    except config.ConfigError as exc:
        raise fail(str(exc), 2) from None


@config_app.command("show")
def config_show(
    reveal: Annotated[bool, typer.Option("--reveal", help="Show the whole token")] = False,
) -> None:
    """The settings in effect and where each comes from (file or environment)."""
    try:
        settings = config.load()
    except config.ConfigError as exc:
        raise fail(str(exc), 2) from None
    out.print(f"file: {settings.path}", markup=False, highlight=False)
    for key in config.KEYS:
        value = getattr(settings, key)
        if value is None:
            out.print(f"{key}: (not set)", markup=False, highlight=False)
            continue
        if key == "token" and not reveal:
            value = "…" + value[-4:] if len(value) > 8 else "…"
        source = settings.sources[key]
        origin = "" if source == "file" else f"  (from {source})"
        out.print(f"{key}: {value}{origin}", markup=False, highlight=False)


# -- user -------------------------------------------------------------------------------


@user_app.command("info")
def user_info(as_json: AsJson = False) -> None:
    """The token's user (the UUID others share with) and the storage URL."""
    cloud = connect()
    try:
        access = cloud.authenticate()
        record = {
            "uuid": access.user_uuid,
            "name": access.user_name,
            "identity": cloud.identity_url,
            "object_store": cloud.files().url,
        }
    except ClientError as exc:
        raise fail(str(exc)) from None
    finally:
        cloud.close()
    if as_json:
        print_json(record)
        return
    for key, value in record.items():
        out.print(f"{key}: {value}", markup=False, highlight=False)


# -- containers ---------------------------------------------------------------------------


@container_app.command("list")
def container_list(as_json: AsJson = False, account: Account = None) -> None:
    """The account's containers with their size and policies."""
    list_containers(as_json, account)


@container_app.command("info")
def container_info(container: str, as_json: AsJson = False, account: Account = None) -> None:
    """A container's headers: counts, bytes, block size, policies, metadata."""
    with session(account) as files:
        headers = files.container_info(container)
    print_json(headers) if as_json else print_headers(headers)


def _versioning(value: str | None) -> str | None:
    if value is not None and value not in ("auto", "none"):
        raise typer.BadParameter("versioning is auto or none")
    return value


@container_app.command("create")
def container_create(
    container: str, quota: Quota = None, versioning: Versioning = None, project: Project = None
) -> None:
    """Create a container (default: no quota limit, auto versioning, your own project)."""
    with session() as files:
        created = files.create_container(
            container,
            quota=parse_size(quota) if quota is not None else None,
            versioning=_versioning(versioning),
            project=project,
        )
    if not created:
        raise fail(f"{container}: already exists (`nf container modify` changes policies)")


@container_app.command("modify")
def container_modify(
    container: str, quota: Quota = None, versioning: Versioning = None, project: Project = None
) -> None:
    """Change a container's policies (--project moves its quota charge)."""
    if quota is None and versioning is None and project is None:
        raise fail("give --quota, --versioning or --project", 2)
    with session() as files:
        files.set_container_policy(
            container,
            quota=parse_size(quota) if quota is not None else None,
            versioning=_versioning(versioning),
            project=project,
        )


@container_app.command("empty")
def container_empty(container: str) -> None:
    """Delete every object in a container, keeping the container."""
    with session() as files:
        files.empty_container(container)


@container_app.command("delete")
def container_delete(
    container: str,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Delete its objects first")
    ] = False,
) -> None:
    """Delete a container; it must be empty unless -r."""
    with session() as files:
        files.delete_container(container, recursive=recursive)


# -- groups --------------------------------------------------------------------------------


@group_app.command("list")
def group_list(as_json: AsJson = False) -> None:
    """Your groups and their members; share with one as <your-uuid>:<group>."""
    with session() as files:
        groups = files.groups()
    if as_json:
        print_json(groups)
        return
    table = Table("group", "members")
    for name, members in sorted(groups.items()):
        table.add_row(name, ", ".join(members))
    out.print(table)


@group_app.command("create")
def group_create(
    name: Annotated[str, typer.Argument(help="Letters, digits and dots")],
    members: Annotated[list[str], typer.Argument(help="User UUIDs (spaces or commas)")],
) -> None:
    """Create a group, or replace the members of an existing one."""
    with session() as files:
        files.set_group(name, [m for v in members for m in v.split(",")])


@group_app.command("delete")
def group_delete(name: str) -> None:
    """Delete a group (sharing that names it stops granting anything)."""
    with session() as files:
        files.delete_group(name)


def main() -> None:
    app()
