"""The storage namespace (Pithos backend): containers, objects, versions, over a block store.

``Namespace`` is the one class callers use. Its parts live in modules of their own
(STYLE §3: no god modules), and it inherits them:

- ``nefos.storage.nodes``: the attributes every part holds and the lookups they share;
- ``nefos.storage.reads``: a version, its metadata and its bytes;
- ``nefos.storage.listings``: a container's objects by name, a page at a time;
- ``nefos.storage.permissions``: sharing and public links;
- ``nefos.storage.writes``: new versions (data, copies, moves, metadata, expiry);
- ``nefos.storage.commits``: the one transaction every write ends in, with its quota.

Containers and accounts are here. The records and checks (``nefos.storage.records``) are
imported from here too, as they always were; the statements of small requests are built
once in ``nefos.storage.statements``.

Every method raises domain errors only: InvalidInput (names, metadata, hashmaps),
NotFound, Conflict (non-empty container, missing blocks with ``data["missing"]``),
OverQuota.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from nefos.core import errors
from nefos.core.db import utcnow
from nefos.quotas.service import user_holder
from nefos.storage import sharing
from nefos.storage.commits import _Commits
from nefos.storage.listings import _Listings
from nefos.storage.models import (
    Attribute,
    ContainerMetaKey,
    ContainerStats,
    GroupMember,
    Node,
    NodeMeta,
    PendingBlock,
    Permission,
    Policy,
    PublicLink,
    Version,
)
from nefos.storage.nodes import _Nodes
from nefos.storage.permissions import _Permissions
from nefos.storage.reads import _Reads
from nefos.storage.records import (
    DELETE_AT,
    MAX_META_KEYS,
    RESOURCE,
    VERSION_FIELDS,
    VERSIONING,
    AccountInfo,
    ContainerInfo,
    ObjectRecord,
    ObjectSharing,
    Subdir,
    check_account,
    check_container_name,
    check_meta,
    check_object_name,
    check_type,
    container_path,
    expired,
)
from nefos.storage.statements import COUNT_WRITE
from nefos.storage.writes import _Writes

__all__ = [
    "DELETE_AT",
    "VERSION_FIELDS",
    "AccountInfo",
    "ContainerInfo",
    "Namespace",
    "ObjectRecord",
    "ObjectSharing",
    "Subdir",
    "check_account",
    "check_container_name",
    "check_meta",
    "check_object_name",
    "check_type",
    "expired",
]


class Namespace(_Listings, _Permissions, _Writes, _Reads, _Commits, _Nodes):
    """Containers, objects and their versions, sharing and quota, of every account: the
    one class callers use, made of the parts the module docstring lists."""

    # -- containers ----------------------------------------------------------------------

    async def create_container(
        self,
        account: str,
        name: str,
        policies: dict[str, Any] | None = None,
        meta: dict[str, str] | None = None,
        create: bool = True,
    ) -> bool:
        """Create a container (True) or update the given policies of an existing one
        (False), so the API can answer 201 or 202; ``create=False`` only updates
        (NotFound if absent). ``meta`` is merged into its metadata (an empty value
        removes a key) in the same transaction: bad metadata leaves nothing changed."""
        check_account(account)
        check_container_name(name)
        meta = check_meta(meta)
        policies = dict(policies or {})
        unknown = set(policies) - {"quota", "versioning", "project"}
        if unknown:
            raise errors.InvalidInput(f"Unknown container policies: {sorted(unknown)}")
        if "quota" in policies:
            quota = policies["quota"]
            if isinstance(quota, bool) or not isinstance(quota, int) or quota < 0:
                raise errors.InvalidInput("The quota policy is a byte count (0 = unlimited)")
        if "versioning" in policies and policies["versioning"] not in VERSIONING:
            raise errors.InvalidInput("The versioning policy is auto or none")
        if "project" in policies:
            try:
                policies["project"] = str(uuid.UUID(str(policies["project"])))
            except ValueError:
                raise errors.InvalidInput("The project policy is a project UUID") from None
        async with self.db.transaction() as s:
            if not create:
                await self._container_node(s, account, name)  # NotFound if absent
            account_node, _ = await self._ensure_node(s, account, None)
            path = container_path(account, name)
            node, created = await self._ensure_node(s, path, account_node.id)
            if not created:
                policy = await s.get(Policy, node.id, with_for_update=True)
                assert policy is not None
                for key, value in policies.items():
                    setattr(policy, key, value)
            else:
                s.add(
                    Policy(
                        node_id=node.id,
                        quota=policies.get("quota", 0),
                        versioning=policies.get("versioning", "auto"),
                        project=policies.get("project", account),
                    )
                )
            if meta:
                await self._write_node_meta(s, node.id, meta, replace=False)
            await self._touch_container(s, node.id)
            return created

    async def _touch_container(self, s: AsyncSession, node_id: int) -> None:
        """The container itself changed (created, re-PUT, metadata or policies): its
        Last-Modified moves, as it does for a write inside it."""
        change = {"container": node_id, "objects": 0, "bytes": 0, "mtime": utcnow()}
        await COUNT_WRITE[s.bind.dialect.name](s, change)

    async def delete_container(self, account: str, name: str) -> None:
        """Delete an empty container with its history; Conflict while objects remain."""
        check_account(account)
        check_container_name(name)
        async with self.db.transaction() as s:
            node = await self._container_node(s, account, name)
            count, _, _ = await self._container_stats(s, node.id)
            if count:
                raise errors.Conflict(f"Container {name!r} is not empty")
            children = select(Node.id).where(Node.parent_id == node.id).scalar_subquery()
            serials = select(Version.serial).where(Version.node_id.in_(children))
            await s.execute(delete(Attribute).where(Attribute.serial.in_(serials)))
            await s.execute(delete(Version).where(Version.node_id.in_(children)))
            await s.execute(delete(Node).where(Node.parent_id == node.id))
            await s.execute(delete(Policy).where(Policy.node_id == node.id))
            await s.execute(delete(ContainerStats).where(ContainerStats.node_id == node.id))
            await s.execute(delete(ContainerMetaKey).where(ContainerMetaKey.node_id == node.id))
            await s.execute(delete(NodeMeta).where(NodeMeta.node_id == node.id))
            # Blocks posted to it stay charged until used or collected, but no longer
            # count in a container that may be given this node's id again.
            await s.execute(
                update(PendingBlock)
                .where(PendingBlock.container_id == node.id)
                .values(container_id=None)
            )
            await s.execute(delete(Node).where(Node.id == node.id))
            below = node.path + "/"
            await s.execute(delete(Permission).where(Permission.path.startswith(below)))
            await s.execute(delete(PublicLink).where(PublicLink.path.startswith(below)))

    # -- accounts and container metadata ------------------------------------------------

    async def account(self, account: str) -> AccountInfo:
        """Totals, metadata and groups of an account (all zero before its first write)."""
        check_account(account)
        containers = await self.list_containers(account)
        async with self.db.session() as s:
            node = await self._node(s, account)
            meta = (await self._node_meta(s, [node.id])).get(node.id, {}) if node else {}
            groups = await self._groups(s, account)
        modified = [c.last_modified for c in containers if c.last_modified]
        holdings = await self.quotas.holdings(holders=[user_holder(account)])
        quotas = {
            h.source.removeprefix("project:"): h.limit
            for h in holdings
            if h.resource == RESOURCE and h.source and h.source.startswith("project:")
        }
        return AccountInfo(
            quotas=quotas,
            containers=len(containers),
            objects=sum(c.count for c in containers),
            bytes=sum(c.bytes for c in containers),
            last_modified=max(modified) if modified else None,
            meta=meta,
            groups=groups,
            listing=containers,
        )

    async def set_account_meta(
        self,
        account: str,
        meta: dict[str, str] | None = None,
        groups: dict[str, list[str]] | None = None,
        replace: bool = False,
    ) -> None:
        """Spec §1.3: with ``replace`` the given metadata (and, if any group is given,
        groups) replace all; otherwise they merge and an empty value deletes."""
        check_account(account)
        meta = check_meta(meta)
        groups = dict(groups or {})
        for name, members in groups.items():
            sharing.check_group_name(name)
            sharing.check_members(members)
        async with self.db.transaction() as s:
            node, _ = await self._ensure_node(s, account, None)
            await self._write_node_meta(s, node.id, meta, replace)
            if groups or not replace:
                if replace:
                    await s.execute(delete(GroupMember).where(GroupMember.account == account))
                for name, members in groups.items():
                    await s.execute(
                        delete(GroupMember).where(
                            GroupMember.account == account, GroupMember.name == name
                        )
                    )
                    for member in dict.fromkeys(members):
                        s.add(GroupMember(account=account, name=name, member=member))
                await s.flush()
                count = await s.scalar(
                    select(func.count(func.distinct(GroupMember.name))).where(
                        GroupMember.account == account
                    )
                )
                if (count or 0) > sharing.MAX_GROUPS:
                    raise errors.InvalidInput(f"At most {sharing.MAX_GROUPS} groups per account")

    async def set_container_meta(
        self, account: str, container: str, meta: dict[str, str], replace: bool = False
    ) -> None:
        check_account(account)
        check_container_name(container)
        meta = check_meta(meta)
        async with self.db.transaction() as s:
            node = await self._container_node(s, account, container)
            await self._write_node_meta(s, node.id, meta, replace)
            await self._touch_container(s, node.id)

    async def _write_node_meta(
        self, s: AsyncSession, node_id: int, meta: dict[str, str], replace: bool
    ) -> None:
        if replace:
            await s.execute(delete(NodeMeta).where(NodeMeta.node_id == node_id))
        for key, value in meta.items():
            await s.execute(
                delete(NodeMeta).where(NodeMeta.node_id == node_id, NodeMeta.key == key)
            )
            if value:
                s.add(NodeMeta(node_id=node_id, key=key, value=value))
        await s.flush()
        count = await s.scalar(select(func.count()).where(NodeMeta.node_id == node_id))
        if (count or 0) > MAX_META_KEYS:
            raise errors.InvalidInput(f"At most {MAX_META_KEYS} metadata keys")

    async def _groups(self, s: AsyncSession, account: str) -> dict[str, list[str]]:
        rows = await s.execute(
            select(GroupMember.name, GroupMember.member)
            .where(GroupMember.account == account)
            .order_by(GroupMember.name, GroupMember.member)
        )
        groups: dict[str, list[str]] = {}
        for name, member in rows:
            groups.setdefault(name, []).append(member)
        return groups

    async def _ensure_node(
        self, s: AsyncSession, path: str, parent_id: int | None
    ) -> tuple[Node, bool]:
        """The node of ``path``, inserted if absent (True). Concurrent writers of the
        same new name both succeed: the insert yields to the other's row, whose row
        lock then orders them, instead of one failing on the unique path."""
        node = await self._node(s, path)
        if node is not None:
            return node, False
        insert = sqlite_insert if s.bind.dialect.name == "sqlite" else pg_insert
        result = await s.execute(
            insert(Node)
            .values(path=path, parent_id=parent_id)
            .on_conflict_do_nothing(index_elements=["path"])
        )
        node = await self._node(s, path)
        assert node is not None
        return node, bool(result.rowcount)
