"""``nefos flavor``, ``nefos backend``, ``nefos server``: operators' view of compute.

These act on the deployment's database through the same services as the running
server. None of them submits a backend job (a command's process would exit before the
job's events arrived): ``backend add|refresh`` only ask a cluster for its capacity, and
``server`` commands only read, showing every user's servers with the job events the
update path recorded, to diagnose a server stuck in a state.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table
from sqlalchemy import select

from nefos.backends.base import instance_name
from nefos.cli.common import (
    ConfigFile,
    DataDir,
    PasswordStdin,
    fail,
    out,
    read_password,
    with_engines,
)
from nefos.compute.models import Backend, BackendJob, Flavor, FlavorAccess
from nefos.compute.service import ServerView
from nefos.core import errors
from nefos.identity.models import Project
from nefos.server.engines import Engines

T = TypeVar("T")

flavor_app = typer.Typer(help="Flavors: the sizes servers are made in.", no_args_is_help=True)
backend_app = typer.Typer(
    help="Compute backends: the clusters servers run on.", no_args_is_help=True
)
server_app = typer.Typer(help="Every user's servers, and their backend jobs.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="JSON output")]
NOT_AVAILABLE = "the Ganeti backend is not available yet"


class Kind(StrEnum):
    embedded = "embedded"
    ganeti = "ganeti"


def _on_compute(
    config: Path | None, data_dir: Path | None, work: Callable[[Engines], Awaitable[T]]
) -> T:
    """``with_engines``, closing the cluster clients a command opened."""

    async def run(engines: Engines) -> T:
        try:
            return await work(engines)
        finally:
            await engines.compute.close()

    return with_engines(config, data_dir, run)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _time(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds") if moment else None


# -- flavors ---------------------------------------------------------------------------


async def _project_ids(engines: Engines, refs: list[str]) -> list[str]:
    """Projects named by UUID or name, as the flavor access list stores them."""
    found = []
    async with engines.db.session() as s:
        for ref in refs:
            try:
                project = await s.get(Project, uuid.UUID(ref))
            except ValueError:
                project = await s.scalar(select(Project).where(Project.name == ref))
            if project is None:
                raise errors.NotFound(f"No project {ref}")
            found.append(str(project.id))
    return found


def _flavor_record(flavor: Flavor, projects: list[str]) -> dict[str, Any]:
    return {
        "id": flavor.id,
        "name": flavor.name,
        "vcpus": flavor.vcpus,
        "ram": flavor.ram,
        "disk": flavor.disk,
        "disk_template": flavor.disk_template,
        "public": flavor.public,
        "allow_create": flavor.allow_create,
        "projects": projects,
    }


@flavor_app.command("create")
def flavor_create(
    vcpus: Annotated[int, typer.Option("--vcpus", help="Virtual CPUs")],
    ram: Annotated[int, typer.Option("--ram", help="Memory in MiB")],
    disk: Annotated[int, typer.Option("--disk", help="Root disk in GiB")],
    disk_template: Annotated[
        str, typer.Option("--disk-template", help="file, plain, drbd, rbd, ext_<provider>...")
    ] = "file",
    name: Annotated[
        str | None, typer.Option(help="Name [default C<vcpus>R<ram>D<disk><template>]")
    ] = None,
    private: Annotated[
        bool, typer.Option("--private", help="Only for the projects given with --project")
    ] = False,
    project: Annotated[
        list[str] | None,
        typer.Option("--project", help="A project (UUID or name) that may use a private flavor"),
    ] = None,
    as_json: JsonOption = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Create a flavor; public unless --private."""
    refs = project or []
    if refs and not private:
        raise fail("--project grants a private flavor: add --private")

    async def work(engines: Engines) -> dict[str, Any]:
        projects = await _project_ids(engines, refs)
        flavor = await engines.compute.create_flavor(
            vcpus, ram, disk, disk_template, name=name, public=not private, projects=projects
        )
        return _flavor_record(flavor, projects)

    record = _on_compute(config, data_dir, work)
    if as_json:
        out.print_json(json.dumps(record))
        return
    out.print(f"flavor {record['id']} {record['name']} created")


