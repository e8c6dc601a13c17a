"""The storage namespace (Pithos backend): containers, objects, versions, over a block store.

Writes follow ``docs/storage-plan.md``: blocks first (durable on return), then the map
under a fresh name, then one transaction that commits the version and its quota
commission together (``Quotas.take``, clientkey ``pithos``). A crash before the
transaction leaves only unreferenced blocks and maps for ``gc``, never a half-visible
object, and no quota serial to reconcile.

Quota (``pithos.diskspace``, charged to the container's project): only current versions
count, as with Synnefo's default ``PITHOS_BACKEND_FREE_VERSIONING``, so a write charges
the size difference to the version it replaces and a delete releases the object's size.
A container's own quota policy (bytes, 0 = unlimited) caps the bytes of its current
versions.

Every method raises domain errors only: InvalidInput (names, metadata, hashmaps),
NotFound, Conflict (non-empty container, missing blocks with ``data["missing"]``),
OverQuota.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import operator
import random
import secrets
import time
import uuid
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Row,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from nefos.core import errors
from nefos.core.config import Settings
from nefos.core.db import Database, utcnow
from nefos.core.prepared import Prepared
from nefos.quotas.service import Charge, Quotas, charge, user_holder
from nefos.storage import blocks, sharing
from nefos.storage.blocks import BLOCK_SIZE, EMPTY_HASH
from nefos.storage.models import (
    CURRENT,
    DELETED,
    HISTORY,
    Attribute,
    ContainerMetaKey,
    ContainerStats,
    GroupMember,
    Node,
    NodeMeta,
    Permission,
    Policy,
    PublicLink,
    Version,
)
from nefos.storage.sharing import Grants, Sharing
from nefos.storage.stores import BlockMissing, BlockStore
from nefos.storage.upload import store_stream

CLIENTKEY = "pithos"
RESOURCE = "pithos.diskspace"
USER_DOMAIN = "pithos"
# Swift's object expiry: the epoch second (ten digits) after which an object is gone.
DELETE_AT = ":delete-at"
MAX_CONTAINER_NAME = 256
MAX_OBJECT_NAME = 1024
MAX_META_KEYS = 32
MAX_META_KEY = 128
MAX_META_VALUE = 256
MAX_TYPE = 256
# blocks a read asks the store for at once, ahead of the one it sends: disks and RADOS
# serve a few reads at once faster than one after another; bounds memory per request
READ_AHEAD = 4
VERSIONING = ("auto", "none")
COMMIT_ATTEMPTS = 30

# The tables, for Core statements on the per-request paths (ORM loading and flushing
# cost more CPU than the database does on a small object's PUT, GET or DELETE).
NODES = Node.__table__
VERSIONS = Version.__table__
ATTRIBUTES = Attribute.__table__
POLICIES = Policy.__table__
PERMISSIONS = Permission.__table__
PUBLIC = PublicLink.__table__
STATS = ContainerStats.__table__
META_KEYS = ContainerMetaKey.__table__
CONTENT_FIELDS = ("size", "type", "hash", "checksum", "map_name")  # what a write gives
RECORD_FIELDS = ("serial", *CONTENT_FIELDS, "uuid", "mtime")
# ObjectRecord's fields after account, container and name, in its order.
VERSION_FIELDS = (*RECORD_FIELDS, "muser", "cluster")
RECORD_COLUMNS = [VERSIONS.c[name] for name in VERSION_FIELDS]
_version_of = operator.attrgetter(*VERSION_FIELDS)
_content_of = operator.attrgetter(*CONTENT_FIELDS)

# -- statements of every small request ----------------------------------------------------
# Built once, with bind parameters: building a statement costs more CPU than SQLite takes
# to run it (measured: about 300 us built per call against 70 us prebuilt).


def _policy_statement(lock: bool) -> Any:
    query = (
        select(NODES.c.id, POLICIES.c.quota, POLICIES.c.versioning, POLICIES.c.project)
        .select_from(NODES.join(POLICIES, POLICIES.c.node_id == NODES.c.id))
        .where(NODES.c.path == bindparam("path"))
    )
    return query.with_for_update(of=POLICIES) if lock else query


def _version_statement(current: bool) -> Any:
    """A version and its user metadata, a row per key; the current one also with the
    path's public token (the owner's GET and HEAD show it)."""
    joined = NODES.join(VERSIONS, VERSIONS.c.node_id == NODES.c.id).outerjoin(
        ATTRIBUTES,
        (ATTRIBUTES.c.serial == VERSIONS.c.serial) & (ATTRIBUTES.c.domain == USER_DOMAIN),
    )
    columns = [*RECORD_COLUMNS, ATTRIBUTES.c.key, ATTRIBUTES.c.value]
    if current:
        joined = joined.outerjoin(PUBLIC, PUBLIC.c.path == NODES.c.path)
        columns.append(PUBLIC.c.token)
    query = (
        select(*columns)
        .select_from(joined)
        .where(NODES.c.path == bindparam("path"))
        .order_by(VERSIONS.c.serial.desc())
    )
    if current:
        return query.where(VERSIONS.c.cluster == CURRENT)
    return query.where(VERSIONS.c.serial == bindparam("version"), VERSIONS.c.cluster != DELETED)


_CARRIED: dict[int, Prepared] = {}  # by the number of domains the write replaces


def _carried(replaced: int) -> Prepared:
    """Copies the attributes of version ``origin`` to ``new_serial``, but for the
    domains ``domain0``... that the write replaces; one statement per count, built once
    (as for grants: an expanding IN is rendered anew on every execution)."""
    statement = _CARRIED.get(replaced)
    if statement is None:
        query = select(
            bindparam("new_serial", type_=VERSIONS.c.serial.type),  # typed: PostgreSQL casts it
            ATTRIBUTES.c.domain,
            ATTRIBUTES.c.key,
            ATTRIBUTES.c.value,
        ).where(ATTRIBUTES.c.serial == bindparam("origin"))
        if replaced:
            domains = [bindparam(f"domain{i}") for i in range(replaced)]
            query = query.where(ATTRIBUTES.c.domain.not_in(domains))
        statement = _CARRIED[replaced] = Prepared(
            insert(ATTRIBUTES).from_select(["serial", "domain", "key", "value"], query)
        )
    return statement


_POLICY = Prepared(_policy_statement(lock=False))
_POLICY_LOCKED = Prepared(_policy_statement(lock=True))
# A path's node, current version, and whether sharing or a public link hangs on it (a
# delete drops them, and most objects have neither).
_CURRENT = Prepared(
    select(
        NODES.c.id,
        VERSIONS.c.serial,
        VERSIONS.c.size,
        VERSIONS.c.uuid,
        select(PERMISSIONS.c.path)
        .where(PERMISSIONS.c.path == NODES.c.path)
        .exists()
        .label("shared"),
        PUBLIC.c.token,
    )
    .select_from(
        NODES.outerjoin(
            VERSIONS, (VERSIONS.c.node_id == NODES.c.id) & (VERSIONS.c.cluster == CURRENT)
        ).outerjoin(PUBLIC, PUBLIC.c.path == NODES.c.path)
    )
    .where(NODES.c.path == bindparam("path"))
    .order_by(VERSIONS.c.serial.desc())
    .limit(1)
)
_CURRENT_VERSION = Prepared(_version_statement(current=True))
_SOME_VERSION = Prepared(_version_statement(current=False))
_GRANTS: dict[int, Prepared] = {}  # by the number of paths asked about (a path's depth)


def _grants_statement(paths: int) -> Prepared:
    """The permissions on ``paths`` paths; one statement per count, built once (an
    expanding IN is rendered anew on every execution)."""
    statement = _GRANTS.get(paths)
    if statement is None:
        names = [bindparam(f"path{i}") for i in range(paths)]
        statement = _GRANTS[paths] = Prepared(
            select(PERMISSIONS.c.path, PERMISSIONS.c.access, PERMISSIONS.c.subject).where(
                PERMISSIONS.c.path.in_(names)
            )
        )
    return statement


_SUBJECTS = Prepared(
    select(GroupMember.__table__.c.name).where(
        GroupMember.__table__.c.account == bindparam("account"),
        GroupMember.__table__.c.member == bindparam("member"),
    )
)
_NODE_ID = Prepared(select(NODES.c.id).where(NODES.c.path == bindparam("path")))
_NEW_NODE = {
    dialect: Prepared(
        insert_(NODES).on_conflict_do_nothing(index_elements=["path"]).returning(NODES.c.id)
    )
    for dialect, insert_ in (("sqlite", sqlite_insert), ("postgresql", pg_insert))
}
_NEW_VERSION = Prepared(insert(VERSIONS).returning(VERSIONS.c.serial))
_SOURCE_VERSION = Prepared(
    select(VERSIONS.c.serial)
    .where(VERSIONS.c.serial == bindparam("source"))
    .with_for_update(read=True)
)
_NEW_ATTRIBUTES = Prepared(insert(ATTRIBUTES))
_DROP_PERMISSIONS = Prepared(delete(PERMISSIONS).where(PERMISSIONS.c.path == bindparam("path")))
_DROP_PUBLIC = Prepared(delete(PUBLIC).where(PUBLIC.c.path == bindparam("path")))
_DROP_ATTRIBUTES = Prepared(
    delete(ATTRIBUTES).where(ATTRIBUTES.c.serial == bindparam("old_serial"))
)
_DROP_VERSION = Prepared(delete(VERSIONS).where(VERSIONS.c.serial == bindparam("old_serial")))
_TO_HISTORY = Prepared(
    update(VERSIONS).where(VERSIONS.c.serial == bindparam("old_serial")).values(cluster=HISTORY)
)


def _count_write(insert_: Any) -> Prepared:
    """A write's change to its container's rolled-up statistics, in its transaction."""
    new = insert_(STATS).values(
        node_id=bindparam("container"),
        objects=bindparam("objects"),
        bytes=bindparam("bytes"),
        mtime=bindparam("mtime"),
    )
    return Prepared(
        new.on_conflict_do_update(
            index_elements=["node_id"],
            set_={
                "objects": STATS.c.objects + new.excluded.objects,
                "bytes": STATS.c.bytes + new.excluded.bytes,
                "mtime": new.excluded.mtime,
            },
        )
    )


_COUNT_WRITE = {"sqlite": _count_write(sqlite_insert), "postgresql": _count_write(pg_insert)}


def _count_key(insert_: Any) -> Prepared:
    """One more (or fewer) of a container's current objects using a metadata key."""
    new = insert_(META_KEYS).values(
        node_id=bindparam("container"), key=bindparam("key"), objects=bindparam("change")
    )
    return Prepared(
        new.on_conflict_do_update(
            index_elements=["node_id", "key"],
            set_={"objects": META_KEYS.c.objects + new.excluded.objects},
        )
    )


