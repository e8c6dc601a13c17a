"""Blocks uploaded on their own and not used yet: what they cost until used or collected.

Pithos's block upload (``POST <container>`` with raw bytes, kamaki's way to send what a
hashmap PUT found missing) stores bytes before any version names them. Uncharged, that
was storage without a quota: a user with 100 KiB stored 100 MB of blocks this way.

The rule. Each block an upload stores is a row (account, hash, size, project, container,
uploaded_at) written and charged (``pithos.diskspace``, to the account in the project
of the container it was posted to, as a version there would be) in one transaction
*before* the block is stored: past the quota the upload is refused with OverQuota and
that block is not stored. ``size`` is what the store keeps (the block without trailing
zeros; the zero block is never stored and costs nothing). A block the account has
pending already is not charged again (its row is marked as uploaded now). A block
stored already for someone else is charged all the same: the uploader sent the bytes,
and their upload keeps it young. The row goes, and its charge with it,

- when a hashmap PUT of the account that uses the block commits, in the version's
  transaction: the version is charged its size instead, so the bytes count once;
- when gc finds it older than its grace period and its block collected (or gone), or
  used by some version (whose owner pays for it from then on). A block that is still
  stored and unused, because something touched it since, keeps its row: the charge
  lasts as long as the bytes.

The charge is quota usage, so every write's quota check sees it (a user cannot upload
100 KiB of blocks and then a 100 KiB object in a 100 KiB quota), and so does a
container's quota policy for the blocks posted to it. It is no container's bytes:
``X-Account-Bytes-Used`` and ``X-Container-Bytes-Used`` count versions, as in Pithos.

A block already used by a version of the account and posted again is charged again,
until a hashmap PUT uses it or the first gc after the grace period finds it used and
drops its row (the same for a block posted and then sent again in a plain PUT's body):
which blocks a version uses is in its map, in the block store, and reading the
account's maps on each upload would cost more than that brief double charge, which
kamaki never causes (it posts only what the store lacks).

Locks: a writer takes its containers' policy rows, then pending rows in hash order, then
holdings; gc takes pending rows in hash order, then holdings. No two of them can wait
for each other in a circle (PostgreSQL; SQLite's writers take turns).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Row, bindparam, delete, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from nefos.core import errors
from nefos.core.db import Database
from nefos.core.prepared import Prepared
from nefos.quotas.service import Charge, Quotas, charge
from nefos.storage.models import PendingBlock
from nefos.storage.records import CLIENTKEY, RESOURCE

log = logging.getLogger("nefos.storage.pending")

PENDING = PendingBlock.__table__
BATCH = 500  # hashes per IN (...) list, rows per page of gc's expiry


def _new(insert_: Any) -> Prepared:
    return Prepared(
        insert_(PENDING)
        .on_conflict_do_nothing(index_elements=["account", "hash"])
        .returning(PENDING.c.hash)
    )


# A block upload's statements, built once (kamaki posts every block of a file).
_NEW = {"sqlite": _new(sqlite_insert), "postgresql": _new(pg_insert)}
_AGAIN = Prepared(
    update(PENDING)
    .where(PENDING.c.account == bindparam("of_account"), PENDING.c.hash == bindparam("of_hash"))
    .values(uploaded_at=bindparam("now"))
)
_IN_CONTAINER = Prepared(
    select(func.coalesce(func.sum(PENDING.c.size), 0).label("bytes")).where(
        PENDING.c.container_id == bindparam("container")
    )
)


async def record(
    conn: AsyncConnection,
    account: str,
    name: str,
    size: int,
    project: str,
    container_id: int,
    now: dt.datetime,
) -> bool:
    """Note block ``name`` as uploaded by ``account`` now; True if it is new to the
    account's pending blocks (the caller charges it), False if it was pending already."""
    row = {
        "account": account,
        "hash": name,
        "size": size,
        "project": project,
        "container_id": container_id,
        "uploaded_at": now,
    }
    if (await _NEW[conn.dialect.name](conn, row)).first() is not None:
        return True
    await _AGAIN(conn, {"of_account": account, "of_hash": name, "now": now})
    return False


async def in_container(conn: AsyncConnection, container_id: int) -> int:
    """Bytes of the blocks posted to a container that no version uses yet."""
    return int((await _IN_CONTAINER(conn, {"container": container_id})).scalar() or 0)


