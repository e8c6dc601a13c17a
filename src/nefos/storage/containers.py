"""Containers and accounts: their policies, metadata, groups and totals.

Apart from objects because they change rarely and on their own; the object parts only
look containers up (``nefos.storage.nodes``).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nefos.core import errors
from nefos.core.db import Database, utcnow
from nefos.quotas.service import Quotas, user_holder
from nefos.storage import nodes, sharing
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
from nefos.storage.records import (
    MAX_META_KEYS,
    RESOURCE,
    VERSIONING,
    AccountInfo,
    ContainerInfo,
    check_account,
    check_container_name,
    check_meta,
    container_path,
)
from nefos.storage.statements import COUNT_WRITE, NODES


class Containers:
    """Create, change, list and delete containers; an account's metadata, groups and
    totals (quota limits come from ``quotas``)."""

    def __init__(self, db: Database, quotas: Quotas):
        self.db = db
        self.quotas = quotas

    async def list_containers(self, account: str) -> list[ContainerInfo]:
        check_account(account)
        async with self.db.session() as s:
            account_node = await nodes.node(s, account)
            if account_node is None:
                return []
            return await nodes.containers(s, account, NODES.c.parent_id == account_node.id)

    async def container(self, account: str, name: str) -> ContainerInfo:
        """One container with its statistics (what its HEAD, GET and block POST read)."""
        check_account(account)
        async with self.db.session() as s:
            found = await nodes.containers(
                s, account, NODES.c.path == container_path(account, name)
            )
        if not found:
            raise errors.NotFound(f"No container {name!r}")
        return found[0]

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
                await nodes.container_node(s, account, name)  # NotFound if absent
            account_node, _ = await nodes.ensure_node(s, account, None)
            path = container_path(account, name)
            node, created = await nodes.ensure_node(s, path, account_node.id)
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
            node = await nodes.container_node(s, account, name)
            count, _, _ = await nodes.container_stats(s, node.id)
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
            node = await nodes.node(s, account)
            meta = (await nodes.node_meta(s, [node.id])).get(node.id, {}) if node else {}
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
            node, _ = await nodes.ensure_node(s, account, None)
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
            node = await nodes.container_node(s, account, container)
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
