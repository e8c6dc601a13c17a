"""Listing a container's objects by name, a page at a time.

Apart because paging is an algorithm of its own: bounds that move with each page,
virtual directories whose members are jumped over, Swift's reversed order, and the
container as it was at a time, over the same bounds.
"""

from __future__ import annotations

import datetime as dt
import operator
from bisect import bisect_left, bisect_right
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from nefos.core import errors
from nefos.core.db import Database
from nefos.storage import nodes
from nefos.storage.models import CURRENT, DELETED
from nefos.storage.records import (
    USER_DOMAIN,
    ObjectRecord,
    Subdir,
    check_account,
    check_container_name,
    container_path,
    object_record,
)
from nefos.storage.statements import ATTRIBUTES, META_KEYS, NODES, RECORD_COLUMNS, VERSIONS

LISTING_PAGE = 1000  # rows a listing reads per query
DELIMITED_PAGE = 50  # the same with a delimiter, where a subdir's members are jumped
LAST_CHARACTER = chr(0x10FFFF)
SURROGATES = range(0xD800, 0xE000)
_path_of = operator.attrgetter("path")


@dataclass(frozen=True)
class _Bound:
    """One end of the names a listing reads next (full paths)."""

    path: str
    inclusive: bool


def _successor(text: str) -> str | None:
    """The least string after every string that starts with ``text`` (None: there is
    none, ``text`` ends in the last code point)."""
    if text[-1] == LAST_CHARACTER:
        return None
    following = ord(text[-1]) + 1
    if SURROGATES[0] <= following <= SURROGATES[-1]:  # no text holds them: skip them
        following = SURROGATES[-1] + 1
    return text[:-1] + chr(following)


def _subdir(name: str, prefix: str, delimiter: str | None) -> str | None:
    """The virtual directory ``name`` rolls up into: cut after the first delimiter past
    the prefix, when something follows it (an object named like a subdir is itself)."""
    if not delimiter:
        return None
    cut = name.find(delimiter, len(prefix))
    if cut < 0 or cut + len(delimiter) == len(name):
        return None
    return name[: cut + len(delimiter)]


class Lister:
    """Objects by name, and the metadata keys they use."""

    def __init__(self, db: Database):
        self.db = db

    async def list_objects(
        self,
        account: str,
        container: str,
        prefix: str = "",
        delimiter: str | None = None,
        marker: str | None = None,
        limit: int = 10000,
        end_marker: str | None = None,
        visible: Callable[[str], bool] | None = None,
        with_meta: bool = False,
        keep: Callable[[ObjectRecord], bool] | None = None,
        until: dt.datetime | None = None,
        reverse: bool = False,
    ) -> list[ObjectRecord | Subdir]:
        """Current objects by name (code point order; descending with ``reverse``, where
        names come below ``marker`` and above ``end_marker``, as in Swift), with virtual
        directories when a delimiter is given (an object of the same name wins over its
        subdir).
        ``visible`` filters names before they are grouped (what another user may see);
        ``keep`` filters objects (with their metadata if ``with_meta``). ``until``: the
        container as it was then (spec §1.6), from history and deleted markers.

        The names are read a page at a time from the marker on, and a subdir's other
        members are jumped over, so a page of a big container costs about its own size."""
        check_account(account)
        check_container_name(container)
        if limit < 0:
            raise errors.InvalidInput("A negative limit")
        base = container_path(account, container) + "/"
        # Reversed, Swift's marker bounds the names from above and end_marker from below.
        lowest, highest = (end_marker, marker) if reverse else (marker, end_marker)
        low = _Bound(base + lowest, False) if lowest is not None else None
        high = _Bound(base + highest, False) if highest is not None else None
        found: list[ObjectRecord | Subdir] = []
        seen: set[str] = set()  # names listed: an object's name wins over a subdir's
        async with self.db.session() as s:
            node = await nodes.container_node(s, account, container)
            if until is None:
                rows_between = _current_rows(s, base + prefix, reverse)
            else:
                rows_between = await _rows_until(s, node.id, base + prefix, until, reverse)
            while len(found) < limit:
                # Delimited, a page may end at the first subdir: read less at a time.
                size = DELIMITED_PAGE if delimiter else LISTING_PAGE
                if visible is None and keep is None:  # else rows may be dropped: read on
                    size = min(size, limit - len(found))
                rows = await rows_between(low, high, size)
                metas = await user_meta(s, [r.serial for r in rows]) if with_meta else {}
                jumped = False  # the rest of the page is the subdir's: read on past it
                for row in rows:
                    if jumped:
                        break
                    if reverse:
                        high = _Bound(row.path, False)
                    else:
                        low = _Bound(row.path, False)
                    name = row.path[len(base) :]
                    if visible is not None and not visible(name):
                        continue
                    entry: ObjectRecord | Subdir
                    subdir = _subdir(name, prefix, delimiter)
                    if subdir is None:
                        entry = object_record(
                            account, container, name, row, metas.get(row.serial, {})
                        )
                    else:
                        # Its other members come next in name order: skip them all.
                        if reverse:
                            high, jumped = _Bound(base + subdir, False), True
                        elif (beyond := _successor(base + subdir)) is not None:
                            low, jumped = _Bound(beyond, True), True
                        if subdir in seen:
                            continue
                        entry = Subdir(subdir)
                        point = _Bound(base + subdir, True)
                        # Reversed, an object of that name comes after its members.
                        if (
                            reverse
                            and (visible is None or visible(subdir))
                            and (named := await rows_between(point, point, 1))
                        ):
                            (row,) = named
                            meta = await user_meta(s, [row.serial]) if with_meta else {}
                            entry = object_record(
                                account, container, subdir, row, meta.get(row.serial, {})
                            )
                    if entry.name in seen:
                        continue
                    if marker is not None and (
                        entry.name >= marker if reverse else entry.name <= marker
                    ):
                        continue
                    if end_marker is not None and (
                        entry.name <= end_marker if reverse else entry.name >= end_marker
                    ):
                        return found
                    seen.add(entry.name)
                    if isinstance(entry, ObjectRecord) and keep is not None and not keep(entry):
                        continue
                    found.append(entry)
                    if len(found) >= limit:
                        break
                if len(rows) < size and not jumped:
                    break
        return found

    async def object_meta_keys(self, account: str, container: str) -> list[str]:
        """The user metadata keys the container's current objects use (spec §1.4's
        ``X-Container-Object-Meta``), from the counts writes keep."""
        check_account(account)
        check_container_name(container)
        async with self.db.session() as s:
            rows = await s.execute(
                select(META_KEYS.c.key)
                .join(NODES, NODES.c.id == META_KEYS.c.node_id)
                .where(
                    NODES.c.path == container_path(account, container),
                    META_KEYS.c.objects > 0,
                )
                .order_by(META_KEYS.c.key)
            )
            return [key for (key,) in rows]

    async def version_attributes(
        self, serials: list[int], keys: tuple[str, ...]
    ) -> dict[int, dict[str, str]]:
        """The values of a few user-domain ``keys`` of many versions (a listing page that
        shows what some objects keep in metadata)."""
        async with self.db.session() as s:
            return await user_meta(s, serials, keys)


