"""File storage maintenance for operators: ``fsck`` checks that every version's map and
blocks are whole, ``gc`` deletes the maps and blocks that no version needs any more.

Both read the database and the store of a live deployment (``nefos storage fsck|gc``,
and gc periodically in the API processes: ``[storage] gc_seconds``). Only ``gc`` deletes
from the store; the one database change it makes is to drop the charge of blocks
uploaded on their own (``nefos.storage.pending``) once they are collected or used by
some version, with their quota.

Why gc loses nothing. A write stores its blocks (a block already stored is touched: marked
as put now), puts its map under a fresh name (a one-block version has none: its hash
names its block), then commits the version (docs/storage-plan.md). gc deletes a map or a
block only when

1. no version references it (a block: no map that a version references holds it and no
   one-block version is named by it), as read from the database *after* listing the
   store, and read again just before each batch;
2. it is no block of an unreferenced map put within the grace period (an upload between
   storing its map and committing);
3. the store finds it last put before ``start - grace``, deciding and deleting atomically
   per object (``BlockStore.collect``): a touch racing the delete either comes first
   (the object is young and kept) or finds the object gone (and writes it again).

A reference committed after gc's last database read comes from a write that put or
touched its blocks and map at most one upload's duration before committing. While the
grace period is longer than the longest upload plus the clock skew between the writers
and gc (RADOS mtimes come from the writers' clocks), those are younger than the cutoff
and (3) keeps them. A referenced map that cannot be read stops the block phase: which
blocks it needs is unknown.

A hashmap PUT touches the blocks it finds present (``store.missing(touch=True)``), and
a copy or move checks in its commit that the source version it shares a map with still
exists, so neither can come to reference what gc decided to delete.

Something outside the namespace may reference blocks and maps no version does: a
server's build reads the image version it was created from (``nefos.compute.vmapi``), a
volume's map names blocks of its own (``nefos.volume``). What the caller passes as
``pinned`` counts as referenced, read with the references each time; the composition
root joins every such referrer into one with :func:`pins` (storage imports none of them).
Such a writer follows the rule above: it puts or touches a block before it commits a
reference to it. fsck checks pinned maps and blocks as it checks versions'.

Uploaded blocks no version uses (``nefos.storage.pending``) are garbage like any other:
gc collects them once last put before the cutoff. It then drops the pending rows
uploaded before the cutoff whose block it collected, found gone or found used by a
version, releasing their charge; a row whose block is still stored and unused (touched
since, so kept) stays, so the charge lasts as long as the bytes. A row posted again
after the cutoff is younger than it and stays too, whatever gc decided about its block.

Memory: fsck and gc hold the names of every referenced block (one set), not the maps.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field

from sqlalchemy import BigInteger, cast, delete, literal, or_, select

from nefos import blocks
from nefos.blocks import EMPTY_HASH
from nefos.core import errors
from nefos.core.db import Database, utcnow
from nefos.quotas.service import Quotas
from nefos.storage import nodes, pending
from nefos.storage.commits import Commits, Write
from nefos.storage.models import CURRENT, DELETED, HISTORY, Attribute, Node, Version
from nefos.storage.records import (
    DELETE_AT,
    USER_DOMAIN,
    check_account,
    check_container_name,
    check_object_name,
    object_path,
)
from nefos.storage.statements import ATTRIBUTES, NODES, VERSIONS
from nefos.storage.stores import BlockMissing, BlockStore

DEFAULT_GRACE = dt.timedelta(hours=1)
Pinned = Callable[[], Awaitable[tuple[set[str], set[str]]]]
"""Maps, and blocks, that referrers outside the namespace still need (``VmApi.pinned``,
``Volumes.pinned``), as of the moment it is called."""
VERSION_BATCH = 500  # version rows per query
MAP_READS = 16  # maps read at once
READ_BATCH = 16  # blocks read per round trip by a deep fsck (at most 64 MiB in memory)
NAME_BATCH = 500  # names per presence check, IN (...) query or delete batch

OK, MISSING, CORRUPT = "ok", "missing", "corrupt"


def pins(*referrers: Pinned) -> Pinned:
    """One ``Pinned`` for gc and fsck from several referrers: the union of theirs."""

    async def joined() -> tuple[set[str], set[str]]:
        maps: set[str] = set()
        found: set[str] = set()
        for referrer in referrers:
            more_maps, more_blocks = await referrer()
            maps |= more_maps
            found |= more_blocks
        return maps, found

    return joined


PINNED = "(pinned)"  # the path of a problem with what a referrer outside the namespace pins


@dataclass(frozen=True)
class Problem:
    """Something wrong with one version; ``kind`` is one of ``map-missing``,
    ``map-corrupt``, ``size``, ``hash``, ``blocks-missing``, ``blocks-corrupt``. A
    problem with what ``pinned`` names has serial 0 and the path ``PINNED``; one with
    the extents volume maps name (``Volumes.check_extents``), ``extents-missing``."""

    serial: int
    path: str
    kind: str
    detail: str
    blocks: tuple[str, ...] = ()


@dataclass
class FsckReport:
    """Orphans are no problem (gc's work), so they do not make a report unclean."""

    deep: bool
    versions: int = 0  # version rows with data (all but deleted markers)
    maps: int = 0  # distinct maps they reference (one-block versions have none)
    blocks: int = 0  # distinct blocks those maps reference (the zero block is never stored)
    problems: list[Problem] = field(default_factory=list)
    orphan_maps: list[str] = field(default_factory=list)  # stored, referenced by no version
    orphan_blocks: list[str] = field(default_factory=list)  # stored, in no referenced map

    @property
    def clean(self) -> bool:
        return not self.problems


@dataclass
class GcReport:
    dry_run: bool
    grace: dt.timedelta
    maps: list[str] = field(default_factory=list)  # deleted (a dry run: would be)
    blocks: list[str] = field(default_factory=list)
    maps_kept: int = 0  # unreferenced but young, or referenced again meanwhile
    blocks_kept: int = 0
    uploads: int = 0  # uploaded blocks whose charge was released (a dry run: would be)
    stopped: str = ""  # why the blocks were left alone, if they were


@dataclass(frozen=True)
class _Row:
    serial: int
    path: str
    size: int
    hash: str
    map_name: str


# -- fsck ----------------------------------------------------------------------------------


async def fsck(
    db: Database, store: BlockStore, deep: bool = False, pinned: Pinned | None = None
) -> FsckReport:
    """Check every version that has data (current and history): its map is there and
    fits the version's size and hash, and its blocks are there; ``deep`` also reads every
    block and checks its hash, which reads the whole store. Versions are streamed in
    batches; each distinct block is checked once. What ``pinned`` names is checked the
    same way (its maps readable, its blocks there and whole) and is no orphan."""
    report = FsckReport(deep=deep)
    stored_maps = set(await store.map_names())  # listed first: what is committed later is
    stored_blocks = await store.block_names()  # seen by the scan, never taken for garbage
    referenced: set[str] = set()
    state: dict[str, str] = {}  # referenced block -> OK | MISSING | CORRUPT
    async for rows in _versions(db):
        report.versions += len(rows)
        names = {row.map_name for row in rows if row.map_name}
        referenced |= names
        maps, unreadable = await _read_maps(store, names)
        readable = [row for row in rows if row.map_name not in unreadable]
        fresh = dict.fromkeys(h for row in readable for h in _hashes(row, maps) if h not in state)
        fresh.pop(EMPTY_HASH, None)
        await _check_blocks(store, list(fresh), deep, state)
        for row in rows:
            report.problems += _problems(row, maps, unreadable, state)
    report.problems = await _still_current(db, report.problems)
    if pinned is not None:
        report.problems += await _check_pinned(store, pinned, deep, state, referenced)
    orphans = sorted(stored_maps - referenced)
    # a version committed during the scan may sit below where the scan had got to
    adopted = await _referenced_among(db, orphans)
    adopted_blocks, _ = await _blocks_of(store, adopted)
    unchecked = [name for name in stored_blocks if name not in state]
    adopted_blocks |= await _one_block_hashes(db, among=unchecked)
    report.orphan_maps = [name for name in orphans if name not in adopted]
    report.orphan_blocks = [name for name in unchecked if name not in adopted_blocks]
    report.maps, report.blocks = len(referenced), len(state)
    return report


async def _check_pinned(
    store: BlockStore, pinned: Pinned, deep: bool, state: dict[str, str], referenced: set[str]
) -> list[Problem]:
    """fsck of what referrers outside the namespace pin; ``referenced`` gains their maps.
    Problems with what they stopped pinning during the check are dropped (a volume
    deleted meanwhile, whose blocks gc may then take)."""
    pinned_maps, pinned_blocks = await pinned()
    referenced |= pinned_maps
    maps, unreadable = await _read_maps(store, pinned_maps)
    holders: dict[str, set[str]] = {}  # block -> the pinned maps holding it
    for name, hashes in maps.items():
        for h in hashes:
            holders.setdefault(h, set()).add(name)
    wanted = (set(holders) | pinned_blocks) - {EMPTY_HASH}
    await _check_blocks(store, sorted(h for h in wanted if h not in state), deep, state)
    still_maps, still_blocks = await pinned()

    def still(h: str) -> bool:
        return h in still_blocks or bool(holders.get(h, set()) & still_maps)

    found = []
    for name, why in sorted(unreadable.items()):
        if name in still_maps:
            kind = "map-missing" if why == MISSING else "map-corrupt"
            found.append(Problem(0, PINNED, kind, f"map {name}: {why}"))
    for kind, wanted_state in (("blocks-missing", MISSING), ("blocks-corrupt", CORRUPT)):
        bad = tuple(sorted(h for h in wanted if state[h] == wanted_state and still(h)))
        if bad:
            detail = f"{len(bad)} of {len(wanted)} pinned blocks {wanted_state}"
            found.append(Problem(0, PINNED, kind, detail, bad))
    return found


async def _versions(db: Database) -> AsyncIterator[list[_Row]]:
    after = 0
    while True:
        async with db.session() as s:
            rows = (
                await s.execute(
                    select(Version.serial, Node.path, Version.size, Version.hash, Version.map_name)
                    .join(Node, Node.id == Version.node_id)
                    .where(_HAS_DATA, Version.serial > after)
                    .order_by(Version.serial)
                    .limit(VERSION_BATCH)
                )
            ).all()
        if not rows:
            return
        yield [_Row(*row) for row in rows]
        after = rows[-1].serial


async def _check_blocks(
    store: BlockStore, names: list[str], deep: bool, state: dict[str, str]
) -> None:
    for start in range(0, len(names), NAME_BATCH):
        chunk = names[start : start + NAME_BATCH]
        absent = set(await store.missing(chunk))
        for name in chunk:
            state[name] = MISSING if name in absent else OK
    if not deep:
        return
    present = [name for name in names if state[name] == OK]
    for start in range(0, len(present), READ_BATCH):
        for name, data in await _read_blocks(store, present[start : start + READ_BATCH]):
            if data is None:
                state[name] = MISSING
            elif blocks.block_hash(data) != name:
                state[name] = CORRUPT


async def _read_blocks(store: BlockStore, names: list[str]) -> list[tuple[str, bytes | None]]:
    """Each block's bytes, or None if it went away since its presence was checked."""
    try:
        return list(zip(names, await store.get_blocks(names), strict=True))
    except BlockMissing:
        found: list[tuple[str, bytes | None]] = []
        for name in names:
            try:
                found.append((name, (await store.get_blocks([name]))[0]))
            except BlockMissing:
                found.append((name, None))
        return found


def _hashes(row: _Row, maps: dict[str, list[str]]) -> list[str]:
    return maps[row.map_name] if row.map_name else [row.hash]


def _problems(
    row: _Row, maps: dict[str, list[str]], unreadable: dict[str, str], state: dict[str, str]
) -> list[Problem]:
    if row.map_name in unreadable:
        reason = unreadable[row.map_name]
        kind = "map-missing" if reason == MISSING else "map-corrupt"
        return [Problem(row.serial, row.path, kind, f"map {row.map_name}: {reason}")]
    hashes = _hashes(row, maps)
    source = f"map {row.map_name}" if row.map_name else "the one-block map"
    found = []
    try:
        blocks.check_hashmap(row.size, hashes)
    except ValueError as exc:
        found.append(Problem(row.serial, row.path, "size", f"{source}: {exc}"))
    computed = blocks.merkle(hashes)
    if computed != row.hash:
        detail = f"recorded {row.hash}, {source} gives {computed}"
        found.append(Problem(row.serial, row.path, "hash", detail))
    unique = [h for h in dict.fromkeys(hashes) if h != EMPTY_HASH]
    for kind, wanted in (("blocks-missing", MISSING), ("blocks-corrupt", CORRUPT)):
        bad = tuple(h for h in unique if state[h] == wanted)
        if bad:
            detail = f"{len(bad)} of {len(unique)} blocks {wanted}"
            found.append(Problem(row.serial, row.path, kind, detail, bad))
    return found


async def _still_current(db: Database, problems: list[Problem]) -> list[Problem]:
    """Drop problems of versions removed during the scan (gc may then take their map)."""
    serials = sorted({p.serial for p in problems})
    there: set[int] = set()
    async with db.session() as s:
        for start in range(0, len(serials), NAME_BATCH):
            chunk = serials[start : start + NAME_BATCH]
            there.update(await s.scalars(select(Version.serial).where(Version.serial.in_(chunk))))
    return [p for p in problems if p.serial in there]


# -- gc --------------------------------------------------------------------------------------


async def gc(
    db: Database,
    store: BlockStore,
    grace: dt.timedelta = DEFAULT_GRACE,
    dry_run: bool = False,
    pinned: Pinned | None = None,
    quotas: Quotas | None = None,
) -> GcReport:
    """Delete the maps no version references and the blocks no referenced map holds nor
    one-block version names, when last put more than ``grace`` ago (the module docstring
    argues why that is safe while the cloud runs); what ``pinned`` names is referenced
    too. With ``quotas``, then release the charge of uploaded blocks collected or used
    (the module docstring). A dry run reports the same and changes nothing."""
    if grace < dt.timedelta(0):
        raise ValueError("a negative grace period")
    report = GcReport(dry_run=dry_run, grace=grace)
    cutoff = utcnow() - grace
    stored_maps = await store.map_names()
    stored_blocks = await store.block_names()
    used: set[str] = set()  # blocks that stay

    async def all_referenced() -> set[str]:
        """Referenced maps; with the blocks pins name, ``used`` from then on."""
        maps = await _all_referenced(db)
        if pinned is not None:
            pinned_maps, pinned_blocks = await pinned()
            maps |= pinned_maps
            used.update(pinned_blocks)
        return maps

    referenced = await all_referenced()  # after listing: see the module docstring

    orphans = [name for name in stored_maps if name not in referenced]
    kept: list[str] = []
    for start in range(0, len(orphans), NAME_BATCH):
        batch = orphans[start : start + NAME_BATCH]
        again = await _referenced_among(db, batch)  # a copy may have adopted one
        if pinned is not None:
            again |= (await pinned())[0] & set(batch)
        referenced |= again
        batch = [name for name in batch if name not in again]
        gone = set(await store.collect("map", batch, cutoff, dry_run))
        report.maps += [name for name in batch if name in gone]
        kept += [name for name in batch if name not in gone]
    report.maps_kept = len(orphans) - len(report.maps)

    held, unreadable = await _blocks_of(store, referenced)
    if unreadable:
        report.stopped = _stop_reason("referenced", unreadable)
        return report
    used |= held | await _one_block_hashes(db)
    young, unreadable = await _blocks_of(store, kept)  # uploads in flight
    unreadable = {name: why for name, why in unreadable.items() if why != MISSING}
    if unreadable:
        report.stopped = _stop_reason("young", unreadable)
        return report
    candidates = [name for name in stored_blocks if name not in used and name not in young]
    for start in range(0, len(candidates), NAME_BATCH):
        now = await all_referenced()
        if now - referenced:
            more, unreadable = await _blocks_of(store, now - referenced)
            if unreadable:
                report.stopped = _stop_reason("referenced", unreadable)
                break
            used |= more
            referenced |= now
        batch = [name for name in candidates[start : start + NAME_BATCH] if name not in used]
        used |= await _one_block_hashes(db, among=batch)
        batch = [name for name in batch if name not in used]
        report.blocks += await store.collect("block", batch, cutoff, dry_run)
    unreferenced = len(candidates) + sum(1 for name in stored_blocks if name in young)
    report.blocks_kept = unreferenced - len(report.blocks)
    if quotas is not None and not report.stopped:
        collected = set(report.blocks)
        unused = {name for name in stored_blocks if name not in used and name not in collected}
        report.uploads = await pending.expire(db, quotas, cutoff, unused, dry_run)
    return report


def _stop_reason(which: str, unreadable: dict[str, str]) -> str:
    name, why = sorted(unreadable.items())[0]
    return (
        f"{len(unreadable)} {which} maps cannot be read (map {name}: {why}), so no block "
        "was deleted: run fsck"
    )


# -- shared ----------------------------------------------------------------------------------


async def _all_referenced(db: Database) -> set[str]:
    async with db.session() as s:
        names = await s.scalars(select(Version.map_name).where(Version.map_name != "").distinct())
        return set(names)


# a version whose map is in the store, or a one-block version (map_name "")
_HAS_DATA = or_(Version.map_name != "", Version.cluster != DELETED)
_ONE_BLOCK = (Version.map_name == "") & (Version.cluster != DELETED)


async def _one_block_hashes(db: Database, among: Sequence[str] | None = None) -> set[str]:
    """The blocks that one-block versions are named by (all, or those ``among``)."""
    query = select(Version.hash).where(_ONE_BLOCK).distinct()
    if among is None:
        queries = [query]
    else:
        chunks = [among[start : start + NAME_BATCH] for start in range(0, len(among), NAME_BATCH)]
        queries = [query.where(Version.hash.in_(chunk)) for chunk in chunks]
    found: set[str] = set()
    async with db.session() as s:
        for each in queries:
            found.update(await s.scalars(each))
    found.discard(EMPTY_HASH)
    return found


async def _referenced_among(db: Database, names: Sequence[str]) -> set[str]:
    found: set[str] = set()
    async with db.session() as s:
        for start in range(0, len(names), NAME_BATCH):
            chunk = names[start : start + NAME_BATCH]
            query = select(Version.map_name).where(Version.map_name.in_(chunk)).distinct()
            found.update(await s.scalars(query))
    return found


async def _read_maps(
    store: BlockStore, names: Collection[str]
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The hashes of each map, and why each of the others cannot be read (MISSING or
    a decoding error), a few maps at a time."""

    async def one(name: str) -> list[str] | str:
        try:
            return await store.get_map(name)
        except BlockMissing:
            return MISSING
        except ValueError as exc:
            return f"corrupt ({exc})"

    ordered = sorted(names)
    maps: dict[str, list[str]] = {}
    unreadable: dict[str, str] = {}
    for start in range(0, len(ordered), MAP_READS):
        chunk = ordered[start : start + MAP_READS]
        for name, got in zip(chunk, await asyncio.gather(*map(one, chunk)), strict=True):
            if isinstance(got, str):
                unreadable[name] = got
            else:
                maps[name] = got
    return maps, unreadable


async def _blocks_of(store: BlockStore, names: Collection[str]) -> tuple[set[str], dict[str, str]]:
    """Every block the maps ``names`` hold, reading them a batch at a time, and the maps
    that cannot be read."""
    found: set[str] = set()
    unreadable: dict[str, str] = {}
    ordered = sorted(names)
    for start in range(0, len(ordered), VERSION_BATCH):
        maps, failed = await _read_maps(store, ordered[start : start + VERSION_BATCH])
        for hashes in maps.values():
            found.update(hashes)
        unreadable |= failed
    found.discard(EMPTY_HASH)
    return found, unreadable


class Maintenance:
    """The namespace's own housekeeping, as opposed to the store's (fsck and gc above):
    deleting expired objects, and purging history a user asks to drop."""

    def __init__(self, db: Database, commits: Commits):
        self.db = db
        self.commits = commits

    async def expire(self, now: float, batch: int = 500) -> int:
        """Delete the objects whose ``DELETE_AT`` has passed (Swift's expirer); returns
        how many. Each delete is of the version found, so one rewritten meanwhile stays,
        and concurrent expirers (API workers) only race to the same result."""
        query = (
            select(NODES.c.path, VERSIONS.c.serial)
            .select_from(
                VERSIONS.join(NODES, NODES.c.id == VERSIONS.c.node_id).join(
                    ATTRIBUTES, ATTRIBUTES.c.serial == VERSIONS.c.serial
                )
            )
            .where(
                VERSIONS.c.cluster == CURRENT,
                ATTRIBUTES.c.domain == USER_DOMAIN,
                # A literal, as in the partial index's predicate, so that PostgreSQL's
                # generic plans can use the index (a parameter could be any key).
                ATTRIBUTES.c.key == literal(DELETE_AT, literal_execute=True),
                ATTRIBUTES.c.value != "",
                cast(ATTRIBUTES.c.value, BigInteger) <= int(now),
            )
            .limit(batch)
        )
        async with self.db.session() as s:
            expired = (await s.execute(query)).all()
        done = 0
        for path, serial in expired:
            account, container, name = path.split("/", 2)
            try:
                await self.commits.commit(account, "", [Write(container, name, None, base=serial)])
                done += 1
            except (errors.NotFound, errors.Conflict):
                pass  # deleted or rewritten since
        return done

    async def purge(
        self, account: str, container: str, name: str | None, until: dt.datetime
    ) -> int:
        """Drop history and deleted markers older than ``until`` (spec: ``DELETE
        ?until``), of one object or a whole container; their blocks are left for gc.
        Current versions are never touched, so quotas do not change."""
        check_account(account)
        check_container_name(container)
        async with self.db.transaction() as s:
            parent = await nodes.container_node(s, account, container)
            below = select(Node.id).where(Node.parent_id == parent.id)
            if name is not None:
                check_object_name(name)
                below = below.where(Node.path == object_path(account, container, name))
            serials = select(Version.serial).where(
                Version.node_id.in_(below.scalar_subquery()),
                Version.cluster.in_((HISTORY, DELETED)),
                Version.mtime <= until,
            )
            found = list(await s.scalars(serials))
            for start in range(0, len(found), 500):
                batch = found[start : start + 500]
                await s.execute(delete(Attribute).where(Attribute.serial.in_(batch)))
                await s.execute(delete(Version).where(Version.serial.in_(batch)))
            return len(found)
