"""Server listings in the database (Nova's ``GET /servers``): which servers a caller
sees, filtered, sorted and paged by one statement, so a page costs the same few
statements however many servers there are (issue 19).

A server's status is not a column: it derives from the backend's last report and the
job in flight (:attr:`nefos.compute.views.ServerView.status`). :func:`status_of` says
the same in SQL, and a test holds the two together.

``name`` is a regular expression searched anywhere in the name, as Nova filters it in
SQL: SQLAlchemy's ``regexp_match`` is PostgreSQL's ``~`` and, on SQLite, a Python
``re.search`` it registers on each connection, so both databases filter in the
statement. (PostgreSQL's regular expressions are POSIX ones with Perl's extensions; a
pattern both read alike, which covers what clients send, means the same on both.)
``ip`` and ``ip6`` are matched from the start of each fixed address, as Nova's
``re.match`` does, against the ports the server's owner holds on it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, and_, case, cast, exists, false, func, or_
from sqlalchemy.sql.elements import ColumnElement

from nefos.backends import base
from nefos.compute.models import Server
from nefos.core import errors
from nefos.network.models import IpAddress, Port

# The backend's operstate -> the status the API shows (before a job in flight).
STATUS = {
    "BUILD": "BUILD",
    "ERROR": "ERROR",
    "STOPPED": "STOPPED",
    "STARTED": "ACTIVE",
    "DESTROYED": "DELETED",
    "RESIZE": "RESIZE",
}
IN_FLIGHT = (base.QUEUED, base.WAITING, base.RUNNING)

# Nova's sort keys a listing takes, and the column each sorts by. A key whose column
# may be null sorts its nulls first (ascending), the same on both databases.
SORT_KEYS: dict[str, Any] = {
    "id": Server.id,
    "uuid": Server.id,
    "display_name": Server.name,
    "created_at": Server.created,
    "updated_at": Server.updated,
    "launched_at": Server.launched,
    "image_ref": Server.image_id,
    "instance_type_id": Server.flavor_id,
    "project_id": Server.project,
    "user_id": Server.user_id,
    "deleted": Server.deleted,
}
NULLABLE = frozenset({"launched_at"})
DIRECTIONS = ("asc", "desc")


def status_of() -> ColumnElement[str]:
    """A server row's status as :attr:`ServerView.status` derives it, in SQL."""
    in_flight = Server.job_status.in_(IN_FLIGHT)
    return case(
        (Server.deleted.is_(True), "DELETED"),
        (
            and_(Server.operstate == "STARTED", Server.job_opcode == base.OP_REBOOT, in_flight),
            "REBOOT",
        ),
        (
            and_(Server.operstate == "STOPPED", Server.job_opcode == base.OP_MODIFY, in_flight),
            "RESIZE",
        ),
        *((Server.operstate == operstate, status) for operstate, status in STATUS.items()),
        else_="UNKNOWN",
    )


@dataclass(frozen=True)
class ServerQuery:
    """Which servers a listing shows, in which order, how many.

    ``status``: one of :data:`STATUS`'s values, ``REBOOT`` or ``UNKNOWN`` (the API maps
    the dialect's names). ``name``, ``ip``, ``ip6``: regular expressions (the module's
    docstring). ``image``: an image id; ``flavor``: a flavor id (None, no filter; a
    flavor that is no id matches nothing, as Nova answers an unknown flavor with an
    empty list). ``changes_since``: servers changed after it, deleted ones too;
    otherwise deleted servers only with ``include_deleted``. ``sort``: (key of
    :data:`SORT_KEYS`, ``asc``|``desc``) pairs; the id breaks ties. ``after``: a marker
    server's id, the page starts past it. ``limit``: None, no limit."""

    status: str | None = None
    name: str | None = None
    image: str | None = None
    flavor: int | None = None
    no_flavor: bool = False
    ip: str | None = None
    ip6: str | None = None
    changes_since: dt.datetime | None = None
    include_deleted: bool = False
    sort: tuple[tuple[str, str], ...] = ()
    after: int | None = None
    limit: int | None = None


def regex(pattern: str, key: str) -> str:
    """``pattern`` if it is a regular expression; InvalidInput otherwise (checked here,
    so SQLite's Python function never raises inside the statement)."""
    try:
        re.compile(pattern)
    except re.error:
        raise errors.InvalidInput(f"Bad {key} filter {pattern!r}: a regular expression") from None
    return pattern


def visible_to(user: str | None, projects: Sequence[str]) -> list[ColumnElement[bool]]:
    """Servers ``user`` sees: its own and those shared to one of ``projects``."""
    if user is None:
        return []
    if projects:
        return [
            or_(
                Server.user_id == user,
                and_(Server.shared_to_project.is_(True), Server.project.in_(list(projects))),
            )
        ]
    return [Server.user_id == user]


def _address_matches(pattern: str, version: int) -> ColumnElement[bool]:
    """The server has a fixed address of ``version`` that ``pattern`` matches from its
    start, on a port its owner holds."""
    return exists().where(
        IpAddress.port_id == Port.id,
        IpAddress.floating.is_(False),
        IpAddress.ip_version == version,
        IpAddress.address.regexp_match(f"^(?:{pattern})"),
        Port.device_id == cast(Server.id, String),
        Port.user_id == Server.user_id,
    )


def conditions(query: ServerQuery) -> list[ColumnElement[bool]]:
    """The query's filters (not its visibility, order or page)."""
    found: list[ColumnElement[bool]] = []
    if query.changes_since is not None:
        found.append(Server.updated > query.changes_since)
    elif not query.include_deleted:
        found.append(Server.deleted.is_(False))
    if query.status is not None:
        found.append(status_of() == query.status)
    if query.name:
        found.append(Server.name.regexp_match(query.name))
    if query.image is not None:
        found.append(Server.image_id == query.image)
    if query.no_flavor:
        found.append(false())
    elif query.flavor is not None:
        found.append(Server.flavor_id == query.flavor)
    if query.ip:
        found.append(_address_matches(query.ip, 4))
    if query.ip6:
        found.append(_address_matches(query.ip6, 6))
    return found


def sort_columns(query: ServerQuery) -> list[tuple[Any, str]]:
    """(column, direction) to order by: the query's keys, then the id (in the first
    key's direction, as Nova appends its defaults); a nullable key is two columns,
    whether it is set and its value, so nulls sort alike on both databases."""
    columns: list[tuple[Any, str]] = []
    for key, direction in query.sort:
        column = SORT_KEYS[key]
        if key in NULLABLE:
            columns.append((case((column.is_(None), 0), else_=1), direction))
            column = func.coalesce(column, Server.created)
        columns.append((column, direction))
    if not any(key in ("id", "uuid") for key, _ in query.sort):
        columns.append((Server.id, query.sort[0][1] if query.sort else "asc"))
    return columns


def after(columns: Sequence[tuple[Any, str]], marker: Sequence[Any]) -> ColumnElement[bool]:
    """Rows past the marker's in the order: past it on the first column that differs
    (greater ascending, smaller descending), equal on all before."""
    options = []
    equal: list[ColumnElement[bool]] = []
    for (column, direction), value in zip(columns, marker, strict=True):
        past = column > value if direction == "asc" else column < value
        options.append(and_(*equal, past))
        equal.append(column == value)
    return or_(*options)


def order(columns: Sequence[tuple[Any, str]]) -> list[Any]:
    return [column.asc() if d == "asc" else column.desc() for column, d in columns]
