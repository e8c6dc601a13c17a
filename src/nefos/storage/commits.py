"""The one transaction every write ends in: the new versions and their quota, together.

Writes follow ``docs/storage-plan.md``: blocks first (durable on return), then the map
under a fresh name, then one transaction that commits the version and its quota
commission together (``Quotas.take``, clientkey ``pithos``). A crash before the
transaction leaves only unreferenced blocks and maps for ``gc``, never a half-visible
object, and no quota serial to reconcile.

Quota (``pithos.diskspace``, charged to the container's project): only current versions
count, as with Synnefo's default ``PITHOS_BACKEND_FREE_VERSIONING``, so a write charges
the size difference to the version it replaces and a delete releases the object's size.
A container's own quota policy (bytes, 0 = unlimited) caps the bytes of its current
versions and of the blocks posted to it that no version uses yet. Those blocks are
charged to the account from their upload on (``nefos.storage.pending``); a hashmap
PUT that uses them releases that charge in the transaction that charges the version.

Apart from the operations that build writes because this is the hot path: a handful of
prepared Core statements per write, in an order every writer shares (no deadlocks).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, update
from sqlalchemy.ext.asyncio import AsyncConnection

from nefos.blocks import EMPTY_HASH
from nefos.core import errors
from nefos.core.db import Database, utcnow
from nefos.quotas.service import Charge, Quotas, charge
from nefos.storage import known, nodes, pending
from nefos.storage.models import CURRENT, DELETED
from nefos.storage.records import (
    CLIENTKEY,
    RESOURCE,
    USER_DOMAIN,
    check_object_args,
    container_path,
    object_path,
)
from nefos.storage.statements import (
    COUNT_KEY,
    COUNT_WRITE,
    CURRENT_OF_PATH,
    DROP_ATTRIBUTES,
    DROP_PERMISSIONS,
    DROP_PUBLIC,
    DROP_UNUSED_KEY,
    DROP_VERSION,
    NEW_ATTRIBUTES,
    NEW_NODE,
    NEW_VERSION,
    NODE_ID,
    PERMISSIONS,
    POLICY,
    POLICY_LOCKED,
    PUBLIC,
    SOURCE_VERSION,
    TO_HISTORY,
    USER_KEYS,
    carried_statement,
)

COMMIT_ATTEMPTS = 30


@dataclass
class VersionData:
    """What a new current version holds (the map and hash are shared by copies)."""

    size: int
    type: str
    hash: str
    checksum: str
    map_name: str
    uuid: uuid.UUID | None  # None: a fresh one
    meta: dict[str, str] | None  # pithos domain; None keeps the source's
    source_serial: int | None = None  # other domains (and meta if None) copied from here
    domains: dict[str, dict[str, str]] | None = None  # whole domains replaced (plankton)
    # blocks this version uses that the account may have pending (a hashmap PUT): their
    # charge goes as the version's comes
    pending: tuple[str, ...] = ()
    # blocks the writing account (and caller) have now had: a hashmap PUT may name them
    # unsent from then on (``nefos.storage.known``)
    known: Sequence[str] = ()


@dataclass
class Write:
    container: str
    name: str
    data: VersionData | None  # None: a deleted marker
    base: int | None = None  # the serial this write was computed from (must still be current)
    moved_from: str | None = None  # a rename: sharing and public link follow from this path


@dataclass(frozen=True)
class Committed:
    """What a write's transaction made: the caller answers from it without a read."""

    serial: int
    uuid: uuid.UUID
    mtime: dt.datetime


@dataclass
class Plan:
    """What a write expects to find: each container's policy row, each path's node
    (None: none yet) and current version (None: none). Read inside the write's own
    transaction, or before it (a big PUT, before its body arrives, to refuse it early),
    in which case the transaction checks it still holds."""

    policies: dict[str, Row[Any]]
    current: dict[tuple[str, str], Row[Any] | None]
    nodes: dict[tuple[str, str], int | None]
    in_transaction: bool = False


class _Raced(Exception):
    """The current version changed between the quota estimate and the commit."""


