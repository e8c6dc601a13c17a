"""Servers as the API shows them, read from the database: one server with all it
derives, and listings that read a thousand servers in a few queries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.exc import DataError
from sqlalchemy.ext.asyncio import AsyncSession

from nefos.backends import base
from nefos.compute import listing
from nefos.compute.checks import parse_id
from nefos.compute.listing import IN_FLIGHT, STATUS, ServerQuery
from nefos.compute.models import (
    BackendJob,
    Diagnostic,
    Flavor,
    Server,
    ServerMetadata,
    ServerTag,
)
from nefos.core import errors
from nefos.core.db import Database
from nefos.network.nics import Nic, Nics
from nefos.volume import attachments
from nefos.volume.attachments import Attached

TASK_STATE = {
    "BUILD": "BUILDING",
    "START": "STARTING",
    "STOP": "STOPPING",
    "REBOOT": "REBOOTING",
    "DESTROY": "DESTROYING",
    "RESIZE": "RESIZING",
}


@dataclass(slots=True)
class ServerRecord:
    """A server row read for a listing only: plain attributes, no ORM identity map or
    instrumentation (a third of a thousand-server listing's time went there)."""

    id: int
    name: str
    user_id: str
    project: str
    flavor_id: int
    image_id: str
    backend_id: int | None
    operstate: str
    backendtime: float
    task: str | None
    task_job_id: int | None
    serial: int | None
    job_status: str
    job_opcode: str
    build_percentage: int
    key_names: str
    shared_to_project: bool
    deleted: bool
    created: dt.datetime
    updated: dt.datetime
    launched: dt.datetime | None


# Table columns, not ORM attributes: a Core select skips the ORM's row loading.
SERVER_COLUMNS = tuple(Server.__table__.c[name] for name in ServerRecord.__slots__)


@dataclass(frozen=True)
class ServerView:
    """A server as the API shows it: the row and what it derives."""

    # The ORM row, or for listings a plain record with the same attribute names.
    server: Server | ServerRecord
    flavor: Flavor
    metadata: dict[str, str]
    tags: list[str]
    diagnostics: list[Diagnostic] = field(default_factory=list)
    nics: tuple[Nic, ...] = ()  # its ports, with their addresses
    volumes: tuple[Attached, ...] = ()  # its volumes, root first
    # Everything the listing view shows, as one hashable value (None: not a listing):
    # equal versions render equal JSON, so a listing renders only what changed.
    version: tuple[Any, ...] | None = None

    @property
    def status(self) -> str:
        s = self.server
        if s.deleted:
            return "DELETED"
        status = STATUS.get(s.operstate, "UNKNOWN")
        in_flight = s.job_status in IN_FLIGHT
        if status == "ACTIVE" and s.job_opcode == base.OP_REBOOT and in_flight:
            return "REBOOT"
        if status == "STOPPED" and s.job_opcode == base.OP_MODIFY and in_flight:
            return "RESIZE"
        return status

    @property
    def task_state(self) -> str:
        return TASK_STATE.get(self.server.task or "", "")

    @property
    def progress(self) -> int:
        return 100 if self.status == "ACTIVE" else self.server.build_percentage

    @property
    def key_names(self) -> list[str]:
        raw = self.server.key_names
        return [] if raw == "[]" else orjson.loads(raw)


class ServerReader:
    """Reads servers for the API, the CLI and the effect path (which reads a server
    before it changes it)."""

    def __init__(self, db: Database, nics: Nics) -> None:
        self.db = db
        self.nics = nics

    async def view(self, s: AsyncSession, server: Server, diagnostics: bool = True) -> ServerView:
        flavor = await s.get(Flavor, server.flavor_id)
        assert flavor is not None
        meta = await s.execute(
            select(ServerMetadata.key, ServerMetadata.value).where(
                ServerMetadata.server_id == server.id
            )
        )
        tags = await s.scalars(
            select(ServerTag.tag).where(ServerTag.server_id == server.id).order_by(ServerTag.tag)
        )
        found: list[Diagnostic] = []
        if diagnostics:
            found = list(
                await s.scalars(
                    select(Diagnostic)
                    .where(Diagnostic.server_id == server.id)
                    .order_by(Diagnostic.id.desc())
                )
            )
        nics = () if server.deleted else await self._nics(server.id, server.user_id)
        volumes = tuple((await attachments.of_servers(s, [server.id]))[server.id])
        return ServerView(
            server, flavor, dict(meta.all()), list(tags), found, nics=nics, volumes=volumes
        )

    async def _nics(self, server_id: int, user: str) -> tuple[Nic, ...]:
        return tuple((await self.nics.server_nics({server_id: user})).get(server_id, []))

    async def server(
        self, user: str | None, server_id: int | str, projects: Iterable[str] = ()
    ) -> ServerView:
        """A server of ``user`` (None: any, for operators); deleted ones too. With
        ``projects`` (the caller's), also one shared to one of them: only reading takes
        those, every change is the owner's."""
        wanted = parse_id(server_id)
        if wanted is None:
            raise errors.NotFound(f"No server {server_id}")
        async with self.db.session() as s:
            server = await s.get(Server, wanted)
            if server is None or (
                user is not None
                and server.user_id != user
                and not (server.shared_to_project and server.project in set(projects))
            ):
                raise errors.NotFound(f"No server {server_id}")
            return await self.view(s, server)

    async def servers(
        self,
        user: str | None,
        changes_since: dt.datetime | None = None,
        include_deleted: bool = False,
        projects: Iterable[str] = (),
    ) -> list[ServerView]:
        """``user``'s servers and those shared to one of ``projects`` (None: all), by id."""
        query = ServerQuery(changes_since=changes_since, include_deleted=include_deleted)
        return await self.listing(user, query, projects)

    async def count(
        self, user: str | None, query: ServerQuery, projects: Iterable[str] = ()
    ) -> int:
        """How many servers ``user`` sees that ``query``'s filters select, over all
        pages (its marker and limit aside): one COUNT, so that a client showing a
        number (the web UI's dashboard) need not download every server."""
        wanted = [*listing.visible_to(user, list(projects)), *listing.conditions(query)]
        async with self.db.session() as s:
            try:
                return await s.scalar(select(func.count()).select_from(Server).where(*wanted)) or 0
            except DataError:  # as in listing
                raise errors.InvalidInput("Invalid regular expression in a filter") from None

    async def listing(
        self, user: str | None, query: ServerQuery, projects: Iterable[str] = ()
    ) -> list[ServerView]:
        """A page of the servers ``user`` sees (its own and those shared to one of
        ``projects``; None: all) that ``query`` asks for (:mod:`nefos.compute.listing`).
        The database filters, sorts and pages: one statement for the page, one for the
        marker's place (it must be a server the caller sees, deleted or not:
        InvalidInput otherwise), one each for flavors, metadata and tags, two for the
        NICs, however many servers there are."""
        seen = listing.visible_to(user, list(projects))
        wanted = [*seen, *listing.conditions(query)]
        columns = listing.sort_columns(query)
        # A detailed listing of a thousand servers is one API call: Core rows rather
        # than ORM objects (identity-mapped instances cost more than the query), and
        # metadata and tags asked for by the page's statement.
        async with self.db.session() as s:
            if query.after is not None:
                keys = [column for column, _ in columns]
                marker = (
                    await s.execute(select(*keys).where(Server.id == query.after, *seen))
                ).first()
                if marker is None:
                    raise errors.InvalidInput(f"marker [{query.after}] not found")
                wanted.append(listing.after(columns, tuple(marker)))
            statement = select(*SERVER_COLUMNS).where(*wanted).order_by(*listing.order(columns))
            if query.limit is not None:
                statement = statement.limit(query.limit)
            try:
                rows = (await s.execute(statement)).all()
            except DataError:  # a pattern PostgreSQL reads otherwise than Python
                raise errors.InvalidInput("Invalid regular expression in a filter") from None
            if not rows:
                return []
            # The page again as a subquery, not its ids as a thousand parameters (binding
            # them cost more than the metadata query itself).
            ids = statement.with_only_columns(Server.id).scalar_subquery()
            flavors = {f.id: f for f in await s.scalars(select(Flavor))}
            metadata: dict[int, dict[str, str]] = {}
            tags: dict[int, list[str]] = {}
            for server_id, key, value in await s.execute(
                select(ServerMetadata.server_id, ServerMetadata.key, ServerMetadata.value).where(
                    ServerMetadata.server_id.in_(ids)
                )
            ):
                metadata.setdefault(server_id, {})[key] = value
            for server_id, tag in await s.execute(
                select(ServerTag.server_id, ServerTag.tag)
                .where(ServerTag.server_id.in_(ids))
                .order_by(ServerTag.tag)
            ):
                tags.setdefault(server_id, []).append(tag)
            volumes = await attachments.of_servers(s, [row.id for row in rows])
        owners = {row.id: row.user_id for row in rows if not row.deleted}
        ports = await self.nics.server_nics(owners)
        views = []
        for row in rows:
            record = ServerRecord(*row)
            meta, labels = metadata.get(record.id, {}), tags.get(record.id, [])
            nics = tuple(ports.get(record.id, []))
            disks = tuple(volumes[record.id])
            version = (tuple(row), tuple(meta.items()), tuple(labels), nics, disks)
            flavor = flavors[record.flavor_id]
            views.append(
                ServerView(
                    record, flavor, meta, labels, [], version=version, nics=nics, volumes=disks
                )
            )
        return views

    async def jobs(self, server_id: int) -> list[BackendJob]:
        async with self.db.session() as s:
            return list(
                await s.scalars(
                    select(BackendJob)
                    .where(BackendJob.server_id == server_id)
                    .order_by(BackendJob.id)
                )
            )