async def _take(
    conn: AsyncConnection, account: str, hashes: Sequence[str], before: dt.datetime | None
) -> list[Row[Any]]:
    """Delete the account's rows of ``hashes`` (only those uploaded before ``before``, if
    given), locked in hash order first; return them."""
    taken: list[Row[Any]] = []
    ordered = sorted(set(hashes))
    for start in range(0, len(ordered), BATCH):
        chunk = ordered[start : start + BATCH]
        which = [PENDING.c.account == account, PENDING.c.hash.in_(chunk)]
        if before is not None:
            which.append(PENDING.c.uploaded_at < before)
        locked = select(PENDING.c.hash).where(*which).order_by(PENDING.c.hash).with_for_update()
        found = list((await conn.execute(locked)).scalars())
        if not found:
            continue
        gone = await conn.execute(
            delete(PENDING)
            .where(PENDING.c.account == account, PENDING.c.hash.in_(found))
            .returning(PENDING.c.hash, PENDING.c.size, PENDING.c.project)
        )
        taken += gone.all()
    return taken


async def use(conn: AsyncConnection, account: str, hashes: Sequence[str]) -> dict[str, int]:
    """A version of ``account`` that uses ``hashes`` commits in ``conn``: their pending
    rows go; return the bytes to release per project (the version is charged instead)."""
    freed: dict[str, int] = {}
    for row in await _take(conn, account, hashes, None):
        freed[row.project] = freed.get(row.project, 0) + row.size
    return freed


async def held(
    conn: AsyncConnection | AsyncSession, account: str, hashes: Sequence[str]
) -> dict[str, int]:
    """What :func:`use` would release for ``hashes`` now, per project, without taking
    anything: a write's early quota check counts it."""
    asked = sorted(set(hashes))
    found: dict[str, int] = {}
    for start in range(0, len(asked), 500):
        rows = await conn.execute(
            select(PENDING.c.project, func.sum(PENDING.c.size))
            .where(PENDING.c.account == account, PENDING.c.hash.in_(asked[start : start + 500]))
            .group_by(PENDING.c.project)
        )
        for project, size in rows:
            found[project] = found.get(project, 0) + int(size)
    return found


def releases(account: str, freed: dict[str, int]) -> list[Charge]:
    return [
        c
        for project, size in sorted(freed.items())
        for c in charge(account, project, RESOURCE, -size)
    ]


async def expire(
    db: Database,
    quotas: Quotas,
    before: dt.datetime,
    unused: Collection[str],
    dry_run: bool = False,
) -> int:
    """gc's part: drop the rows uploaded before ``before`` whose block is not among
    ``unused`` (those still stored that no version uses), releasing their charge, a
    transaction per account and page; return how many (a dry run: would be). An
    account whose charge cannot be released (its holdings were changed by hand) keeps
    its rows, and is logged."""
    done = 0
    after: tuple[str, str] = ("", "")
    while True:
        async with db.session() as s:
            page = (
                await s.execute(
                    select(PENDING.c.account, PENDING.c.hash)
                    .where(
                        PENDING.c.uploaded_at < before,
                        tuple_(PENDING.c.account, PENDING.c.hash) > tuple_(*after),
                    )
                    .order_by(PENDING.c.account, PENDING.c.hash)
                    .limit(BATCH)
                )
            ).all()
        if not page:
            return done
        after = (page[-1].account, page[-1].hash)
        by_account: dict[str, list[str]] = {}
        for account, name in page:
            if name not in unused:
                by_account.setdefault(account, []).append(name)
        for account, names in by_account.items():
            if dry_run:
                done += len(names)
                continue
            try:
                done += await _expire_account(db, quotas, account, names, before)
            except (errors.OverQuota, errors.NotFound) as exc:
                log.warning("pending blocks of %s kept: %s", account, exc)


async def _expire_account(
    db: Database, quotas: Quotas, account: str, names: list[str], before: dt.datetime
) -> int:
    async with db.write() as conn:
        rows = await _take(conn, account, names, before)  # a row posted again since stays
        freed: dict[str, int] = {}
        for row in rows:
            freed[row.project] = freed.get(row.project, 0) + row.size
        provisions = releases(account, {p: n for p, n in freed.items() if n})
        if provisions:
            await quotas.take(conn, CLIENTKEY, provisions, name=f"pithos {account} blocks")
    return len(rows)