async def policy(
    conn: AsyncConnection, account: str, container: str, lock: bool = False
) -> Row[Any]:
    """``(id, quota, versioning, project)`` of a container; NotFound if absent.
    ``lock``: in a write transaction, lock the policy row (PostgreSQL), so writers of
    one container check its quota one at a time."""
    query = POLICY_LOCKED if lock else POLICY
    row = (await query(conn, {"path": container_path(account, container)})).first()
    if row is None:
        raise errors.NotFound(f"No container {container!r}")
    return row


async def current(conn: AsyncConnection, path: str) -> Row[Any] | None:
    """The node of ``path`` with its current version's ``(serial, size, uuid)``: one
    row with ``serial`` None when the node has no current version, no row when there
    is no node."""
    return (await CURRENT_OF_PATH(conn, {"path": path})).first()


async def read_plan(
    conn: AsyncConnection,
    account: str,
    targets: list[tuple[str, str]],
    in_transaction: bool = False,
) -> Plan:
    """``in_transaction``: read by the write's own transaction, which locks each
    container's policy row (PostgreSQL) so writers of one container check its quota
    one at a time. The rows are locked in name order, so two writes across the same
    containers (a move each way) wait for each other rather than deadlock."""
    plan = Plan({}, {}, {}, in_transaction)
    for container in sorted({container for container, _ in targets}):
        plan.policies[container] = await policy(conn, account, container, lock=in_transaction)
    for container, name in targets:
        found = await current(conn, object_path(account, container, name))
        plan.nodes[(container, name)] = found.id if found is not None else None
        plan.current[(container, name)] = (
            found if found is not None and found.serial is not None else None
        )
    return plan


async def check_plan(
    conn: AsyncConnection, plan: Plan, writes: list[Write]
) -> tuple[dict[str, int], dict[tuple[str, str], int | None]]:
    """Per project, the quota change of ``writes``; and the current serial each
    write replaces (the commit checks they did not move meanwhile)."""
    deltas: dict[str, int] = {}
    container_deltas: dict[str, int] = {}
    expected: dict[tuple[str, str], int | None] = {}
    for write in writes:
        old = plan.current[(write.container, write.name)]
        if write.base is not None and (old is None or old.serial != write.base):
            raise errors.Conflict(f"{write.container}/{write.name} changed meanwhile")
        if write.data is None and old is None:
            raise errors.NotFound(f"No object {write.container}/{write.name}")
        expected[(write.container, write.name)] = old.serial if old else None
        change = (write.data.size if write.data else 0) - (old.size if old else 0)
        project = plan.policies[write.container].project
        deltas[project] = deltas.get(project, 0) + change
        container_deltas[write.container] = container_deltas.get(write.container, 0) + change
    capped = {
        container: change
        for container, change in container_deltas.items()
        if plan.policies[container].quota and change > 0
    }
    for container, change in capped.items():
        policy = plan.policies[container]
        _, used, _ = await nodes.container_stats(conn, policy.id)
        used += await pending.in_container(conn, policy.id)
        if used + change > policy.quota:
            raise errors.OverQuota(
                f"Container {container!r} quota exceeded",
                data={"limit": policy.quota, "usage": used, "requested": change},
            )
    return deltas, expected


