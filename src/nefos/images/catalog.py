"""Image listings in the database: which images a user sees, filtered, sorted and paged
by one statement, and their metadata by one more, whatever the number of images.

An image is a storage file whose current version has a ``name`` in the ``plankton``
domain (:mod:`nefos.images.service`); its fields are rows of ``pithos_attributes`` and
its sharing rows of ``pithos_permissions`` on the file or its nearest directory object
(the nearest path with permissions wins, spec §1.7). So the statement joins each field
it needs as an attribute row, and finds the nearest permission path by a correlated
subquery bounded to the file's container.

Visibility is the one rule Glance and Plankton share (:class:`ImageQuery` says which
variant): the owner, ``public`` images, and shared ones where the user is a member or
may read the file. A ``visibility`` attribute, when the image has one, says which of
public, private, shared or community it is; otherwise the file's sharing does (``*``
among its readers: public; any reader or member: shared; else private).

Filters are data (:class:`Match`, :class:`AnyOf`), which the APIs build from their query
strings, so that each API keeps its own wire semantics and the SQL lives here alone.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from nefos.core import errors
from nefos.storage.models import CURRENT, Attribute, GroupMember, Node, Permission, Version
from nefos.storage.service import ObjectRecord
from nefos.storage.sharing import EVERYONE

DOMAIN = "plankton"
QUEUED, ACTIVE = "queued", "active"
PROPERTY, MEMBER, TAG = "property:", "member:", "tag:"
HIDDEN_KEY = PROPERTY + "os_hidden"
# Fields a sort may name; ``id`` last breaks every tie.
SORT_FIELDS = (
    "name", "status", "container_format", "disk_format", "size", "listed_size", "id",
    "created_at", "updated_at",
)  # fmt: skip
OPERATORS = ("eq", "neq", "gt", "gte", "lt", "lte", "in")
# Attributes each page reads at once: more serials than this go in several statements.
ATTRIBUTE_BATCH = 500


@dataclass(frozen=True)
class Match:
    """``field operator value``. Fields: ``id`` (a UUID), ``name``, ``status``,
    ``disk_format`` and ``container_format`` (null when a queued image has none),
    ``size`` (the file's bytes), ``listed_size`` (null while queued, as Glance v2 shows
    it), ``created_at`` and ``updated_at`` (aware datetimes), ``owner``, ``protected``
    (bool), ``min_disk`` and ``min_ram`` (as text), ``checksum`` (the MD5, "" if none),
    ``description`` (as Glance shows it: the field, else a ``description`` property),
    ``property:<key>`` (None: the image has no such property), ``tag`` (has this tag),
    ``tags`` (exactly these tags, in order), ``member:<user>`` (that member's status,
    None: no such member). ``in`` takes a collection."""

    field: str
    operator: str
    value: Any


@dataclass(frozen=True)
class AnyOf:
    """Any of these conditions; none at all matches nothing."""

    options: tuple[Condition, ...] = ()


Condition = Match | AnyOf
NOTHING = AnyOf()


@dataclass(frozen=True)
class ImageQuery:
    """Which images a listing shows, in which order, how many.

    ``member_status``: which memberships count (None: any). ``grant_status``: the
    membership status a read grant on the file stands for (Glance: ``accepted``); None
    lets a grant count whatever ``member_status`` asks (Plankton and compute).
    ``visibility``: None shows no community image (Plankton); ``listed`` shows the
    caller's own community images only (Glance's default); ``all`` adds every community
    image; one of the four visibilities keeps only those (``private`` only the
    caller's). ``hidden``: None either; else only images whose ``os_hidden`` is this.
    ``sort``: (field, ``asc``|``desc``) pairs; nulls sort low. ``after``: a marker image,
    the page starts past it. ``limit``: None, no limit."""

    member_status: str | None = "accepted"
    grant_status: str | None = None
    visibility: str | None = None
    hidden: bool | None = None
    conditions: tuple[Condition, ...] = ()
    sort: tuple[tuple[str, str], ...] = (("id", "asc"),)
    after: uuid.UUID | None = None
    limit: int | None = None


@dataclass
class Listed:
    """One image as the listing found it: its file's version, its plankton values and
    its visibility, computed in the statement."""

    record: ObjectRecord
    values: dict[str, str] = field(default_factory=dict)
    visibility: str = "private"


class _Columns:
    """The SQL expressions of one listing statement, attribute joins added as needed."""

    def __init__(self, user: str, dialect: str):
        self.user = user
        self.dialect = dialect
        self.container = aliased(Node)
        self.account = aliased(Node)
        self.statement: Select[Any] = (
            select(Node.path, Version)
            .join(Version, Version.node_id == Node.id)
            .join(self.container, self.container.id == Node.parent_id)
            .join(self.account, self.account.id == self.container.parent_id)
            .where(Version.cluster == CURRENT)
        )
        self.joined: dict[str, Any] = {}
        name = self.attribute("name", outer=False)
        self.name = name.value
        self.status = func.coalesce(self.attribute("status").value, ACTIVE)
        self.queued = self.status == QUEUED
        self.owned = self.account.path == user

    def c(self, expression: Any) -> Any:
        """Text compared by code point, as Python compares it (PostgreSQL's default
        collation may be a locale's)."""
        return expression.collate("C") if self.dialect == "postgresql" else expression

    def attribute(self, key: str, outer: bool = True) -> Any:
        if key not in self.joined:
            row = aliased(Attribute)
            on = and_(row.serial == Version.serial, row.domain == DOMAIN, row.key == key)
            self.statement = self.statement.join(row, on, isouter=outer)
            self.joined[key] = row
        return self.joined[key]

    # -- sharing ----------------------------------------------------------------------

    def nearest_grant_path(self) -> Any:
        """The path whose permissions apply to the file: its own, or its nearest
        directory object's with any (the longest such prefix, so the greatest)."""
        grant = aliased(Permission)
        base = self.container.path + "/"
        prefix = or_(
            grant.path == Node.path,
            and_(
                self.c(grant.path) >= self.c(base),
                self.c(grant.path) < self.c(Node.path),
                func.substr(Node.path, 1, func.length(grant.path) + 1) == grant.path + "/",
            ),
        )
        nearest = select(func.max(self.c(grant.path))).where(prefix)
        return nearest.correlate_except(grant).scalar_subquery()

    def sharing(self) -> tuple[Any, Any, Any]:
        """(any reader, ``*`` a reader, the user a reader) at the nearest path."""
        nearest = self.nearest_grant_path()
        reader = aliased(Permission)
        at_nearest = reader.path == nearest
        anyone = exists().where(at_nearest).correlate_except(reader)
        everyone = exists().where(at_nearest, reader.subject == EVERYONE).correlate_except(reader)
        group = aliased(GroupMember)
        in_group = (
            exists()
            .where(
                group.account == self.account.path,
                group.member == self.user,
                reader.subject == group.account + ":" + group.name,
            )
            .correlate_except(group)
        )
        granted = (
            exists()
            .where(at_nearest, or_(reader.subject.in_((self.user, EVERYONE)), in_group))
            .correlate_except(reader)
        )
        return anyone, everyone, granted

    # -- fields -----------------------------------------------------------------------

    def defaulted(self, key: str, default: str) -> Any:
        """A format: the attribute, else null while queued, else the default."""
        value = self.attribute(key).value
        return func.coalesce(value, case((self.queued, null()), else_=literal(default)))

    def text(self, name: str) -> Any:
        """A text field as an expression (see :class:`Match`)."""
        if name == "name":
            return self.name
        if name == "status":
            return self.status
        if name == "disk_format":
            return self.defaulted("disk_format", "diskdump")
        if name == "container_format":
            return self.defaulted("container_format", "bare")
        if name == "owner":
            return self.account.path
        if name in ("min_disk", "min_ram"):
            return func.coalesce(self.attribute(name).value, "0")
        if name == "checksum":
            return Version.checksum
        if name == "description":
            own = func.nullif(self.attribute("description").value, "")
            return func.coalesce(own, self.attribute(PROPERTY + "description").value, "")
        if name.startswith((PROPERTY, MEMBER)):
            return self.attribute(name).value
        raise errors.InvalidInput(f"Unable to filter on {name!r}")

    def sort_value(self, name: str) -> Any:
        if name == "id":
            return Version.uuid
        if name == "size":
            return Version.size
        if name == "listed_size":
            return case((self.queued, null()), else_=Version.size)
        if name == "updated_at":
            return Version.mtime
        if name == "created_at":
            # Every way to make an image writes created_at (ISO 8601 in UTC, which
            # sorts as text); the file's time stands in only where none was written.
            return self.c(self.attribute("created_at").value)
        return self.c(self.text(name))


def _compare(column: Any, operator: str, value: Any) -> ColumnElement[bool]:
    if operator == "in":
        return column.in_(list(value)) if value else false()
    if value is None:
        if operator == "eq":
            return column.is_(None)
        if operator == "neq":
            return column.isnot(None)
        return false()
    return {
        "eq": lambda: column == value,
        "neq": lambda: column != value,
        "gt": lambda: column > value,
        "gte": lambda: column >= value,
        "lt": lambda: column < value,
        "lte": lambda: column <= value,
    }[operator]()


def _created_at(columns: _Columns, operator: str, moment: dt.datetime) -> ColumnElement[bool]:
    """The image's created_at (ISO text in UTC), or its file's time where it has none."""
    stored = columns.attribute("created_at").value
    text = moment.astimezone(dt.UTC).isoformat()
    return or_(
        and_(stored.isnot(None), _compare(columns.c(stored), operator, text)),
        and_(stored.is_(None), _compare(Version.mtime, operator, moment)),
    )


def _condition(columns: _Columns, condition: Condition) -> ColumnElement[bool]:
    if isinstance(condition, AnyOf):
        if not condition.options:
            return false()
        return or_(*(_condition(columns, option) for option in condition.options))
    name, operator, value = condition.field, condition.operator, condition.value
    if operator not in OPERATORS:
        raise errors.InvalidInput(f"Unable to filter by unknown operator '{operator}'.")
    if name == "id":
        return _compare(Version.uuid, operator, value)
    if name in ("size", "listed_size"):
        return _compare(columns.sort_value(name), operator, value)
    if name == "updated_at":
        return _compare(Version.mtime, operator, value)
    if name == "created_at":
        return _created_at(columns, operator, value)
    if name == "protected":
        flag = func.coalesce(columns.attribute("protected").value, "false") == "true"
        return flag if value else not_(flag)
    if name == "tag":
        tag = aliased(Attribute)
        return exists().where(
            tag.serial == Version.serial,
            tag.domain == DOMAIN,
            tag.key.startswith(TAG),
            tag.value == value,
        )
    if name == "tags":
        return _exact_tags(value)
    return _compare(columns.text(name), operator, value)


def _exact_tags(tags: Sequence[str]) -> ColumnElement[bool]:
    """Exactly these tags in this order (``tag:000``, ``tag:001``, ...)."""
    tag = aliased(Attribute)
    of_image = and_(tag.serial == Version.serial, tag.domain == DOMAIN, tag.key.startswith(TAG))
    count = select(func.count()).where(of_image).scalar_subquery()
    each = [
        exists().where(of_image, tag.key == f"{TAG}{index:03d}", tag.value == value)
        for index, value in enumerate(tags)
    ]
    return and_(count == len(tags), *each)


def _visible(
    columns: _Columns, query: ImageQuery
) -> tuple[ColumnElement[bool], Any, ColumnElement[bool]]:
    """Who sees what in a listing (the module's docstring), the image's visibility, and
    whether the user may see it at all (what a lookup by id allows: a marker)."""
    anyone, everyone, granted = columns.sharing()
    member = columns.attribute(MEMBER + columns.user).value
    any_member = aliased(Attribute)
    has_members = exists().where(
        any_member.serial == Version.serial,
        any_member.domain == DOMAIN,
        any_member.key.startswith(MEMBER),
    )
    visibility = func.coalesce(
        columns.attribute("visibility").value,
        case(
            (everyone, "public"),
            (or_(has_members, anyone), "shared"),
            else_="private",
        ),
    )
    wanted = query.member_status
    member_ok = member.isnot(None) if wanted is None else member == wanted
    grant_counts = wanted is None or query.grant_status in (None, wanted)
    grant_ok = and_(member.is_(None), granted) if grant_counts else false()
    community = visibility == "community"
    shown = or_(
        columns.owned,
        visibility == "public",
        community if query.visibility in ("community", "all") else false(),
        and_(not_(community), or_(member_ok, grant_ok)),
    )
    kept: ColumnElement[bool] = true()
    if query.visibility == "listed":
        kept = not_(and_(community, not_(columns.owned)))
    elif query.visibility == "private":
        kept = and_(visibility == "private", columns.owned)
    elif query.visibility not in (None, "all"):
        kept = visibility == query.visibility
    seen = or_(
        columns.owned,
        visibility.in_(("public", "community")),
        member.isnot(None),
        granted,
    )
    return and_(shown, kept), visibility, seen


def _after(
    columns: _Columns, sort: Sequence[tuple[str, str]], marker: Sequence[Any]
) -> ColumnElement[bool]:
    """Rows past the marker's in the sort order: greater on the first field that
    differs (smaller, for a descending one), a null lower than any value."""
    options = []
    equal: list[ColumnElement[bool]] = []
    for (name, direction), value in zip(sort, marker, strict=True):
        column = columns.sort_value(name)
        if value is None:
            past = column.isnot(None) if direction == "asc" else false()
            same = column.is_(None)
        else:
            past = column > value if direction == "asc" else or_(column < value, column.is_(None))
            same = column == value
        options.append(and_(*equal, past))
        equal.append(same)
    return or_(*options)


def _order(columns: _Columns, sort: Sequence[tuple[str, str]]) -> list[Any]:
    order = []
    for name, direction in sort:
        column = columns.sort_value(name)
        present = case((column.is_(None), 0), else_=1)
        if direction == "asc":
            order += [present.asc(), column.asc()]
        else:
            order += [present.desc(), column.desc()]
    return order


def _record(path: str, version: Version) -> ObjectRecord:
    account, container, name = path.split("/", 2)
    return ObjectRecord(
        account, container, name, version.serial, version.size, version.type, version.hash,
        version.checksum, version.map_name, version.uuid, version.mtime, version.muser,
        version.cluster,
    )  # fmt: skip


async def list_images(session: AsyncSession, user: str, query: ImageQuery) -> list[Listed]:
    """The images ``query`` shows ``user``, a page of them: one statement for the
    page, one for the marker's place (if any; it must be an image the user may see),
    one per :data:`ATTRIBUTE_BATCH` images for their metadata."""
    for name, direction in query.sort:
        if name not in SORT_FIELDS or direction not in ("asc", "desc"):
            raise errors.InvalidInput(f"Invalid sort {name}:{direction}")
    dialect = session.bind.dialect.name
    columns = _Columns(user, dialect)
    shown, visibility, seen = _visible(columns, query)
    conditions = [_condition(columns, c) for c in query.conditions]
    if query.hidden is not None:
        hidden = func.coalesce(columns.attribute(HIDDEN_KEY).value, "") == "true"
        conditions.append(hidden if query.hidden else not_(hidden))
    if query.after is not None:
        keys = [columns.sort_value(name) for name, _ in query.sort]
        marker = (
            await session.execute(
                columns.statement.with_only_columns(*keys).where(Version.uuid == query.after, seen)
            )
        ).first()
        if marker is None:
            raise errors.InvalidInput(f"Marker {query.after} not found.")
        conditions.append(_after(columns, query.sort, tuple(marker)))
    order = _order(columns, query.sort)  # may join attributes: before the statement
    statement = columns.statement.add_columns(visibility).where(shown, *conditions)
    statement = statement.order_by(*order)
    if query.limit is not None:
        statement = statement.limit(query.limit)
    rows = (await session.execute(statement)).all()
    found = [Listed(_record(path, version), {}, shown_as) for path, version, shown_as in rows]
    by_serial = {entry.record.serial: entry for entry in found}
    serials = list(by_serial)
    for start in range(0, len(serials), ATTRIBUTE_BATCH):
        values = await session.execute(
            select(Attribute.serial, Attribute.key, Attribute.value).where(
                Attribute.serial.in_(serials[start : start + ATTRIBUTE_BATCH]),
                Attribute.domain == DOMAIN,
            )
        )
        for serial, key, value in values:
            by_serial[serial].values[key] = value
    return found
