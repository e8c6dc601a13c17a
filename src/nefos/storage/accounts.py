"""An account's container listing (Swift's account GET) as one operation: who may
see which containers, the owner's ``shared`` and ``public`` filters, and Swift's
prefix, markers, order, delimiter and limit.

The owner sees every container with the account's totals; another user sees the
containers where it may read something, and no totals (``public`` is the owner's
only: PermissionDenied). ``shared`` and ``public`` keep the containers holding an
object with permissions of its own, or published at a public link, found by one
statement each over the account's paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from nefos.core import errors
from nefos.core.db import Database
from nefos.storage.containers import Containers
from nefos.storage.models import Permission, PublicLink
from nefos.storage.permissions import Permissions
from nefos.storage.records import AccountInfo, ContainerInfo, Subdir


@dataclass(frozen=True)
class ContainerQuery:
    """Swift's account listing parameters, parsed. ``marker`` and ``end_marker`` bound
    names from below and above (from above and below with ``reverse``); ``limit``
    counts entries, a subdir one entry."""

    limit: int
    prefix: str = ""
    marker: str | None = None
    end_marker: str | None = None
    reverse: bool = False
    delimiter: str | None = None
    shared: bool = False
    public: bool = False


@dataclass(frozen=True)
class AccountListing:
    """``info``: the account's totals, metadata and groups, for its owner only."""

    info: AccountInfo | None
    entries: list[ContainerInfo | Subdir]


class AccountLister:
    def __init__(self, db: Database, containers: Containers, permissions: Permissions) -> None:
        self.db = db
        self.containers = containers
        self.permissions = permissions

    async def list_account(self, user: str, account: str, query: ContainerQuery) -> AccountListing:
        info: AccountInfo | None = None
        if user == account:
            info = await self.containers.account(account)
            found = info.listing
            if query.shared or query.public:
                wanted: set[str] = set()
                if query.shared:
                    wanted |= await self._holding(Permission.path, account)
                if query.public:
                    wanted |= await self._holding(PublicLink.path, account)
                found = [c for c in found if c.name in wanted]
        else:
            if query.public:
                raise errors.PermissionDenied("Only the owner lists public objects")
            found = await self.permissions.visible_containers(user, account)
        return AccountListing(info, _page(found, query))

    async def _holding(self, paths: Any, account: str) -> set[str]:
        """The containers of ``account`` with an object path in a table of paths."""
        base = account + "/"
        async with self.db.session() as s:
            rows = await s.scalars(select(paths).where(paths.startswith(base, autoescape=True)))
            names = set()
            for path in rows:
                container, slash, _ = path[len(base) :].partition("/")
                if slash:
                    names.add(container)
        return names


def _page(containers: list[ContainerInfo], query: ContainerQuery) -> list[ContainerInfo | Subdir]:
    """Swift's order, bounds and delimiter over a listing sorted by name."""
    marker, end_marker = query.marker, query.end_marker
    if query.reverse:
        containers = containers[::-1]
        marker, end_marker = end_marker, marker
    entries: list[ContainerInfo | Subdir] = []
    for c in containers:
        if len(entries) >= query.limit:
            break
        if not c.name.startswith(query.prefix):
            continue
        if (marker is not None and c.name <= marker) or (
            end_marker is not None and c.name >= end_marker
        ):
            continue
        delimiter = query.delimiter
        cut = c.name.find(delimiter, len(query.prefix)) if delimiter else -1
        if cut < 0:
            entries.append(c)
            continue
        subdir = c.name[: cut + len(delimiter or "")]
        if subdir == marker and not query.reverse:  # the previous page ended with it
            continue
        last = entries[-1] if entries else None
        if not (isinstance(last, Subdir) and last.name == subdir):
            entries.append(Subdir(subdir))
    return entries