def _current_rows(
    s: AsyncSession, under: str, reverse: bool
) -> Callable[[_Bound | None, _Bound | None, int], Awaitable[Sequence[Row[Any]]]]:
    """Reads of current versions below ``under`` in name order, between bounds: a
    range of paths, read off the unique index of paths in order (code points, as
    Swift orders names: SQLite's binary collation, PostgreSQL's ``C``, migration
    0010), so a page costs its own size whatever the container's."""
    path = NODES.c.path
    query = (
        select(path, *RECORD_COLUMNS)
        .select_from(NODES.join(VERSIONS, VERSIONS.c.node_id == NODES.c.id))
        .where(VERSIONS.c.cluster == CURRENT, path >= under)
        .order_by(path.desc() if reverse else path)
    )
    if (beyond := _successor(under)) is not None:
        query = query.where(path < beyond)
    else:  # nothing sorts after the prefix's names alone: match the prefix
        query = query.where(path.startswith(under, autoescape=True))

    async def between(low: _Bound | None, high: _Bound | None, count: int) -> Sequence[Row[Any]]:
        bounded = query.limit(count)
        if low is not None:
            bounded = bounded.where(path >= low.path if low.inclusive else path > low.path)
        if high is not None:
            bounded = bounded.where(path <= high.path if high.inclusive else path < high.path)
        return (await s.execute(bounded)).all()

    return between


async def _rows_until(
    s: AsyncSession, parent: int, under: str, until: dt.datetime, reverse: bool
) -> Callable[[_Bound | None, _Bound | None, int], Awaitable[Sequence[Row[Any]]]]:
    """:func:`_current_rows` of the container as it was at ``until``: each path's
    last version by then, unless that was its deletion (history is not indexed by
    time, so this reads every version below ``under`` once)."""
    query = (
        select(NODES.c.path, *RECORD_COLUMNS)
        .select_from(NODES.join(VERSIONS, VERSIONS.c.node_id == NODES.c.id))
        .where(NODES.c.parent_id == parent, VERSIONS.c.mtime <= until)
        .where(NODES.c.path.startswith(under, autoescape=True))
    )
    latest: dict[str, Row[Any]] = {}
    for row in (await s.execute(query)).all():
        if row.path not in latest or row.serial > latest[row.path].serial:
            latest[row.path] = row
    rows = sorted((r for r in latest.values() if r.cluster != DELETED), key=_path_of)
    paths = [row.path for row in rows]

    async def between(low: _Bound | None, high: _Bound | None, count: int) -> Sequence[Row[Any]]:
        first = (
            0 if low is None else (bisect_left if low.inclusive else bisect_right)(paths, low.path)
        )
        end = (
            len(rows)
            if high is None
            else (bisect_right if high.inclusive else bisect_left)(paths, high.path)
        )
        chosen = rows[first:end]
        return chosen[::-1][:count] if reverse else chosen[:count]

    return between


async def user_meta(
    s: AsyncSession, serials: list[int], keys: tuple[str, ...] | None = None
) -> dict[int, dict[str, str]]:
    """User metadata of many versions, 500 at a time; only ``keys`` if given (a
    primary-key probe per version and key, however much else they hold)."""
    metas: dict[int, dict[str, str]] = {}
    for start in range(0, len(serials), 500):
        query = select(ATTRIBUTES.c.serial, ATTRIBUTES.c.key, ATTRIBUTES.c.value).where(
            ATTRIBUTES.c.serial.in_(serials[start : start + 500]),
            ATTRIBUTES.c.domain == USER_DOMAIN,
        )
        if keys is not None:
            query = query.where(ATTRIBUTES.c.key.in_(keys))
        for serial, key, value in await s.execute(query):
            metas.setdefault(serial, {})[key] = value
    return metas