@flavor_app.command("list")
def flavor_list(
    as_json: JsonOption = False, data_dir: DataDir = None, config: ConfigFile = None
) -> None:
    """Flavors in use for new servers (deleted ones are not listed)."""

    async def work(engines: Engines) -> list[dict[str, Any]]:
        flavors = await engines.compute.flavors()
        async with engines.db.session() as s:
            grants = list(await s.execute(select(FlavorAccess.flavor_id, FlavorAccess.project)))
        access: dict[int, list[str]] = {}
        for flavor_id, granted in grants:
            access.setdefault(flavor_id, []).append(granted)
        return [_flavor_record(f, sorted(access.get(f.id, []))) for f in flavors]

    records = _on_compute(config, data_dir, work)
    if as_json:
        out.print_json(json.dumps(records))
        return
    table = Table("id", "name", "vcpus", "ram MiB", "disk GiB", "template", "public", "projects")
    for r in records:
        table.add_row(
            str(r["id"]),
            r["name"],
            str(r["vcpus"]),
            str(r["ram"]),
            str(r["disk"]),
            r["disk_template"],
            _yes(r["public"]),
            ", ".join(r["projects"]) or "-",
        )
    out.print(table)


@flavor_app.command("delete")
def flavor_delete(
    flavor_id: Annotated[int, typer.Argument(metavar="ID", help="Flavor id")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Withdraw a flavor: no new servers; servers made with it keep it."""
    _on_compute(config, data_dir, lambda e: e.compute.delete_flavor(flavor_id))
    out.print(f"flavor {flavor_id} deleted")


# -- backends --------------------------------------------------------------------------


def _guests(backend: Backend) -> str:
    """Whether servers there are real machines: operators must not mistake a simulated
    cluster (or Ganeti's fake hypervisor, for testing) for one that runs guests."""
    if backend.kind == "embedded":
        return "simulated, runs no guest; NICs get addresses, no packet flows"
    if backend.hypervisor == "fake":
        return "fake hypervisor, runs no guest"
    return "real guests" if backend.hypervisor else "unknown until refreshed"


def _backend_record(backend: Backend) -> dict[str, Any]:
    return {
        "name": backend.name,
        "kind": backend.kind,
        "guests": _guests(backend),
        "url": backend.url,
        "username": backend.username,
        "password": "***" if backend.password else "",
        "certificate": "pinned" if backend.certificate else "",
        "drained": backend.drained,
        "offline": backend.offline,
        "public": backend.public,
        "default_link": backend.default_link,
        "os_type": backend.os_type,
        "hypervisor": backend.hypervisor,
        "disk_templates": [t for t in backend.disk_templates.split(",") if t],
        "mfree": backend.mfree,
        "mtotal": backend.mtotal,
        "dfree": backend.dfree,
        "dtotal": backend.dtotal,
        "ctotal": backend.ctotal,
        "instances": backend.pinst_cnt,
        "refreshed": _time(backend.refreshed),
    }


def _ganeti_missing() -> bool:
    try:
        from nefos.backends.ganeti import GanetiCluster  # noqa: F401
    except ImportError:
        return True
    return False


@backend_app.command("add")
def backend_add(
    name: Annotated[str, typer.Argument(help="Backend name (letters, digits, - _ .)")],
    kind: Annotated[Kind, typer.Option("--kind", help="embedded (simulated) or ganeti")],
    url: Annotated[str, typer.Option(help="Ganeti RAPI URL, https://host:5080")] = "",
    username: Annotated[
        str, typer.Option(help="RAPI user; its password is asked, or read with --password-stdin")
    ] = "",
    password_stdin: PasswordStdin = False,
    default_link: Annotated[
        str, typer.Option("--default-link", help="Bridge new servers' NICs attach to")
    ] = "",
    certificate: Annotated[
        Path | None,
        typer.Option(
            "--certificate",
            help="The cluster's RAPI certificate (a PEM file such as Ganeti's rapi.pem; only "
            "its certificate is kept), trusted exactly; without it the system's authorities "
            "and the host name are checked",
        ),
    ] = None,
    private: Annotated[
        bool, typer.Option("--private", help="Not used for new servers of the public")
    ] = False,
    os_type: Annotated[
        str,
        typer.Option(
            "--os-type",
            help="Ganeti OS for new instances: nefos+default writes the server's image "
            "(after `nefos ganeti install-os` on the nodes); noop writes nothing",
        ),
    ] = "noop",
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Add a cluster and read its capacity."""
    if kind is Kind.ganeti and _ganeti_missing():
        raise fail(NOT_AVAILABLE)
    if password_stdin and not username:
        raise fail("--password-stdin is the RAPI user's password: give --username", code=2)
    password = read_password("RAPI password", password_stdin) if username else ""

    async def work(engines: Engines) -> Backend:
        try:
            return await engines.compute.add_backend(
                name,
                kind.value,
                url=url,
                username=username,
                password=password,
                default_link=default_link,
                public=not private,
                certificate=str(certificate.resolve()) if certificate else "",  # read there
                os_type=os_type,
            )
        except ImportError:
            raise errors.Unavailable(NOT_AVAILABLE) from None
        except errors.Unavailable as exc:  # recorded, but the cluster did not answer
            if name not in {b.name for b in await engines.compute.backends()}:
                raise
            raise errors.Unavailable(
                f"{exc.message}. Backend {name} is recorded: `nefos backend refresh {name}` "
                f"once it answers, or `nefos backend remove {name}`"
            ) from None

    backend = _on_compute(config, data_dir, work)
    out.print(f"backend {backend.name} added ({backend.kind}, {_guests(backend)})")


def _capacity(backend: Backend) -> str:
    return (
        f"mem {backend.mfree}/{backend.mtotal} MiB, disk {backend.dfree}/{backend.dtotal} MiB, "
        f"{backend.ctotal} cpus, {backend.pinst_cnt} instances"
    )


@backend_app.command("list")
def backend_list(
    as_json: JsonOption = False, data_dir: DataDir = None, config: ConfigFile = None
) -> None:
    """Backends, whether new servers may go there, and their cached capacity."""
    backends = _on_compute(config, data_dir, lambda e: e.compute.backends())
    if as_json:
        out.print_json(json.dumps([_backend_record(b) for b in backends]))
        return
    table = Table("name", "kind", "guests", "drained", "offline", "public", "capacity")
    for b in backends:
        table.add_row(
            b.name,
            b.kind,
            _guests(b),
            _yes(b.drained),
            _yes(b.offline),
            _yes(b.public),
            _capacity(b),
        )
    out.print(table)


@backend_app.command("show")
def backend_show(
    name: str, as_json: JsonOption = False, data_dir: DataDir = None, config: ConfigFile = None
) -> None:
    """One backend (the RAPI password masked)."""
    record = _backend_record(_on_compute(config, data_dir, lambda e: e.compute.backend(name)))
    if as_json:
        out.print_json(json.dumps(record))
        return
    for key, value in record.items():
        if isinstance(value, list):
            value = ",".join(value)
        out.print(f"{key}: {'-' if value is None or value == '' else value}")


@backend_app.command("drain")
def backend_drain(name: str, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Stop placing new servers there; its servers keep running and can be acted on."""
    _on_compute(config, data_dir, lambda e: e.compute.set_drained(name, True))
    out.print(f"backend {name} drained")


@backend_app.command("undrain")
def backend_undrain(name: str, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Place new servers there again."""
    _on_compute(config, data_dir, lambda e: e.compute.set_drained(name, False))
    out.print(f"backend {name} takes new servers")


@backend_app.command("remove")
def backend_remove(name: str, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Forget a backend that has no servers left."""
    _on_compute(config, data_dir, lambda e: e.compute.remove_backend(name))
    out.print(f"backend {name} removed")


@backend_app.command("refresh")
def backend_refresh(name: str, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Ask the cluster for its capacity and disk templates now."""
    backend = _on_compute(config, data_dir, lambda e: e.compute.refresh_backend(name))
    out.print(f"backend {name}: {_capacity(backend)}")


# -- servers ---------------------------------------------------------------------------


async def _owners(engines: Engines) -> dict[str, str]:
    return {str(u.id): u.email for u in await engines.identity.list_users()}


async def _backend_names(engines: Engines) -> dict[int, str]:
    async with engines.db.session() as s:
        return dict((await s.execute(select(Backend.id, Backend.name))).all())


def _server_record(
    view: ServerView, owners: dict[str, str], backends: dict[int, str]
) -> dict[str, Any]:
    s = view.server
    return {
        "id": s.id,
        "name": s.name,
        "owner": owners.get(s.user_id, s.user_id),
        "user_id": s.user_id,
        "project": s.project,
        "status": view.status,
        "task": view.task_state,
        "flavor": view.flavor.name,
        "flavor_id": view.flavor.id,
        "backend": backends.get(s.backend_id, "-") if s.backend_id is not None else "-",
        "deleted": s.deleted,
    }


def _job_record(job: BackendJob) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "opcode": job.opcode,
        "status": job.status,
        "time": dt.datetime.fromtimestamp(job.event_time, dt.UTC).isoformat(
            timespec="milliseconds"
        ),
        "logmsg": job.logmsg,
    }


@server_app.command("list")
def server_list(
    include_deleted: Annotated[bool, typer.Option("--all", help="Include deleted servers")] = False,
    user: Annotated[
        str | None, typer.Option("--user", help="Only this user's (UUID or e-mail)")
    ] = None,
    as_json: JsonOption = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Servers of every user (or one), with the state the backend last reported."""

    async def work(engines: Engines) -> list[dict[str, Any]]:
        owner = str((await engines.identity.get_user(user)).id) if user else None
        views = await engines.compute.servers(owner, include_deleted=include_deleted)
        owners, backends = await _owners(engines), await _backend_names(engines)
        return [_server_record(v, owners, backends) for v in views]

    records = _on_compute(config, data_dir, work)
    if as_json:
        out.print_json(json.dumps(records))
        return
    table = Table("id", "name", "owner", "status", "task", "flavor", "backend")
    for r in records:
        table.add_row(
            str(r["id"]),
            r["name"],
            r["owner"],
            r["status"],
            r["task"] or "-",
            r["flavor"],
            r["backend"],
        )
    out.print(table)


@server_app.command("show")
def server_show(
    server_id: Annotated[int, typer.Argument(metavar="ID", help="Server id")],
    as_json: JsonOption = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """One server, and every job event its backend reported (oldest first)."""

    async def work(engines: Engines) -> dict[str, Any]:
        view = await engines.compute.server(None, server_id)
        owners, backends = await _owners(engines), await _backend_names(engines)
        s = view.server
        record = _server_record(view, owners, backends)
        record.update(
            {
                "instance": instance_name(s.id),
                "image": s.image_id,
                "operstate": s.operstate,
                "task_job_id": s.task_job_id,
                "progress": view.progress,
                "created": _time(s.created),
                "updated": _time(s.updated),
                "metadata": view.metadata,
                "tags": view.tags,
                "key_names": view.key_names,
                "diagnostics": [
                    {"level": d.level, "created": _time(d.created), "message": d.message}
                    for d in view.diagnostics
                ],
                "jobs": [_job_record(j) for j in await engines.compute.jobs(s.id)],
            }
        )
        return record

    record = _on_compute(config, data_dir, work)
    if as_json:
        out.print_json(json.dumps(record))
        return
    for key, value in record.items():
        if key in ("jobs", "diagnostics"):
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
        elif isinstance(value, list):
            value = ", ".join(value) or "-"
        out.print(f"{key}: {'-' if value is None or value == '' else value}")
    for diagnostic in record["diagnostics"]:
        out.print(
            f"diagnostic: {diagnostic['created']} {diagnostic['level']} {diagnostic['message']}"
        )
    if not record["jobs"]:
        out.print("jobs: none reported yet")
        return
    table = Table("job", "opcode", "status", "time", "log", title="backend jobs")
    for job in record["jobs"]:
        table.add_row(
            str(job["job_id"]), job["opcode"], job["status"], job["time"], job["logmsg"] or "-"
        )
    out.print(table)
