"""The statements of every small request (a PUT, GET, HEAD or DELETE), built once.

Apart from the methods that run them, so that they stay module constants, built at
import (a statement built per call costs more CPU than its SQL, see below) and shared by
the parts of ``Namespace``; ``tests/storage/test_namespace.py`` checks that those of a
small request run on the fast path of ``nefos.core.prepared``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, insert, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from nefos.blocks import BLOCK_SIZE
from nefos.core.prepared import Prepared
from nefos.storage.models import (
    CURRENT,
    DELETED,
    HISTORY,
    Attribute,
    ContainerMetaKey,
    ContainerStats,
    GroupMember,
    Node,
    Permission,
    Policy,
    PublicLink,
    Version,
)
from nefos.storage.records import USER_DOMAIN, VERSION_FIELDS

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
RECORD_COLUMNS = [VERSIONS.c[name] for name in VERSION_FIELDS]


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


def carried_statement(replaced: int) -> Prepared:
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


POLICY = Prepared(_policy_statement(lock=False))
POLICY_LOCKED = Prepared(_policy_statement(lock=True))
# A path's node, current version, and whether sharing or a public link hangs on it (a
# delete drops them, and most objects have neither).
CURRENT_OF_PATH = Prepared(
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
CURRENT_VERSION = Prepared(_version_statement(current=True))
SOME_VERSION = Prepared(_version_statement(current=False))
_GRANTS: dict[int, Prepared] = {}  # by the number of paths asked about (a path's depth)


def grants_statement(paths: int) -> Prepared:
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


SUBJECTS = Prepared(
    select(GroupMember.__table__.c.name).where(
        GroupMember.__table__.c.account == bindparam("account"),
        GroupMember.__table__.c.member == bindparam("member"),
    )
)
NODE_ID = Prepared(select(NODES.c.id).where(NODES.c.path == bindparam("path")))
NEW_NODE = {
    dialect: Prepared(
        insert_(NODES).on_conflict_do_nothing(index_elements=["path"]).returning(NODES.c.id)
    )
    for dialect, insert_ in (("sqlite", sqlite_insert), ("postgresql", pg_insert))
}
NEW_VERSION = Prepared(insert(VERSIONS).returning(VERSIONS.c.serial))
SOURCE_VERSION = Prepared(
    select(VERSIONS.c.serial)
    .where(VERSIONS.c.serial == bindparam("source"))
    .with_for_update(read=True)
)
NEW_ATTRIBUTES = Prepared(insert(ATTRIBUTES))
DROP_PERMISSIONS = Prepared(delete(PERMISSIONS).where(PERMISSIONS.c.path == bindparam("path")))
DROP_PUBLIC = Prepared(delete(PUBLIC).where(PUBLIC.c.path == bindparam("path")))
DROP_ATTRIBUTES = Prepared(delete(ATTRIBUTES).where(ATTRIBUTES.c.serial == bindparam("old_serial")))
DROP_VERSION = Prepared(delete(VERSIONS).where(VERSIONS.c.serial == bindparam("old_serial")))
TO_HISTORY = Prepared(
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


COUNT_WRITE = {"sqlite": _count_write(sqlite_insert), "postgresql": _count_write(pg_insert)}


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


COUNT_KEY = {"sqlite": _count_key(sqlite_insert), "postgresql": _count_key(pg_insert)}
DROP_UNUSED_KEY = Prepared(
    delete(META_KEYS).where(
        META_KEYS.c.node_id == bindparam("container"),
        META_KEYS.c.key == bindparam("key"),
        META_KEYS.c.objects <= 0,
    )
)
USER_KEYS = Prepared(
    select(ATTRIBUTES.c.key).where(
        ATTRIBUTES.c.serial == bindparam("serial"), ATTRIBUTES.c.domain == USER_DOMAIN
    )
)


# What an upload asks of the stored bodies (``nefos.storage.upload.Copies``): whether one
# has a size, at its start, and the MD5 of one with the same Merkle hash and size, at its
# end. Only bodies of more than one block ask, and only their versions are in the partial
# index that answers (``ix_pithos_versions_content``, migration 0014): the bound is
# written out as the index's predicate is, so that a planner matches it without values.
_COPIES = [
    VERSIONS.c.size > literal_column(str(BLOCK_SIZE)),
    VERSIONS.c.checksum != "",
]
COPY_OF_SIZE = Prepared(
    select(VERSIONS.c.serial).where(VERSIONS.c.size == bindparam("size"), *_COPIES).limit(1)
)
COPY_MD5 = Prepared(
    select(VERSIONS.c.checksum)
    .where(VERSIONS.c.size == bindparam("size"), VERSIONS.c.hash == bindparam("hash"), *_COPIES)
    .limit(1)
)
