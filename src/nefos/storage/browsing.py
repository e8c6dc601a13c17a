"""A container as a caller sees it (Swift's container HEAD and GET) as one operation:
whether the caller may look at all, the container's counts and the metadata keys its
objects use (to the owner), and a page of its objects with the owner's ``shared`` and
``public`` filters and Pithos's ``until``.

Another user sees a container only where something in it is shared with it, and
then only those names; a container that shares nothing and a missing one answer the
same (PermissionDenied), so neither tells which. ``until`` and ``public`` are the
owner's only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from nefos.core import errors
from nefos.storage import sharing
from nefos.storage.containers import Containers
from nefos.storage.large import SLO_BYTES, SLO_ETAG
from nefos.storage.listings import Lister
from nefos.storage.permissions import Permissions
from nefos.storage.records import ContainerInfo, ObjectRecord, Subdir


@dataclass(frozen=True)
class ObjectQuery:
    """A page of a container's objects, parsed. ``keep``: a filter on objects with
    their metadata (Pithos's ``meta``); ``objects_only``: leave the virtual
    directories out; ``large_sizes``: read static large objects' whole sizes and
    ETags for the page."""

    limit: int
    prefix: str = ""
    delimiter: str | None = None
    marker: str | None = None
    end_marker: str | None = None
    reverse: bool = False
    keep: Callable[[ObjectRecord], bool] | None = None
    until: dt.datetime | None = None
    shared: bool = False
    public: bool = False
    objects_only: bool = False
    large_sizes: bool = False


@dataclass(frozen=True)
class ContainerView:
    """``meta_keys``: for the owner only (empty for another user)."""

    info: ContainerInfo
    meta_keys: list[str]
    visible: Callable[[str], bool] | None = None


@dataclass(frozen=True)
class ContainerPage:
    info: ContainerInfo
    meta_keys: list[str]
    entries: list[ObjectRecord | Subdir]
    large: dict[int, dict[str, str]] = field(default_factory=dict)


class Browser:
    def __init__(self, containers: Containers, lister: Lister, permissions: Permissions) -> None:
        self.containers = containers
        self.lister = lister
        self.permissions = permissions

    async def _visible(
        self, user: str, account: str, container: str
    ) -> Callable[[str], bool] | None:
        if user == account:
            return None
        visible = await self.permissions.readable_filter(user, account, container)
        try:
            listed = await self.lister.list_objects(account, container, visible=visible, limit=1)
        except errors.NotFound:  # as for a container that shares nothing: no telling which
            listed = []
        if not listed:
            raise errors.PermissionDenied("Nothing here is shared with you")
        return visible

    async def view_container(self, user: str, account: str, container: str) -> ContainerView:
        """The container's counts and its objects' metadata keys, as ``user`` sees them."""
        visible = await self._visible(user, account, container)
        info = await self.containers.container(account, container)
        keys = await self.lister.object_meta_keys(account, container) if user == account else []
        return ContainerView(info, keys, visible)

    async def browse(
        self, user: str, account: str, container: str, query: ObjectQuery
    ) -> ContainerPage:
        """A page of the container's objects, as ``user`` sees them."""
        view = await self.view_container(user, account, container)
        owner = user == account
        if query.until is not None and not owner:
            raise errors.PermissionDenied("Only the account's owner may do this")
        visible = view.visible
        if owner and (query.shared or query.public):
            chosen: set[str] = set()
            if query.shared:
                chosen |= await self.permissions.shared_names(account, container)
            if query.public:
                chosen |= await self.permissions.public_names(account, container)
            if query.shared:  # a shared directory shares what is below it
                grants = sharing.Grants()
                for name in chosen:
                    grants.add(f"{account}/{container}/{name}", sharing.READ, "")
                base = f"{account}/{container}/"
                visible = lambda name: grants.nearest(base + name) is not None  # noqa: E731
            else:
                visible = chosen.__contains__
        elif not owner and query.public:
            raise errors.PermissionDenied("Only the owner lists public objects")
        entries = await self.lister.list_objects(
            account,
            container,
            prefix=query.prefix,
            delimiter=query.delimiter,
            marker=query.marker,
            end_marker=query.end_marker,
            limit=query.limit,
            reverse=query.reverse,
            visible=visible,
            with_meta=query.keep is not None,
            keep=query.keep,
            until=query.until,
        )
        if query.objects_only:
            entries = [entry for entry in entries if not isinstance(entry, Subdir)]
        large: dict[int, dict[str, str]] = {}
        serials = [entry.serial for entry in entries if isinstance(entry, ObjectRecord)]
        if serials and query.large_sizes:
            large = await self.lister.version_attributes(serials, (SLO_BYTES, SLO_ETAG))
        return ContainerPage(view.info, view.meta_keys, entries, large)
