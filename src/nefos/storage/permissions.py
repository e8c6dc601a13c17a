"""Who else may read or write an object: sharing through account groups, and public links.

``nefos.storage.sharing`` holds the rules over plain data; these are the queries that
feed them, apart from the object reads and writes they guard.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from nefos.core import errors
from nefos.core.db import Database
from nefos.storage import sharing
from nefos.storage.containers import Containers
from nefos.storage.models import GroupMember, Node, Permission, PublicLink, Version
from nefos.storage.reads import Reader, version_rows
from nefos.storage.records import (
    ContainerInfo,
    ObjectRecord,
    ObjectSharing,
    check_object_args,
    container_path,
    object_path,
    version_record,
)
from nefos.storage.sharing import Grants, Sharing
from nefos.storage.statements import SUBJECTS, grants_statement


def _effective(grants: Grants, path: str) -> Sharing:
    nearest = grants.nearest(path)
    if nearest is None:
        return Sharing()
    granted = grants.by_path[nearest]
    return Sharing(
        read=tuple(sorted(granted[sharing.READ] - granted[sharing.WRITE])),
        write=tuple(sorted(granted[sharing.WRITE])),
        path=nearest,
    )


class Permissions:
    """Sharing and public links of objects, and what another user can see by them
    (``reader`` finds the objects they guard, ``containers`` the containers)."""

    def __init__(self, db: Database, reader: Reader, containers: Containers):
        self.db = db
        self.reader = reader
        self.containers = containers

    async def get_object_shared(
        self, user: str, account: str, container: str, name: str
    ) -> tuple[ObjectRecord, ObjectSharing]:
        """:meth:`get_object` and what a reader sees of its sharing (the permissions that
        apply, the public token to the owner, what ``user`` may do to others), in one
        round of reads: every GET and HEAD of a current version asks for both."""
        check_object_args(account, container, name)
        path = object_path(account, container, name)
        token = access = None
        async with self.db.reading() as conn:
            rows = await version_rows(conn, account, container, name, None)
            grants = await read_grants(conn, sharing.ancestry(path))
            if user == account:
                token = rows[0].token
                access = sharing.WRITE
            elif grants.by_path:
                access = grants.access(path, await read_subjects(conn, user, account))
        record = version_record(account, container, name, rows)
        return record, ObjectSharing(_effective(grants, path), token, access)

    async def sharing(self, account: str, container: str, name: str) -> Sharing:
        """The permissions that apply to an object: its own or its nearest ancestor's."""
        check_object_args(account, container, name)
        path = object_path(account, container, name)
        async with self.db.session() as s:
            grants = await read_grants(s, sharing.ancestry(path))
        return _effective(grants, path)

    async def set_sharing(
        self, account: str, container: str, name: str, read: list[str], write: list[str]
    ) -> None:
        """Set (or with both lists empty, clear) the permissions of an existing object."""
        await self.reader.get_object(account, container, name)
        path = object_path(account, container, name)
        async with self.db.transaction() as s:
            await _replace_permissions(s, path, read, write)

    async def share(
        self,
        account: str,
        container: str,
        name: str,
        grants: tuple[list[str], list[str]] | None = None,
        public: bool | None = None,
    ) -> None:
        """What a write's ``X-Object-Sharing`` (``grants``: who reads, who writes) and
        ``X-Object-Public`` ask of the object written, in one transaction; None leaves
        that part as it is."""
        if grants is None and public is None:
            return
        await self.reader.get_object(account, container, name)
        path = object_path(account, container, name)
        async with self.db.transaction() as s:
            if grants is not None:
                await _replace_permissions(s, path, *grants)
            if public is not None:
                await _publish(s, path, public)

    async def access(self, user: str, account: str, container: str, name: str) -> str | None:
        """What ``user`` may do with another account's object: write, read or None."""
        if user == account:
            return sharing.WRITE
        path = object_path(account, container, name)
        async with self.db.session() as s:
            grants = await read_grants(s, sharing.ancestry(path))
            if not grants.by_path:
                return None
            subjects = await read_subjects(s, user, account)
        return grants.access(path, subjects)

    async def require(
        self, user: str, account: str, container: str, name: str, wanted: str
    ) -> None:
        """PermissionDenied unless ``user`` owns the account or is granted ``wanted``."""
        if user == account:
            return
        granted = await self.access(user, account, container, name)
        if granted is None or (wanted == sharing.WRITE and granted != sharing.WRITE):
            raise errors.PermissionDenied(f"You may not {wanted} {container}/{name}")

    async def shared_with(self, user: str) -> list[tuple[str, dt.datetime | None]]:
        """Accounts that share something with ``user`` (top-level GET), by name."""
        async with self.db.session() as s:
            memberships = await s.execute(
                select(GroupMember.account, GroupMember.name).where(GroupMember.member == user)
            )
            subjects = {user, sharing.EVERYONE} | {f"{a}:{g}" for a, g in memberships}
            paths = await s.scalars(
                select(Permission.path).where(Permission.subject.in_(subjects)).distinct()
            )
            accounts = sorted({path.split("/", 1)[0] for path in paths} - {user})
            found = []
            for account in accounts:
                mtime = await s.scalar(
                    select(func.max(Version.mtime))
                    .join(Node, Node.id == Version.node_id)
                    .where(Node.path.startswith(account + "/", autoescape=True))
                )
                found.append((account, mtime))
        return found

    async def visible_containers(self, user: str, account: str) -> list[ContainerInfo]:
        """The containers of ``account`` where ``user`` can read something."""
        grants_by_container: dict[str, Grants] = {}
        async with self.db.session() as s:
            subjects = await read_subjects(s, user, account)
            rows = await s.execute(
                select(Permission.path, Permission.access, Permission.subject).where(
                    Permission.path.startswith(account + "/", autoescape=True)
                )
            )
            for path, access, subject in rows:
                container = path.split("/", 2)[1]
                grants_by_container.setdefault(container, Grants()).add(path, access, subject)
        names = {
            container
            for container, grants in grants_by_container.items()
            if any((g[sharing.READ] | g[sharing.WRITE]) & subjects for g in grants.by_path.values())
        }
        return [c for c in await self.containers.list_containers(account) if c.name in names]

    async def writes_in(self, user: str, account: str, container: str) -> bool:
        """May ``user`` write some object of the container (its owner, or a share with
        write on some path in it)? Pithos's block upload asks no more than that."""
        if user == account:
            return True
        grants, subjects = await self._grants_in(user, account, container)
        return any(g[sharing.WRITE] & subjects for g in grants.by_path.values())

    async def readable_filter(self, user: str, account: str, container: str) -> Any:
        """A predicate on object names: can ``user`` read it (for cross-user listings)?"""
        base = container_path(account, container) + "/"
        grants, subjects = await self._grants_in(user, account, container)
        return lambda name: grants.access(base + name, subjects) is not None

    async def _grants_in(self, user: str, account: str, container: str) -> tuple[Grants, set[str]]:
        """Every grant on a path in the container, and the subjects ``user`` is."""
        base = container_path(account, container) + "/"
        async with self.db.session() as s:
            subjects = await read_subjects(s, user, account)
            rows = await s.execute(
                select(Permission.path, Permission.access, Permission.subject).where(
                    Permission.path.startswith(base, autoescape=True)
                )
            )
            grants = Grants()
            for path, access, subject in rows:
                grants.add(path, access, subject)
        return grants, subjects

    async def shared_names(self, account: str, container: str) -> set[str]:
        """Paths (object names) in a container that carry permissions of their own."""
        return await self._names_in(Permission.path, account, container)

    async def _names_in(self, paths: Any, account: str, container: str) -> set[str]:
        """The names in a container that a table of paths (``paths``, its column) holds."""
        base = container_path(account, container) + "/"
        async with self.db.session() as s:
            found = await s.scalars(select(paths).where(paths.startswith(base, autoescape=True)))
            return {path[len(base) :] for path in found}

    async def public_token(self, account: str, container: str, name: str) -> str | None:
        async with self.db.session() as s:
            link = await s.get(PublicLink, object_path(account, container, name))
        return link.token if link else None

    async def set_public(self, account: str, container: str, name: str, public: bool) -> None:
        """Publish (a random token, kept if already public) or unpublish an object."""
        await self.reader.get_object(account, container, name)
        path = object_path(account, container, name)
        async with self.db.transaction() as s:
            await _publish(s, path, public)

    async def public_names(self, account: str, container: str) -> set[str]:
        """Names in a container published at a public link."""
        return await self._names_in(PublicLink.path, account, container)

    async def resolve_public(self, token: str) -> ObjectRecord:
        """The current version behind a public token; NotFound once unpublished."""
        async with self.db.session() as s:
            link = await s.scalar(select(PublicLink).where(PublicLink.token == token))
        if link is None:
            raise errors.NotFound("No such public object")
        account, container, name = link.path.split("/", 2)
        return await self.reader.get_object(account, container, name)


async def read_grants(s: AsyncSession | AsyncConnection, paths: list[str]) -> Grants:
    grants = Grants()
    asked = {f"path{i}": path for i, path in enumerate(paths)}
    for path, access, subject in await grants_statement(len(paths))(s, asked):
        grants.add(path, access, subject)
    return grants


async def read_subjects(s: AsyncSession | AsyncConnection, user: str, account: str) -> set[str]:
    groups = (await SUBJECTS(s, {"account": account, "member": user})).scalars()
    return sharing.subjects_of(user, {(account, name) for name in groups})


async def _replace_permissions(
    s: AsyncSession, path: str, read: list[str], write: list[str]
) -> None:
    await s.execute(delete(Permission).where(Permission.path == path))
    for access, subjects in ((sharing.READ, read), (sharing.WRITE, write)):
        for subject in dict.fromkeys(subjects):
            s.add(Permission(path=path, access=access, subject=subject))


async def _publish(s: AsyncSession, path: str, public: bool) -> None:
    """A random token, kept if already public; or none."""
    link = await s.get(PublicLink, path)
    if public and link is None:
        s.add(PublicLink(path=path, token=sharing.new_public_token()))
    elif not public and link is not None:
        await s.delete(link)