class Commits:
    """Check and commit writes, retried when a concurrent write got there first: the
    one way a version becomes current (writes, copies, moves, deletes, expiry)."""

    def __init__(self, db: Database, quotas: Quotas):
        self.db = db
        self.quotas = quotas

    async def check_growth(
        self, account: str, container: str, name: str, size: int, using: Sequence[str] = ()
    ) -> None:
        """Refuse, before any block or map is stored, a write that would make the object
        ``size`` bytes beyond its container's or its project's quota (the commit checks
        again; a refusal here leaves nothing behind for gc). ``using``: blocks the
        account may have pending, whose charge the version takes over."""
        check_object_args(account, container, name)
        async with self.db.session() as s:  # reads only, on any engine's connection
            conn: Any = s
            plan = await read_plan(conn, account, [(container, name)])
            grown = VersionData(size, "", "", "", "", None, None)
            deltas, _ = await check_plan(conn, plan, [Write(container, name, grown)])
            if using:
                for project, freed in (await pending.held(s, account, using)).items():
                    deltas[project] = deltas.get(project, 0) - freed
            for project, delta in sorted(deltas.items()):
                if delta > 0:
                    await self.quotas.check(conn, charge(account, project, RESOURCE, delta))

    async def commit(
        self, account: str, muser: str, writes: list[Write], plan: Plan | None = None
    ) -> list[Committed]:
        """One transaction for all ``writes`` and the quota of their total size change;
        retried when a concurrent write moved a current version (or the container's
        policy changed) since ``plan`` was read before it."""
        if any(w.data is not None and w.data.pending for w in writes):
            plan = None  # read under the transaction: policies are locked before pending rows
        for attempt in range(COMMIT_ATTEMPTS):
            try:
                return await self._commit_once(account, muser, writes, plan)
            except _Raced:
                plan = None
                # Writers of one name commit one at a time; a jittered pause keeps the
                # losers from meeting again at once.
                await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        raise errors.Conflict("The object changed concurrently; try again")

    async def _commit_once(
        self, account: str, muser: str, writes: list[Write], plan: Plan | None
    ) -> list[Committed]:
        async with self.db.write() as conn:
            if plan is None:
                targets = [(w.container, w.name) for w in writes]
                plan = await read_plan(conn, account, targets, in_transaction=True)
            used = [h for w in writes if w.data is not None for h in w.data.pending]
            freed = await pending.use(conn, account, used) if used else {}
            deltas, expected = await check_plan(conn, plan, writes)
            for project, size in freed.items():
                deltas[project] = deltas.get(project, 0) - size
            provisions: list[Charge] = []
            for project, delta in sorted(deltas.items()):
                if delta:
                    provisions += charge(account, project, RESOURCE, delta)
            done = [await self._apply(conn, account, muser, w, plan, expected) for w in writes]
            for w in writes:
                if w.data is not None and w.data.known:
                    await known.remember(conn, {account, muser}, w.data.known)
            if provisions:  # last: every writer locks policies, then holdings
                await self.quotas.take(conn, CLIENTKEY, provisions, name=f"pithos {account}")
        return done

    async def _apply(
        self,
        conn: AsyncConnection,
        account: str,
        muser: str,
        write: Write,
        plan: Plan,
        expected: dict[tuple[str, str], int | None],
    ) -> Committed:
        """Core statements, a handful per write: this is every PUT's and DELETE's
        transaction, and SQLite runs those one at a time."""
        path = object_path(account, write.container, write.name)
        planned = plan.policies[write.container]
        if plan.in_transaction:  # read under this transaction: it still holds
            container = planned
            node = plan.nodes[(write.container, write.name)]
            old = plan.current[(write.container, write.name)]
        else:
            container = await policy(conn, account, write.container, lock=True)
            if (container.id, container.quota, container.project) != (
                planned.id,
                planned.quota,
                planned.project,
            ):
                raise _Raced()  # the quota was reckoned for another container or project
            found = await current(conn, path)
            node = found.id if found is not None else None
            old = found if found is not None and found.serial is not None else None
            if (old.serial if old else None) != expected[(write.container, write.name)]:
                raise _Raced()
        data = write.data
        if data is not None and data.source_serial is not None:
            # A copy shares the source version's map: the source must still exist when
            # the copy commits, or gc could have taken the map (versioning "none").
            source = (await SOURCE_VERSION(conn, {"source": data.source_serial})).scalar()
            if source is None:
                raise errors.Conflict("The source object changed meanwhile; try again")
        node_id = node if node is not None else await self._insert_node(conn, path, container.id)
        now = utcnow()
        if data is None:
            # Sharing and public links belong to the path and end with the object.
            if old is None or old.shared:
                await DROP_PERMISSIONS(conn, {"path": path})
            if old is None or old.token is not None:
                await DROP_PUBLIC(conn, {"path": path})
            values: dict[str, Any] = {
                "size": 0,
                "type": "",
                "hash": EMPTY_HASH,
                "checksum": "",
                "map_name": "",
                "uuid": old.uuid if old else uuid.uuid4(),
                "cluster": DELETED,
            }
        else:
            values = {
                "size": data.size,
                "type": data.type,
                "hash": data.hash,
                "checksum": data.checksum,
                "map_name": data.map_name,
                # A path keeps its UUID across new versions (Pithos); a fresh path or
                # one re-created after a delete gets a new one.
                "uuid": data.uuid or (old.uuid if old else uuid.uuid4()),
                "cluster": CURRENT,
            }
        serial = (
            await NEW_VERSION(conn, {"node_id": node_id, "mtime": now, "muser": muser, **values})
        ).scalar()
        assert serial is not None
        await COUNT_WRITE[conn.dialect.name](
            conn,
            {
                "container": container.id,
                "objects": (data is not None) - (old is not None),
                "bytes": values["size"] - (old.size if old is not None else 0),
                "mtime": now,
            },
        )
        if data is not None:
            await self._write_attributes(conn, serial, data, old.serial if old else None)
        await self._count_meta_keys(conn, container.id, data, old)
        if write.moved_from is not None:
            # Sharing and the public link belong to the path: a rename takes them along
            # (the source's deleted marker would otherwise drop them).
            await DROP_PERMISSIONS(conn, {"path": path})
            await DROP_PUBLIC(conn, {"path": path})
            await conn.execute(
                update(PERMISSIONS).where(PERMISSIONS.c.path == write.moved_from).values(path=path)
            )
            await conn.execute(
                update(PUBLIC).where(PUBLIC.c.path == write.moved_from).values(path=path)
            )
        if old is not None:
            replaced = {"old_serial": old.serial}
            if container.versioning == "none":
                await DROP_ATTRIBUTES(conn, replaced)
                await DROP_VERSION(conn, replaced)
            else:
                await TO_HISTORY(conn, replaced)
        return Committed(serial, values["uuid"], now)

    async def _count_meta_keys(
        self,
        conn: AsyncConnection,
        container_id: int,
        data: VersionData | None,
        old: Row[Any] | None,
    ) -> None:
        """The container's count of each user metadata key: the new version's keys in,
        the replaced version's out. A new object without metadata costs nothing here."""
        if (
            data is not None
            and old is not None
            and data.meta is None
            and data.source_serial == old.serial
        ):
            return  # another domain changed (an image registered): not the user's
        came: set[str] = set()
        if data is not None:
            came = (
                {key for key in data.meta if not key.startswith(":")}
                if data.meta is not None
                else await self._user_keys(conn, data.source_serial)
            )
        gone = await self._user_keys(conn, old.serial) if old is not None else set()
        for key in sorted(came ^ gone):  # one order for all writers: no deadlock
            change = {"container": container_id, "key": key, "change": 1 if key in came else -1}
            await COUNT_KEY[conn.dialect.name](conn, change)
            if key in gone:
                await DROP_UNUSED_KEY(conn, change)

    async def _user_keys(self, conn: AsyncConnection, serial: int | None) -> set[str]:
        if serial is None:
            return set()
        rows = await USER_KEYS(conn, {"serial": serial})
        return {key for (key,) in rows if not key.startswith(":")}

    async def _insert_node(self, conn: AsyncConnection, path: str, parent_id: int) -> int:
        """A new object node; a concurrent writer of the same new name may have inserted
        it first (PostgreSQL), in which case theirs is used."""
        new_node = NEW_NODE[conn.dialect.name]
        node_id = (await new_node(conn, {"path": path, "parent_id": parent_id})).scalar()
        if node_id is None:
            node_id = (await NODE_ID(conn, {"path": path})).scalar()
        assert node_id is not None
        return node_id

    async def _write_attributes(
        self, conn: AsyncConnection, serial: int, data: VersionData, old: int | None
    ) -> None:
        """Other domains carry forward from the source (copies) or the replaced version
        (new data), copied inside the database; user metadata is replaced by what the
        write gives, and so are the whole domains in ``data.domains``."""
        origin = data.source_serial or old
        replaced = dict(data.domains or {})
        if data.meta is not None:
            replaced[USER_DOMAIN] = data.meta
        if origin is not None:
            carried = {"new_serial": serial, "origin": origin}
            carried.update((f"domain{i}", domain) for i, domain in enumerate(replaced))
            await carried_statement(len(replaced))(conn, carried)
        rows = [
            {"serial": serial, "domain": domain, "key": key, "value": value}
            for domain, values in replaced.items()
            for key, value in values.items()
        ]
        if rows:
            await NEW_ATTRIBUTES(conn, rows)
