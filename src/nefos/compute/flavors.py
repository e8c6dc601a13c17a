"""Flavors: the sizes a server may have (CPUs, RAM, disk and its template), public or
granted to projects."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from nefos.compute.checks import parse_id
from nefos.compute.models import Flavor, FlavorAccess
from nefos.core import errors
from nefos.core.db import Database

DISK_TEMPLATES = ("file", "diskless", "plain", "drbd", "sharedfile", "rbd", "ext_archipelago")
DEFAULT_FLAVORS = ((1, 1024, 20), (2, 2048, 40), (4, 4096, 80))  # vcpus, MiB, GiB


def flavor_name(vcpus: int, ram: int, disk: int, disk_template: str) -> str:
    return f"C{vcpus}R{ram}D{disk}{disk_template}"


@dataclass(frozen=True)
class FlavorQuery:
    """Which flavors a listing shows (Nova's ``GET /flavors``), by id, how many.

    ``access``: only flavors granted to this project (Synnefo's ``SNF:flavor-access``;
    a caller learns only of its own projects, so another project matches nothing).
    ``public``: only public (True) or only private (False) ones. ``min_disk``,
    ``min_ram``: at least this disk (GiB) and RAM (MiB). ``after``: the marker's id as
    the caller spelled it; it must be a flavor this listing shows (InvalidInput
    otherwise), and the page starts past it. ``limit``: None, no limit."""

    access: str | None = None
    public: bool | None = None
    min_disk: int | None = None
    min_ram: int | None = None
    after: str | None = None
    limit: int | None = None


@dataclass(frozen=True)
class ListedFlavor:
    """A flavor and which of the caller's projects it is granted to."""

    flavor: Flavor
    access: list[str] = field(default_factory=list)


class Flavors:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create_flavor(
        self,
        vcpus: int,
        ram: int,
        disk: int,
        disk_template: str = "file",
        name: str | None = None,
        public: bool = True,
        projects: Iterable[str] = (),
    ) -> Flavor:
        for value, what in ((vcpus, "vcpus"), (ram, "ram"), (disk, "disk")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise errors.InvalidInput(f"A flavor's {what} is a whole number of at least 1")
        if disk_template not in DISK_TEMPLATES and not disk_template.startswith("ext_"):
            raise errors.InvalidInput(f"Unknown disk template {disk_template!r}")
        name = name or flavor_name(vcpus, ram, disk, disk_template)
        async with self.db.transaction() as s:
            clash = await s.scalar(
                select(Flavor).where(
                    (Flavor.name == name)
                    | (
                        (Flavor.vcpus == vcpus)
                        & (Flavor.ram == ram)
                        & (Flavor.disk == disk)
                        & (Flavor.disk_template == disk_template)
                    )
                )
            )
            if clash is not None:
                raise errors.Conflict(f"Flavor {clash.name} exists with these values")
            flavor = Flavor(
                name=name, vcpus=vcpus, ram=ram, disk=disk, disk_template=disk_template,
                public=public,
            )  # fmt: skip
            s.add(flavor)
            await s.flush()
            for project in projects:
                s.add(FlavorAccess(flavor_id=flavor.id, project=project))
        return flavor

    async def ensure_default_flavors(self) -> list[Flavor]:
        """A first deployment gets a few flavors, so a new user can start a server at
        once; an operator's own flavors (or deleting these) are never overridden."""
        async with self.db.session() as s:
            if await s.scalar(select(Flavor.id).limit(1)) is not None:
                return []
        return [
            await self.create_flavor(vcpus, ram, disk, "file")
            for vcpus, ram, disk in DEFAULT_FLAVORS
        ]

    async def flavors(self, projects: Iterable[str] | None = None) -> list[Flavor]:
        """Usable flavors: public ones, and those granted to one of ``projects``
        (None: all, for operators)."""
        async with self.db.session() as s:
            rows = list(
                await s.scalars(select(Flavor).where(Flavor.deleted.is_(False)).order_by(Flavor.id))
            )
            if projects is None:
                return rows
            granted = set(
                await s.scalars(
                    select(FlavorAccess.flavor_id).where(FlavorAccess.project.in_(list(projects)))
                )
            )
        return [f for f in rows if f.public or f.id in granted]

    def _usable(self, projects: Sequence[str]) -> list[ColumnElement[bool]]:
        granted = exists().where(
            FlavorAccess.flavor_id == Flavor.id, FlavorAccess.project.in_(list(projects))
        )
        return [Flavor.deleted.is_(False), Flavor.public.is_(True) | granted]

    async def listing(self, projects: Sequence[str], query: FlavorQuery) -> list[ListedFlavor]:
        """The usable flavors ``query`` shows a member of ``projects``, filtered and paged
        by the database, each with its grants among ``projects``: two statements (three
        with a marker) however many flavors there are."""
        conditions = self._usable(projects)
        if query.access is not None:
            conditions.append(
                exists().where(
                    FlavorAccess.flavor_id == Flavor.id,
                    FlavorAccess.project == query.access,
                    FlavorAccess.project.in_(list(projects)),
                )
            )
        if query.public is not None:
            conditions.append(Flavor.public.is_(query.public))
        if query.min_disk is not None:
            conditions.append(Flavor.disk >= query.min_disk)
        if query.min_ram is not None:
            conditions.append(Flavor.ram >= query.min_ram)
        async with self.db.session() as s:
            if query.after is not None:
                marker = parse_id(query.after)
                found = None
                if marker is not None and str(marker) == query.after:
                    found = await s.scalar(
                        select(Flavor.id).where(Flavor.id == marker, *conditions)
                    )
                if found is None:
                    raise errors.InvalidInput(f"Marker {query.after} not found")
                conditions.append(Flavor.id > marker)
            statement = select(Flavor).where(*conditions).order_by(Flavor.id)
            if query.limit is not None:
                statement = statement.limit(query.limit)
            flavors = list(await s.scalars(statement))
            access = await self._access(s, [f.id for f in flavors], projects)
        return [ListedFlavor(f, access.get(f.id, [])) for f in flavors]

    async def shown(self, flavor_id: int | str, projects: Sequence[str]) -> ListedFlavor:
        """One usable flavor and its grants among ``projects`` (Nova's ``GET
        /flavors/{id}``); NotFound for one the caller may not use."""
        wanted = parse_id(flavor_id)
        if wanted is None:
            raise errors.NotFound(f"No flavor {flavor_id}")
        async with self.db.session() as s:
            flavor = await s.scalar(
                select(Flavor).where(Flavor.id == wanted, *self._usable(projects))
            )
            if flavor is None:
                raise errors.NotFound(f"No flavor {flavor_id}")
            access = await self._access(s, [flavor.id], projects)
        return ListedFlavor(flavor, access.get(flavor.id, []))

    @staticmethod
    async def _access(
        s: AsyncSession, flavor_ids: Sequence[int], projects: Sequence[str]
    ) -> dict[int, list[str]]:
        if not flavor_ids:
            return {}
        rows = await s.execute(
            select(FlavorAccess.flavor_id, FlavorAccess.project)
            .where(
                FlavorAccess.flavor_id.in_(list(flavor_ids)),
                FlavorAccess.project.in_(list(projects)),
            )
            .order_by(FlavorAccess.project)
        )
        found: dict[int, list[str]] = {}
        for flavor_id, project in rows:
            found.setdefault(flavor_id, []).append(project)
        return found

    async def flavor(self, flavor_id: int | str, projects: Iterable[str] | None = None) -> Flavor:
        wanted = parse_id(flavor_id)
        if wanted is None:
            raise errors.NotFound(f"No flavor {flavor_id}")
        for flavor in await self.flavors(projects):
            if flavor.id == wanted:
                return flavor
        raise errors.NotFound(f"No flavor {flavor_id}")

    async def delete_flavor(self, flavor_id: int) -> None:
        async with self.db.transaction() as s:
            flavor = await s.get(Flavor, flavor_id)
            if flavor is None or flavor.deleted:
                raise errors.NotFound(f"No flavor {flavor_id}")
            flavor.deleted = True
            flavor.name = f"deleted:{flavor.id}:{flavor.name}"[:255]
