"""The node and container lookups every part of the namespace walks.

Functions of an open session or connection, not methods: each part (reads, writes,
listings, sharing, containers) calls them inside its own transaction.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from nefos.core import errors
from nefos.storage.models import Node, NodeMeta
from nefos.storage.records import ContainerInfo, container_path
from nefos.storage.statements import NODES, POLICIES, STATS


async def node(s: AsyncSession, path: str) -> Node | None:
    return await s.scalar(select(Node).where(Node.path == path))


async def container_node(s: AsyncSession, account: str, name: str) -> Node:
    found = await node(s, container_path(account, name))
    if found is None:
        raise errors.NotFound(f"No container {name!r}")
    return found


async def ensure_node(s: AsyncSession, path: str, parent_id: int | None) -> tuple[Node, bool]:
    """The node of ``path``, inserted if absent (True). Concurrent writers of the
    same new name both succeed: the insert yields to the other's row, whose row
    lock then orders them, instead of one failing on the unique path."""
    found = await node(s, path)
    if found is not None:
        return found, False
    insert = sqlite_insert if s.bind.dialect.name == "sqlite" else pg_insert
    result = await s.execute(
        insert(Node)
        .values(path=path, parent_id=parent_id)
        .on_conflict_do_nothing(index_elements=["path"])
    )
    found = await node(s, path)
    assert found is not None
    return found, bool(result.rowcount)


async def containers(
    s: AsyncSession, account: str, which: ColumnElement[bool]
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
    metas = await node_meta(s, ids)
    stats = await containers_stats(s, ids)
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


async def node_meta(s: AsyncSession, node_ids: list[int]) -> dict[int, dict[str, str]]:
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


async def container_stats(
    s: AsyncSession | AsyncConnection, node_id: int
) -> tuple[int, int, dt.datetime | None]:
    """Object count and bytes of current versions, and the last change (any cluster)."""
    return (await containers_stats(s, [node_id])).get(node_id, (0, 0, None))


async def containers_stats(
    s: AsyncSession | AsyncConnection, node_ids: list[int]
) -> dict[int, tuple[int, int, dt.datetime | None]]:
    """:func:`container_stats` of many containers, as their writes rolled them up
    (absent: nothing was ever written in it)."""
    if not node_ids:
        return {}
    rows = await s.execute(
        select(STATS.c.node_id, STATS.c.objects, STATS.c.bytes, STATS.c.mtime).where(
            STATS.c.node_id.in_(node_ids)
        )
    )
    return {node: (int(objects), int(size), mtime) for node, objects, size, mtime in rows}