_COUNT_KEY = {"sqlite": _count_key(sqlite_insert), "postgresql": _count_key(pg_insert)}
_DROP_UNUSED_KEY = Prepared(
    delete(META_KEYS).where(
        META_KEYS.c.node_id == bindparam("container"),
        META_KEYS.c.key == bindparam("key"),
        META_KEYS.c.objects <= 0,
    )
)
_USER_KEYS = Prepared(
    select(ATTRIBUTES.c.key).where(
        ATTRIBUTES.c.serial == bindparam("serial"), ATTRIBUTES.c.domain == USER_DOMAIN
    )
)


# -- records ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectRecord:
    """One object version as a caller sees it (``get_object``, listings)."""

    account: str
    container: str
    name: str
    serial: int
    size: int
    type: str
    hash: str
    checksum: str
    map_name: str
    uuid: uuid.UUID
    mtime: dt.datetime
    muser: str
    cluster: int
    meta: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectSharing:
    """An object's sharing as one reader sees it (``object_sharing``)."""

    sharing: Sharing
    public_token: str | None  # the owner's view only
    access: str | None  # what the reader may do: write, read or None


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


@dataclass(frozen=True)
class Subdir:
    """A virtual directory in a delimited listing."""

    name: str


@dataclass(frozen=True)
class ContainerInfo:
    name: str
    count: int
    bytes: int
    last_modified: dt.datetime | None
    quota: int
    versioning: str
    project: str
    meta: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AccountInfo:
    containers: int
    objects: int
    bytes: int
    last_modified: dt.datetime | None
    meta: dict[str, str]
    groups: dict[str, list[str]]
    quotas: dict[str, int] = field(default_factory=dict)  # project → pithos.diskspace limit
    listing: list[ContainerInfo] = field(default_factory=list)  # the totals' containers


@dataclass
class _Data:
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


@dataclass
class _Write:
    container: str
    name: str
    data: _Data | None  # None: a deleted marker
    base: int | None = None  # the serial this write was computed from (must still be current)
    moved_from: str | None = None  # a rename: sharing and public link follow from this path


@dataclass(frozen=True)
class _Committed:
    """What a write's transaction made: the caller answers from it without a read."""

    serial: int
    uuid: uuid.UUID
    mtime: dt.datetime


@dataclass
class _Plan:
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


# -- validation --------------------------------------------------------------------------


