"""What every part of ``Namespace`` holds, and the lookups more than one part needs.

The namespace is one class made of parts, a module each (STYLE §3: no god modules);
this base declares the attributes they share, so that readers and type checkers see
them in one place, and the node and container lookups they all walk.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from nefos.core import errors
from nefos.core.config import Settings
from nefos.core.db import Database
from nefos.quotas.service import Quotas
from nefos.storage.models import Node, NodeMeta
from nefos.storage.records import (
    ContainerInfo,
    check_account,
    check_container_name,
    check_object_name,
    container_path,
)
from nefos.storage.statements import NODES, POLICIES, STATS
from nefos.storage.stores import BlockStore


class _Nodes:
    """The database, settings, block store and quotas a namespace is made of; the
    lookups of nodes, containers and their statistics every part uses."""

    db: Database
    settings: Settings
    store: BlockStore
    quotas: Quotas

    def __init__(self, db: Database, settings: Settings, store: BlockStore, quotas: Quotas):
        self.db = db
        self.settings = settings
        self.store = store
        self.quotas = quotas

    async def list_containers(self, account: str) -> list[ContainerInfo]:
        check_account(account)
        async with self.db.session() as s:
            account_node = await self._node(s, account)
            if account_node is None:
                return []
            return await self._containers(s, account, NODES.c.parent_id == account_node.id)

    async def container(self, account: str, name: str) -> ContainerInfo:
        """One container with its statistics (what its HEAD, GET and block POST read)."""
        check_account(account)
        async with self.db.session() as s:
            found = await self._containers(
                s, account, NODES.c.path == container_path(account, name)
            )
        if not found:
            raise errors.NotFound(f"No container {name!r}")
        return found[0]

    async def _containers(
        self, s: AsyncSession, account: str, which: ColumnElement[bool]
    ) -> list[ContainerInfo]:
        """The containers ``which`` selects, by name, with their policies, metadata and
        statistics: a few queries whatever their number."""
        rows = (
            await s.execute(
                select(NODES.c.id, NODES.c.path, POLICIES.c.quota)
                .add_columns(POLICIES.c.versioning, POLICIES.c.project)
                .select_from(NODES.join(POLICIES, POLICIES.c.node_id == NODES.c.id))
                .where(which)
            )
        ).all()
        ids = [row.id for row in rows]
        metas = await self._node_meta(s, ids)
        stats = await self._containers_stats(s, ids)
        found = [
            ContainerInfo(
                row.path[len(account) + 1 :],
                *stats.get(row.id, (0, 0, None)),
                quota=row.quota,
                versioning=row.versioning,
                project=row.project,
                meta=metas.get(row.id, {}),
            )
            for row in rows
        ]
        return sorted(found, key=lambda c: c.name)

    async def _node_meta(self, s: AsyncSession, node_ids: list[int]) -> dict[int, dict[str, str]]:
        found: dict[int, dict[str, str]] = {}
        if node_ids:
            rows = await s.execute(
                select(NodeMeta.node_id, NodeMeta.key, NodeMeta.value).where(
                    NodeMeta.node_id.in_(node_ids)
                )
            )
            for node_id, key, value in rows:
                found.setdefault(node_id, {})[key] = value
        return found

    def _check_object_args(self, account: str, container: str, name: str) -> None:
        check_account(account)
        check_container_name(container)
        check_object_name(name)

    async def _node(self, s: AsyncSession, path: str) -> Node | None:
        return await s.scalar(select(Node).where(Node.path == path))

    async def _container_node(self, s: AsyncSession, account: str, name: str) -> Node:
        node = await self._node(s, container_path(account, name))
        if node is None:
            raise errors.NotFound(f"No container {name!r}")
        return node

    async def _container_stats(
        self, s: AsyncSession | AsyncConnection, node_id: int
    ) -> tuple[int, int, dt.datetime | None]:
        """Object count and bytes of current versions, and the last change (any cluster)."""
        return (await self._containers_stats(s, [node_id])).get(node_id, (0, 0, None))

    async def _containers_stats(
        self, s: AsyncSession | AsyncConnection, node_ids: list[int]
    ) -> dict[int, tuple[int, int, dt.datetime | None]]:
        """:meth:`_container_stats` of many containers, as their writes rolled them up
        (absent: nothing was ever written in it)."""
        if not node_ids:
            return {}
        rows = await s.execute(
            select(STATS.c.node_id, STATS.c.objects, STATS.c.bytes, STATS.c.mtime).where(
                STATS.c.node_id.in_(node_ids)
            )
        )
        return {node: (int(objects), int(size), mtime) for node, objects, size, mtime in rows}