def _utf8(value: str, what: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise errors.InvalidInput(f"{what} is not valid UTF-8") from None
    if "\0" in value:
        raise errors.InvalidInput(f"{what} contains NUL")


def check_account(account: str) -> str:
    if not isinstance(account, str) or not account or "/" in account or len(account) > 80:
        raise errors.InvalidInput("Bad account")
    _utf8(account, "Account")
    return account


def check_container_name(name: str) -> str:
    """Spec §1.1: at most 256 bytes of UTF-8 (as Swift counts), one path segment, not
    "." or ".."."""
    if not isinstance(name, str) or not name:
        raise errors.InvalidInput("A container needs a name")
    _utf8(name, "Container name")
    if len(name.encode()) > MAX_CONTAINER_NAME:
        raise errors.InvalidInput(f"A container name has at most {MAX_CONTAINER_NAME} bytes")
    if "/" in name or name in (".", ".."):
        raise errors.InvalidInput(f"Bad container name {name!r}")
    return name


def check_object_name(name: str) -> str:
    """Spec §1.1: at most 1024 bytes of UTF-8 (as Swift counts, and so a whole path fits
    a database index entry), no "." or ".." segments."""
    if not isinstance(name, str) or not name:
        raise errors.InvalidInput("An object needs a name")
    _utf8(name, "Object name")
    if len(name.encode()) > MAX_OBJECT_NAME:
        raise errors.InvalidInput(f"An object name has at most {MAX_OBJECT_NAME} bytes")
    if any(segment in (".", "..") for segment in name.split("/")):
        raise errors.InvalidInput(f"Bad object name {name!r}")
    return name


def check_meta(meta: dict[str, str] | None) -> dict[str, str]:
    meta = dict(meta or {})
    if len(meta) > MAX_META_KEYS:
        raise errors.InvalidInput(f"At most {MAX_META_KEYS} metadata keys")
    for key, value in meta.items():
        if not isinstance(key, str) or not key or len(key) > MAX_META_KEY:
            raise errors.InvalidInput(f"A metadata key has 1 to {MAX_META_KEY} characters")
        if not isinstance(value, str) or len(value) > MAX_META_VALUE:
            raise errors.InvalidInput(f"A metadata value has at most {MAX_META_VALUE} characters")
        _utf8(key, "Metadata key")
        _utf8(value, "Metadata value")
    return meta


def check_type(content_type: str) -> str:
    if not isinstance(content_type, str) or len(content_type) > MAX_TYPE:
        raise errors.InvalidInput(f"A content type has at most {MAX_TYPE} characters")
    _utf8(content_type, "Content type")
    return content_type


def _container_path(account: str, container: str) -> str:
    return f"{account}/{container}"


def _object_path(account: str, container: str, name: str) -> str:
    return f"{account}/{container}/{name}"


# -- the service -----------------------------------------------------------------------


class Namespace:
    def __init__(self, db: Database, settings: Settings, store: BlockStore, quotas: Quotas):
        self.db = db
        self.settings = settings
        self.store = store
        self.quotas = quotas

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
            path = _container_path(account, name)
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
        await _COUNT_WRITE[s.bind.dialect.name](s, change)

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
                s, account, NODES.c.path == _container_path(account, name)
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
            await s.execute(delete(Node).where(Node.id == node.id))
            below = node.path + "/"
            await s.execute(delete(Permission).where(Permission.path.startswith(below)))
            await s.execute(delete(PublicLink).where(PublicLink.path.startswith(below)))

    # -- writing objects --------------------------------------------------------------------

    async def put_object(
        self,
        account: str,
        container: str,
        name: str,
        chunks: AsyncIterator[bytes],
        content_type: str = "application/octet-stream",
        meta: dict[str, str] | None = None,
        muser: str = "",
        etag: str | None = None,
        max_size: int | None = None,
        domains: dict[str, dict[str, str]] | None = None,
        uuid: uuid.UUID | None = None,
        size_hint: int | None = None,
    ) -> ObjectRecord:
        """Store a stream as the new current version, a few blocks at a time. ``etag``
        (an MD5 the client computed) is checked before anything becomes visible;
        beyond ``max_size`` bytes the upload is refused. ``domains`` replace whole
        metadata domains other than the user's (the image service's ``plankton``).
        ``size_hint`` (the declared length): a body of one block at most is stored
        before anything is read, as refusing it early would save nothing."""
        small = size_hint is not None and size_hint <= BLOCK_SIZE
        meta, plan = await self._check_write(
            account, container, name, content_type, meta, read_plan=not small
        )
        stored = await store_stream(self.store, chunks, max_size=max_size)
        if etag is not None and etag.strip('"').lower() != stored.md5:
            raise errors.ChecksumMismatch("The data does not match the ETag given")
        data = await self._new_map(stored.size, stored.hashes, content_type, meta, stored.md5)
        data.domains = _check_domains(domains)
        data.uuid = uuid  # None: the path's own, or a fresh one
        return await self._commit_new(account, container, name, muser, data, plan)

    async def _check_write(
        self,
        account: str,
        container: str,
        name: str,
        content_type: str,
        meta: dict[str, str] | None,
        read_plan: bool = True,
    ) -> tuple[dict[str, str], _Plan | None]:
        """What every new object is checked for before any block is stored; with
        ``read_plan``, the reads the commit needs are made now too (a missing container
        or a full quota is refused before the body arrives; the commit checks they
        still hold)."""
        self._check_object_args(account, container, name)
        check_type(content_type)
        checked = check_meta(meta)
        if not read_plan:
            return checked, None
        async with self.db.reading() as conn:  # the write checks it again
            plan = await self._read_plan(conn, account, [(container, name)])
        return checked, plan

    async def _commit_new(
        self,
        account: str,
        container: str,
        name: str,
        muser: str,
        data: _Data,
        plan: _Plan | None,
    ) -> ObjectRecord:
        (done,) = await self._commit(account, muser, [_Write(container, name, data)], plan)
        if data.meta is None:  # the user's metadata carried forward: as stored
            return await self.get_object(account, container, name, done.serial)
        # As written, not read back: the same fields in ObjectRecord's order.
        return ObjectRecord(
            account,
            container,
            name,
            done.serial,
            *_content_of(data),
            done.uuid,
            done.mtime,
            muser,
            CURRENT,
            dict(data.meta),
        )

    async def put_hashmap(
        self,
        account: str,
        container: str,
        name: str,
        size: int,
        hashes: Sequence[str],
        content_type: str = "application/octet-stream",
        meta: dict[str, str] | None = None,
        muser: str = "",
    ) -> ObjectRecord:
        """Commit an object from blocks already stored; Conflict with ``data["missing"]``
        (the hashes to upload, in order) when the store lacks some."""
        try:
            hashes = blocks.check_hashmap(size, hashes)
        except ValueError as exc:
            raise errors.InvalidInput(str(exc)) from None
        meta, plan = await self._check_write(account, container, name, content_type, meta)
        # touch: the blocks found are about to be referenced, so gc must spare them.
        missing = await self.store.missing(hashes, touch=True)
        if missing:
            raise errors.Conflict("Missing blocks", data={"missing": missing})
        data = await self._new_map(size, hashes, content_type, meta, "")
        return await self._commit_new(account, container, name, muser, data, plan)

    async def delete_object(self, account: str, container: str, name: str, muser: str = "") -> int:
        """Add a deleted marker (history stays) and release the object's size."""
        self._check_object_args(account, container, name)
        return (await self._commit(account, muser, [_Write(container, name, None)]))[0].serial

    async def copy_object(
        self,
        account: str,
        container: str,
        name: str,
        dest_container: str,
        dest_name: str,
        version: int | None = None,
        meta: dict[str, str] | None = None,
        muser: str = "",
        source_account: str | None = None,
        content_type: str | None = None,
        fresh: bool = False,
    ) -> ObjectRecord:
        """A new object on the same map and hash (no data moves) with a new UUID; every
        metadata domain is copied, the user's overlaid with ``meta`` (or, ``fresh``,
        replaced by it: Swift's ``X-Fresh-Metadata``). The source may be in
        ``source_account`` (the caller checks the right to read it)."""
        self._check_object_args(account, dest_container, dest_name)
        source = await self.get_object(source_account or account, container, name, version)
        if content_type is not None:
            source = dataclasses.replace(source, type=check_type(content_type))
        data = self._reuse(source, meta, keep_uuid=False, fresh=fresh)
        write = _Write(dest_container, dest_name, data)
        serial = (await self._commit(account, muser, [write]))[0].serial
        return await self.get_object(account, dest_container, dest_name, serial)

    async def move_object(
        self,
        account: str,
        container: str,
        name: str,
        dest_container: str,
        dest_name: str,
        meta: dict[str, str] | None = None,
        muser: str = "",
    ) -> ObjectRecord:
        """Rename: the destination takes the source's map, hash and UUID; the source
        gets a deleted marker, in the same transaction."""
        self._check_object_args(account, dest_container, dest_name)
        source = await self.get_object(account, container, name)
        if (container, name) == (dest_container, dest_name):
            return source
        data = self._reuse(source, meta, keep_uuid=True)
        writes = [
            _Write(
                dest_container,
                dest_name,
                data,
                moved_from=_object_path(account, container, name),
            ),
            _Write(container, name, None, base=source.serial),  # a moved-over source: retry
        ]
        serial = (await self._commit(account, muser, writes))[0].serial
        return await self.get_object(account, dest_container, dest_name, serial)

    # -- reading objects ------------------------------------------------------------------

    async def get_object(
        self, account: str, container: str, name: str, version: int | None = None
    ) -> ObjectRecord:
        """The current version, or version ``version`` (current or history)."""
        self._check_object_args(account, container, name)
        async with self.db.reading() as conn:
            rows = await self._version_rows(conn, account, container, name, version)
        return _version_record(account, container, name, rows)

    async def get_object_shared(
        self, user: str, account: str, container: str, name: str
    ) -> tuple[ObjectRecord, ObjectSharing]:
        """:meth:`get_object` and what a reader sees of its sharing (the permissions that
        apply, the public token to the owner, what ``user`` may do to others), in one
        round of reads: every GET and HEAD of a current version asks for both."""
        self._check_object_args(account, container, name)
        path = _object_path(account, container, name)
        token = access = None
        async with self.db.reading() as conn:
            rows = await self._version_rows(conn, account, container, name, None)
            grants = await self._grants(conn, sharing.ancestry(path))
            if user == account:
                token = rows[0].token
                access = sharing.WRITE
            elif grants.by_path:
                access = grants.access(path, await self._subjects(conn, user, account))
        record = _version_record(account, container, name, rows)
        return record, ObjectSharing(_effective(grants, path), token, access)

    async def _version_rows(
        self, conn: AsyncConnection, account: str, container: str, name: str, version: int | None
    ) -> list[Row[Any]]:
        """One statement for the version and its metadata (a row per key): every GET and
        HEAD starts here. NotFound when there is no such version."""
        path = _object_path(account, container, name)
        if version is None:
            rows = (await _CURRENT_VERSION(conn, {"path": path})).all()
        else:
            rows = (await _SOME_VERSION(conn, {"path": path, "version": version})).all()
        if not rows:
            what = f" version {version}" if version is not None else ""
            raise errors.NotFound(f"No object {container}/{name}{what}")
        return list(rows)

    async def hashmap(self, record: ObjectRecord) -> list[str]:
        return await self._hashes(record.map_name, record.hash, record.name)

    async def _hashes(self, map_name: str, hash_: str, what: str) -> list[str]:
        """A version's block hashes. One block needs no map: the Merkle hash of a
        one-hash map is that hash, so the version's hash is its map."""
        if not map_name:
            return [hash_]
        try:
            return await self.store.get_map(map_name)
        except BlockMissing as exc:
            raise errors.Unavailable(f"The map of {what!r} is missing") from exc

    def read(
        self, record: ObjectRecord, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """The bytes ``[start, end)`` of a version: blocks zero-padded, cut to the size."""
        if 0 < record.size <= BLOCK_SIZE:
            # One block is named by the version's hash (see _hashes): no map to read.
            return self._read_block(record, start, end)
        return self.read_map(record.map_name, record.hash, record.size, start, end, record.name)

    async def _read_block(
        self, record: ObjectRecord, start: int, end: int | None
    ) -> AsyncIterator[bytes]:
        end = record.size if end is None else min(end, record.size)
        if start < 0 or start > end:
            raise errors.InvalidInput(f"Bad range {start}-{end} of {record.size} bytes")
        if start == end:
            return
        try:
            (raw,) = await self.store.get_blocks([record.hash])
        except BlockMissing as exc:
            raise errors.Unavailable(f"Blocks of {record.name!r} are missing") from exc
        yield raw.ljust(record.size, b"\0")[start:end]

    async def read_map(
        self,
        map_name: str,
        hash_: str,
        size: int,
        start: int = 0,
        end: int | None = None,
        what: str = "",
    ) -> AsyncIterator[bytes]:
        """:meth:`read` by the version's map and hash, for callers that pinned them (a
        server's build reads the image it was created from, whatever the file is now)."""
        what = what or map_name or hash_
        end = size if end is None else min(end, size)
        if start < 0 or start > end:
            raise errors.InvalidInput(f"Bad range {start}-{end} of {size} bytes")
        if start == end:
            return
        hashes = await self._hashes(map_name, hash_, what)
        indexes = iter(range(start // BLOCK_SIZE, (end - 1) // BLOCK_SIZE + 1))
        reads: deque[tuple[int, asyncio.Future[list[bytes]]]] = deque()

        def read_next() -> None:
            index = next(indexes, None)
            if index is not None:
                reads.append((index, asyncio.ensure_future(self.store.get_blocks([hashes[index]]))))

        for _ in range(READ_AHEAD):
            read_next()
        try:
            while reads:
                index, read = reads.popleft()
                try:
                    (raw,) = await read
                except BlockMissing as exc:
                    raise errors.Unavailable(f"Blocks of {what!r} are missing") from exc
                read_next()  # while this one is sent
                offset = index * BLOCK_SIZE
                block = raw.ljust(min(BLOCK_SIZE, size - offset), b"\0")
                yield block[max(start - offset, 0) : end - offset]
        finally:  # the reader failed or went away: drop the reads ahead
            for _, read in reads:
                if not read.cancel() and not read.cancelled():
                    read.exception()  # a failure no one will await, seen

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
                await self._commit(account, "", [_Write(container, name, None, base=serial)])
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
            parent = await self._container_node(s, account, container)
            nodes = select(Node.id).where(Node.parent_id == parent.id)
            if name is not None:
                check_object_name(name)
                nodes = nodes.where(Node.path == _object_path(account, container, name))
            serials = select(Version.serial).where(
                Version.node_id.in_(nodes.scalar_subquery()),
                Version.cluster.in_((HISTORY, DELETED)),
                Version.mtime <= until,
            )
            found = list(await s.scalars(serials))
            for start in range(0, len(found), 500):
                batch = found[start : start + 500]
                await s.execute(delete(Attribute).where(Attribute.serial.in_(batch)))
                await s.execute(delete(Version).where(Version.serial.in_(batch)))
            return len(found)

    async def versions(
        self, account: str, container: str, name: str
    ) -> list[tuple[int, dt.datetime]]:
        """``(serial, mtime)`` of the current and history versions, oldest first."""
        self._check_object_args(account, container, name)
        async with self.db.session() as s:
            node = await self._node(s, _object_path(account, container, name))
            if node is None:
                raise errors.NotFound(f"No object {container}/{name}")
            rows = (
                await s.execute(
                    select(Version.serial, Version.mtime)
                    .where(Version.node_id == node.id, Version.cluster.in_((CURRENT, HISTORY)))
                    .order_by(Version.serial)
                )
            ).all()
        if not rows:
            raise errors.NotFound(f"No object {container}/{name}")
        return [(serial, mtime) for serial, mtime in rows]

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
        base = _container_path(account, container) + "/"
        # Reversed, Swift's marker bounds the names from above and end_marker from below.
        lowest, highest = (end_marker, marker) if reverse else (marker, end_marker)
        low = _Bound(base + lowest, False) if lowest is not None else None
        high = _Bound(base + highest, False) if highest is not None else None
        found: list[ObjectRecord | Subdir] = []
        seen: set[str] = set()  # names listed: an object's name wins over a subdir's
        async with self.db.session() as s:
            node = await self._container_node(s, account, container)
            if until is None:
                rows_between = self._current_rows(s, base + prefix, reverse)
            else:
                rows_between = await self._rows_until(s, node.id, base + prefix, until, reverse)
            while len(found) < limit:
                # Delimited, a page may end at the first subdir: read less at a time.
                size = DELIMITED_PAGE if delimiter else LISTING_PAGE
                if visible is None and keep is None:  # else rows may be dropped: read on
                    size = min(size, limit - len(found))
                rows = await rows_between(low, high, size)
                metas = await self._user_meta(s, [r.serial for r in rows]) if with_meta else {}
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
                        entry = _record(account, container, name, row, metas.get(row.serial, {}))
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
                            meta = await self._user_meta(s, [row.serial]) if with_meta else {}
                            entry = _record(
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

    def _current_rows(
        self, s: AsyncSession, under: str, reverse: bool
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

        async def between(
            low: _Bound | None, high: _Bound | None, count: int
        ) -> Sequence[Row[Any]]:
            bounded = query.limit(count)
            if low is not None:
                bounded = bounded.where(path >= low.path if low.inclusive else path > low.path)
            if high is not None:
                bounded = bounded.where(path <= high.path if high.inclusive else path < high.path)
            return (await s.execute(bounded)).all()

        return between

    async def _rows_until(
        self, s: AsyncSession, parent: int, under: str, until: dt.datetime, reverse: bool
    ) -> Callable[[_Bound | None, _Bound | None, int], Awaitable[Sequence[Row[Any]]]]:
        """:meth:`_current_rows` of the container as it was at ``until``: each path's
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

        async def between(
            low: _Bound | None, high: _Bound | None, count: int
        ) -> Sequence[Row[Any]]:
            first = (
                0
                if low is None
                else (bisect_left if low.inclusive else bisect_right)(paths, low.path)
            )
            end = (
                len(rows)
                if high is None
                else (bisect_right if high.inclusive else bisect_left)(paths, high.path)
            )
            chosen = rows[first:end]
            return chosen[::-1][:count] if reverse else chosen[:count]

        return between

    async def _user_meta(
        self, s: AsyncSession, serials: list[int], keys: tuple[str, ...] | None = None
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
                    NODES.c.path == _container_path(account, container),
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
            return await self._user_meta(s, serials, keys)

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

    # -- other metadata domains (images) ------------------------------------------------

    async def domain_meta(self, record: ObjectRecord, domain: str) -> dict[str, str]:
        async with self.db.session() as s:
            return await self._attributes(s, record.serial, domain)

    async def set_domain(
        self,
        account: str,
        container: str,
        name: str,
        domain: str,
        values: dict[str, str],
        muser: str = "",
        expect_serial: int | None = None,
    ) -> ObjectRecord:
        """A new version on the same map whose ``domain`` holds exactly ``values``
        (the image service registers and edits images this way; no data moves).
        ``expect_serial``: fail with Conflict if the object changed since."""
        current = await self.get_object(account, container, name)
        if expect_serial is not None and current.serial != expect_serial:
            raise errors.Conflict(f"{container}/{name} changed meanwhile")
        data = _Data(
            size=current.size,
            type=current.type,
            hash=current.hash,
            checksum=current.checksum,
            map_name=current.map_name,
            uuid=current.uuid,
            meta=None,
            source_serial=current.serial,
            domains=_check_domains({domain: values}),
        )
        write = _Write(container, name, data, base=current.serial)
        serial = (await self._commit(account, muser, [write]))[0].serial
        return await self.get_object(account, container, name, serial)

    async def find_uuid(self, object_uuid: uuid.UUID) -> ObjectRecord:
        """The current version of the object with this UUID (an image id)."""
        async with self.db.session() as s:
            row = await s.execute(
                select(Node.path, Version)
                .join(Version, Version.node_id == Node.id)
                .where(Version.uuid == object_uuid, Version.cluster == CURRENT)
                .order_by(Version.serial.desc())
                .limit(1)
            )
            found = row.first()
            if found is None:
                raise errors.NotFound(f"No object {object_uuid}")
            path, version = found
            meta = await self._attributes(s, version.serial, USER_DOMAIN)
        account, container, name = path.split("/", 2)
        return _record(account, container, name, version, meta)

    async def with_domain_key(
        self, domain: str, key: str
    ) -> list[tuple[ObjectRecord, dict[str, str]]]:
        """Every current object that has ``key`` in ``domain``, with that domain's
        values (all registered images, for the image service to filter)."""
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    select(Node.path, Version)
                    .join(Version, Version.node_id == Node.id)
                    .join(Attribute, Attribute.serial == Version.serial)
                    .where(
                        Version.cluster == CURRENT,
                        Attribute.domain == domain,
                        Attribute.key == key,
                    )
                )
            ).all()
            serials = [version.serial for _, version in rows]
            values: dict[int, dict[str, str]] = {}
            for start in range(0, len(serials), 500):
                found = await s.execute(
                    select(Attribute.serial, Attribute.key, Attribute.value).where(
                        Attribute.serial.in_(serials[start : start + 500]),
                        Attribute.domain == domain,
                    )
                )
                for serial, name, value in found:
                    values.setdefault(serial, {})[name] = value
        records = []
        for path, version in rows:
            account, container, name = path.split("/", 2)
            record = _record(account, container, name, version, {})
            records.append((record, values.get(version.serial, {})))
        return records

    # -- sharing and public links ------------------------------------------------------------

    async def sharing(self, account: str, container: str, name: str) -> Sharing:
        """The permissions that apply to an object: its own or its nearest ancestor's."""
        self._check_object_args(account, container, name)
        path = _object_path(account, container, name)
        async with self.db.session() as s:
            grants = await self._grants(s, sharing.ancestry(path))
        return _effective(grants, path)

    async def set_sharing(
        self, account: str, container: str, name: str, read: list[str], write: list[str]
    ) -> None:
        """Set (or with both lists empty, clear) the permissions of an existing object."""
        await self.get_object(account, container, name)
        path = _object_path(account, container, name)
        async with self.db.transaction() as s:
            await s.execute(delete(Permission).where(Permission.path == path))
            for access, subjects in ((sharing.READ, read), (sharing.WRITE, write)):
                for subject in dict.fromkeys(subjects):
                    s.add(Permission(path=path, access=access, subject=subject))

    async def access(self, user: str, account: str, container: str, name: str) -> str | None:
        """What ``user`` may do with another account's object: write, read or None."""
        if user == account:
            return sharing.WRITE
        path = _object_path(account, container, name)
        async with self.db.session() as s:
            grants = await self._grants(s, sharing.ancestry(path))
            if not grants.by_path:
                return None
            subjects = await self._subjects(s, user, account)
        return grants.access(path, subjects)

    async def shared_with(self, user: str) -> list[tuple[str, dt.datetime | None]]:
        """Accounts that share something with ``user`` (top-level GET), by name."""
        async with self.db.session() as s:
            memberships = await s.execute(
                select(GroupMember.account, GroupMember.name).where(GroupMember.member == user)
            )
            subjects = {user, sharing.EVERYONE} | {f"{a}:{g}" for a, g in memberships}
            paths = await s.scalars(
                select(Permission.path).where(Permission.subject.in_(subjects)).distinct()
            )
            accounts = sorted({path.split("/", 1)[0] for path in paths} - {user})
            found = []
            for account in accounts:
                mtime = await s.scalar(
                    select(func.max(Version.mtime))
                    .join(Node, Node.id == Version.node_id)
                    .where(Node.path.startswith(account + "/", autoescape=True))
                )
                found.append((account, mtime))
        return found

    async def visible_containers(self, user: str, account: str) -> list[ContainerInfo]:
        """The containers of ``account`` where ``user`` can read something."""
        grants_by_container: dict[str, Grants] = {}
        async with self.db.session() as s:
            subjects = await self._subjects(s, user, account)
            rows = await s.execute(
                select(Permission.path, Permission.access, Permission.subject).where(
                    Permission.path.startswith(account + "/", autoescape=True)
                )
            )
            for path, access, subject in rows:
                container = path.split("/", 2)[1]
                grants_by_container.setdefault(container, Grants()).add(path, access, subject)
        names = {
            container
            for container, grants in grants_by_container.items()
            if any((g[sharing.READ] | g[sharing.WRITE]) & subjects for g in grants.by_path.values())
        }
        return [c for c in await self.list_containers(account) if c.name in names]

    async def readable_filter(self, user: str, account: str, container: str) -> Any:
        """A predicate on object names: can ``user`` read it (for cross-user listings)?"""
        base = _container_path(account, container) + "/"
        async with self.db.session() as s:
            subjects = await self._subjects(s, user, account)
            rows = await s.execute(
                select(Permission.path, Permission.access, Permission.subject).where(
                    Permission.path.startswith(base, autoescape=True)
                )
            )
            grants = Grants()
            for path, access, subject in rows:
                grants.add(path, access, subject)
        return lambda name: grants.access(base + name, subjects) is not None

    async def shared_names(self, account: str, container: str) -> set[str]:
        """Paths (object names) in a container that carry permissions of their own."""
        base = _container_path(account, container) + "/"
        async with self.db.session() as s:
            paths = await s.scalars(
                select(Permission.path).where(Permission.path.startswith(base, autoescape=True))
            )
            return {path[len(base) :] for path in paths}

    async def _grants(self, s: AsyncSession | AsyncConnection, paths: list[str]) -> Grants:
        grants = Grants()
        asked = {f"path{i}": path for i, path in enumerate(paths)}
        for path, access, subject in await _grants_statement(len(paths))(s, asked):
            grants.add(path, access, subject)
        return grants

    async def _subjects(
        self, s: AsyncSession | AsyncConnection, user: str, account: str
    ) -> set[str]:
        groups = (await _SUBJECTS(s, {"account": account, "member": user})).scalars()
        return sharing.subjects_of(user, {(account, name) for name in groups})

    async def public_token(self, account: str, container: str, name: str) -> str | None:
        async with self.db.session() as s:
            link = await s.get(PublicLink, _object_path(account, container, name))
        return link.token if link else None

    async def set_public(self, account: str, container: str, name: str, public: bool) -> None:
        """Publish (a random token, kept if already public) or unpublish an object."""
        await self.get_object(account, container, name)
        path = _object_path(account, container, name)
        async with self.db.transaction() as s:
            link = await s.get(PublicLink, path)
            if public and link is None:
                s.add(PublicLink(path=path, token=sharing.new_public_token()))
            elif not public and link is not None:
                await s.delete(link)

    async def public_names(self, account: str, container: str) -> set[str]:
        base = _container_path(account, container) + "/"
        async with self.db.session() as s:
            paths = await s.scalars(
                select(PublicLink.path).where(PublicLink.path.startswith(base, autoescape=True))
            )
            return {path[len(base) :] for path in paths}

    async def resolve_public(self, token: str) -> ObjectRecord:
        """The current version behind a public token; NotFound once unpublished."""
        async with self.db.session() as s:
            link = await s.scalar(select(PublicLink).where(PublicLink.token == token))
        if link is None:
            raise errors.NotFound("No such public object")
        account, container, name = link.path.split("/", 2)
        return await self.get_object(account, container, name)

    # -- updating objects in place -------------------------------------------------------------

    async def update_meta(
        self,
        account: str,
        container: str,
        name: str,
        meta: dict[str, str],
        replace: bool = False,
        content_type: str | None = None,
        muser: str = "",
    ) -> ObjectRecord:
        """A new version on the same map with user metadata replaced or merged (an empty
        value deletes a key when merging)."""
        current = await self.get_object(account, container, name)
        merged = {} if replace else dict(current.meta)
        for key, value in check_meta(meta).items():
            if value or replace:
                merged[key] = value
            else:
                merged.pop(key, None)
        data = _Data(
            size=current.size,
            type=check_type(content_type) if content_type is not None else current.type,
            hash=current.hash,
            checksum=current.checksum,
            map_name=current.map_name,
            uuid=current.uuid,
            meta=check_meta({k: v for k, v in merged.items() if v}),
            source_serial=current.serial,
        )
        write = _Write(container, name, data, base=current.serial)
        serial = (await self._commit(account, muser, [write]))[0].serial
        return await self.get_object(account, container, name, serial)

    async def update_data(
        self,
        account: str,
        container: str,
        name: str,
        chunks: AsyncIterator[bytes] | None,
        offset: int | None = None,
        truncate: int | None = None,
        muser: str = "",
    ) -> ObjectRecord:
        """Spec §1.5 POST data update: write ``chunks`` at ``offset`` (None appends),
        then set the size to ``truncate`` if given. Only touched blocks are rebuilt; the
        rest of the map is reused, and a zero-extended block keeps its hash."""
        current = await self.get_object(account, container, name)
        hashes = list(await self.hashmap(current)) if current.size else []
        size = current.size
        if chunks is not None:
            position = size if offset is None else offset
            if position < 0:
                raise errors.InvalidInput("A negative offset")
            hashes, size = await self._write_at(current, hashes, size, position, chunks)
        if truncate is not None:
            if truncate < 0:
                raise errors.InvalidInput("X-Object-Bytes is a byte count")
            hashes, size = await self._resize(current.name, hashes, size, truncate)
        hashes = hashes or [EMPTY_HASH]
        data = await self._new_map(size, hashes, current.type, current.meta, "")
        data.uuid = current.uuid
        data.source_serial = current.serial
        write = _Write(container, name, data, base=current.serial)
        serial = (await self._commit(account, muser, [write]))[0].serial
        return await self.get_object(account, container, name, serial)

    async def _block(self, name: str, hashes: list[str], size: int, index: int) -> bytearray:
        """Block ``index`` as readers see it (zero-padded to its length in ``size``)."""
        if index >= len(hashes):
            return bytearray()
        try:
            (raw,) = await self.store.get_blocks([hashes[index]])
        except BlockMissing as exc:
            raise errors.Unavailable(f"Blocks of {name!r} are missing") from exc
        return bytearray(raw.ljust(min(BLOCK_SIZE, size - index * BLOCK_SIZE), b"\0"))

    async def _write_at(
        self,
        record: ObjectRecord,
        hashes: list[str],
        size: int,
        position: int,
        chunks: AsyncIterator[bytes],
    ) -> tuple[list[str], int]:
        index = position // BLOCK_SIZE
        block: bytearray | None = None
        written = False

        async def flush() -> None:
            nonlocal block
            assert block is not None
            (digest,) = await self.store.put_blocks([block])
            while len(hashes) <= index:
                hashes.append(EMPTY_HASH)  # a gap reads as zeros
            hashes[index] = digest
            block = None

        async for chunk in chunks:
            view = memoryview(chunk)
            while view:
                if block is None:
                    block = await self._block(record.name, hashes, size, index)
                within = position - index * BLOCK_SIZE
                take = min(BLOCK_SIZE - within, len(view))
                if len(block) < within:
                    block.extend(bytes(within - len(block)))
                block[within : within + take] = view[:take]
                view = view[take:]
                position += take
                written = True
                size = max(size, position)
                if position % BLOCK_SIZE == 0:
                    await flush()
                    index += 1
        if block is not None:
            await flush()
        if not written and position > size:
            size = position
        blocks_needed = -(-size // BLOCK_SIZE)
        hashes.extend([EMPTY_HASH] * (blocks_needed - len(hashes)))
        return hashes, size

    async def _resize(
        self, name: str, hashes: list[str], size: int, new_size: int
    ) -> tuple[list[str], int]:
        """Truncate or zero-extend; a block cut in the middle is rebuilt so old bytes
        past the new end can never reappear when the object grows again."""
        blocks_needed = -(-new_size // BLOCK_SIZE)
        if new_size < size:
            hashes = hashes[:blocks_needed]
            tail = new_size % BLOCK_SIZE
            if tail:
                block = await self._block(name, hashes, size, blocks_needed - 1)
                (hashes[-1],) = await self.store.put_blocks([memoryview(block)[:tail]])
        else:
            hashes = hashes + [EMPTY_HASH] * (blocks_needed - len(hashes))
        return hashes, new_size

    # -- internals --------------------------------------------------------------------------

    def _check_object_args(self, account: str, container: str, name: str) -> None:
        check_account(account)
        check_container_name(container)
        check_object_name(name)

    async def _node(self, s: AsyncSession, path: str) -> Node | None:
        return await s.scalar(select(Node).where(Node.path == path))

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

    async def _container_node(self, s: AsyncSession, account: str, name: str) -> Node:
        node = await self._node(s, _container_path(account, name))
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

    async def _attributes(
        self, s: AsyncSession | AsyncConnection, serial: int, domain: str
    ) -> dict[str, str]:
        rows = await s.execute(
            select(Attribute.key, Attribute.value).where(
                Attribute.serial == serial, Attribute.domain == domain
            )
        )
        return {key: value for key, value in rows}

    async def _new_map(
        self, size: int, hashes: list[str], content_type: str, meta: dict[str, str], md5: str
    ) -> _Data:
        """Store the map under a name never used before (a crash leaves it as garbage).
        A one-block version stores none (``map_name`` ""; see :meth:`_hashes`): for a
        small object the map file was one more file created and fsynced per write."""
        map_name = ""
        if len(hashes) > 1:
            map_name = secrets.token_hex(16)
            await self.store.put_map(map_name, hashes)
        return _Data(size, content_type, blocks.merkle(hashes), md5, map_name, None, meta)

    def _reuse(
        self,
        source: ObjectRecord,
        meta: dict[str, str] | None,
        keep_uuid: bool,
        fresh: bool = False,
    ) -> _Data:
        merged = {} if fresh else dict(source.meta)
        merged.update(check_meta(meta))
        merged = {key: value for key, value in merged.items() if value}  # "": removed
        return _Data(
            size=source.size,
            type=source.type,
            hash=source.hash,
            checksum=source.checksum,
            map_name=source.map_name,
            uuid=source.uuid if keep_uuid else None,
            meta=check_meta(merged),
            source_serial=source.serial,
        )

    async def _policy(
        self, conn: AsyncConnection, account: str, container: str, lock: bool = False
    ) -> Row[Any]:
        """``(id, quota, versioning, project)`` of a container; NotFound if absent.
        ``lock``: in a write transaction, lock the policy row (PostgreSQL), so writers of
        one container check its quota one at a time."""
        query = _POLICY_LOCKED if lock else _POLICY
        row = (await query(conn, {"path": _container_path(account, container)})).first()
        if row is None:
            raise errors.NotFound(f"No container {container!r}")
        return row

    async def _current(self, conn: AsyncConnection, path: str) -> Row[Any] | None:
        """The node of ``path`` with its current version's ``(serial, size, uuid)``: one
        row with ``serial`` None when the node has no current version, no row when there
        is no node."""
        return (await _CURRENT(conn, {"path": path})).first()

    async def _read_plan(
        self,
        conn: AsyncConnection,
        account: str,
        targets: list[tuple[str, str]],
        in_transaction: bool = False,
    ) -> _Plan:
        """``in_transaction``: read by the write's own transaction, which locks each
        container's policy row (PostgreSQL) so writers of one container check its quota
        one at a time. The rows are locked in name order, so two writes across the same
        containers (a move each way) wait for each other rather than deadlock."""
        plan = _Plan({}, {}, {}, in_transaction)
        for container in sorted({container for container, _ in targets}):
            plan.policies[container] = await self._policy(
                conn, account, container, lock=in_transaction
            )
        for container, name in targets:
            found = await self._current(conn, _object_path(account, container, name))
            plan.nodes[(container, name)] = found.id if found is not None else None
            plan.current[(container, name)] = (
                found if found is not None and found.serial is not None else None
            )
        return plan

    async def _check_plan(
        self, conn: AsyncConnection, plan: _Plan, writes: list[_Write]
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
            _, used, _ = await self._container_stats(conn, policy.id)
            if used + change > policy.quota:
                raise errors.OverQuota(
                    f"Container {container!r} quota exceeded",
                    data={"limit": policy.quota, "usage": used, "requested": change},
                )
        return deltas, expected

    async def _commit(
        self, account: str, muser: str, writes: list[_Write], plan: _Plan | None = None
    ) -> list[_Committed]:
        """One transaction for all ``writes`` and the quota of their total size change;
        retried when a concurrent write moved a current version (or the container's
        policy changed) since ``plan`` was read before it."""
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
        self, account: str, muser: str, writes: list[_Write], plan: _Plan | None
    ) -> list[_Committed]:
        async with self.db.write() as conn:
            if plan is None:
                targets = [(w.container, w.name) for w in writes]
                plan = await self._read_plan(conn, account, targets, in_transaction=True)
            deltas, expected = await self._check_plan(conn, plan, writes)
            provisions: list[Charge] = []
            for project, delta in sorted(deltas.items()):
                if delta:
                    provisions += charge(account, project, RESOURCE, delta)
            done = [await self._apply(conn, account, muser, w, plan, expected) for w in writes]
            if provisions:  # last: every writer locks policies, then holdings
                await self.quotas.take(conn, CLIENTKEY, provisions, name=f"pithos {account}")
        return done

    async def _apply(
        self,
        conn: AsyncConnection,
        account: str,
        muser: str,
        write: _Write,
        plan: _Plan,
        expected: dict[tuple[str, str], int | None],
    ) -> _Committed:
        """Core statements, a handful per write: this is every PUT's and DELETE's
        transaction, and SQLite runs those one at a time."""
        path = _object_path(account, write.container, write.name)
        planned = plan.policies[write.container]
        if plan.in_transaction:  # read under this transaction: it still holds
            container = planned
            node = plan.nodes[(write.container, write.name)]
            old = plan.current[(write.container, write.name)]
        else:
            container = await self._policy(conn, account, write.container, lock=True)
            if (container.id, container.quota, container.project) != (
                planned.id,
                planned.quota,
                planned.project,
            ):
                raise _Raced()  # the quota was reckoned for another container or project
            found = await self._current(conn, path)
            node = found.id if found is not None else None
            old = found if found is not None and found.serial is not None else None
            if (old.serial if old else None) != expected[(write.container, write.name)]:
                raise _Raced()
        data = write.data
        if data is not None and data.source_serial is not None:
            # A copy shares the source version's map: the source must still exist when
            # the copy commits, or gc could have taken the map (versioning "none").
            source = (await _SOURCE_VERSION(conn, {"source": data.source_serial})).scalar()
            if source is None:
                raise errors.Conflict("The source object changed meanwhile; try again")
        node_id = node if node is not None else await self._insert_node(conn, path, container.id)
        now = utcnow()
        if data is None:
            # Sharing and public links belong to the path and end with the object.
            if old is None or old.shared:
                await _DROP_PERMISSIONS(conn, {"path": path})
            if old is None or old.token is not None:
                await _DROP_PUBLIC(conn, {"path": path})
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
            await _NEW_VERSION(conn, {"node_id": node_id, "mtime": now, "muser": muser, **values})
        ).scalar()
        assert serial is not None
        await _COUNT_WRITE[conn.dialect.name](
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
            await _DROP_PERMISSIONS(conn, {"path": path})
            await _DROP_PUBLIC(conn, {"path": path})
            await conn.execute(
                update(PERMISSIONS).where(PERMISSIONS.c.path == write.moved_from).values(path=path)
            )
            await conn.execute(
                update(PUBLIC).where(PUBLIC.c.path == write.moved_from).values(path=path)
            )
        if old is not None:
            replaced = {"old_serial": old.serial}
            if container.versioning == "none":
                await _DROP_ATTRIBUTES(conn, replaced)
                await _DROP_VERSION(conn, replaced)
            else:
                await _TO_HISTORY(conn, replaced)
        return _Committed(serial, values["uuid"], now)

    async def _count_meta_keys(
        self, conn: AsyncConnection, container_id: int, data: _Data | None, old: Row[Any] | None
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
            await _COUNT_KEY[conn.dialect.name](conn, change)
            if key in gone:
                await _DROP_UNUSED_KEY(conn, change)

    async def _user_keys(self, conn: AsyncConnection, serial: int | None) -> set[str]:
        if serial is None:
            return set()
        rows = await _USER_KEYS(conn, {"serial": serial})
        return {key for (key,) in rows if not key.startswith(":")}

    async def _insert_node(self, conn: AsyncConnection, path: str, parent_id: int) -> int:
        """A new object node; a concurrent writer of the same new name may have inserted
        it first (PostgreSQL), in which case theirs is used."""
        new_node = _NEW_NODE[conn.dialect.name]
        node_id = (await new_node(conn, {"path": path, "parent_id": parent_id})).scalar()
        if node_id is None:
            node_id = (await _NODE_ID(conn, {"path": path})).scalar()
        assert node_id is not None
        return node_id

    async def _write_attributes(
        self, conn: AsyncConnection, serial: int, data: _Data, old: int | None
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
            await _carried(len(replaced))(conn, carried)
        rows = [
            {"serial": serial, "domain": domain, "key": key, "value": value}
            for domain, values in replaced.items()
            for key, value in values.items()
        ]
        if rows:
            await _NEW_ATTRIBUTES(conn, rows)


def _check_domains(
    domains: dict[str, dict[str, str]] | None,
) -> dict[str, dict[str, str]] | None:
    if domains is None:
        return None
    for domain, values in domains.items():
        if domain == USER_DOMAIN or not domain or len(domain) > 64:
            raise errors.InvalidInput(f"Bad metadata domain {domain!r}")
        for key, value in values.items():
            if not key or len(key) > MAX_META_KEY:
                raise errors.InvalidInput(f"A metadata key has 1 to {MAX_META_KEY} characters")
            if len(value) > MAX_META_VALUE:
                raise errors.InvalidInput(
                    f"A metadata value has at most {MAX_META_VALUE} characters"
                )
            _utf8(key, "Metadata key")
            _utf8(value, "Metadata value")
    return domains


def _effective(grants: Grants, path: str) -> Sharing:
    nearest = grants.nearest(path)
    if nearest is None:
        return Sharing()
    granted = grants.by_path[nearest]
    return Sharing(
        read=tuple(sorted(granted[sharing.READ] - granted[sharing.WRITE])),
        write=tuple(sorted(granted[sharing.WRITE])),
        path=nearest,
    )


def _version_record(account: str, container: str, name: str, rows: list[Row[Any]]) -> ObjectRecord:
    row = rows[0]
    meta = {r.key: r.value for r in rows if r.serial == row.serial and r.key is not None}
    record = _record(account, container, name, row, meta)
    if record.cluster == CURRENT and expired(record):
        # Gone at its X-Delete-At, as in Swift; the expirer deletes it later.
        raise errors.NotFound(f"No object {container}/{name}")
    return record


def expired(record: ObjectRecord) -> bool:
    at = record.meta.get(DELETE_AT)
    return bool(at) and at.isdigit() and int(at) <= time.time()


def _record(
    account: str, container: str, name: str, row: Version | Row[Any], meta: dict[str, str]
) -> ObjectRecord:
    return ObjectRecord(account, container, name, *_version_of(row), meta)
