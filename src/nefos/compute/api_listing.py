"""Nova's server listing query (``GET /servers``, ``/servers/detail``) made one
:class:`~nefos.compute.listing.ServerQuery` for the database, and the link to the next
page when a page is full (Nova's ``servers_links``).

Filters: ``status`` (the dialect's name: SHUTOFF or STOPPED), ``name``, ``ip``, ``ip6``
(regular expressions), ``image`` and ``flavor`` (an id, or a link to one),
``changes-since``; paging: ``marker`` (400 when it is no server the caller sees),
``limit`` (a whole number, at most ``[limits] server_list_max``), ``sort_key`` and
``sort_dir`` (repeatable, as Nova takes them; a key without a direction sorts
descending). ``with_count=true`` adds ``count``: how many servers the filters select
over all pages (Cinder's ``with_count``, a nefos extension to Nova). Nova ignores query
parameters it does not know, and so does this.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from nefos.compute.checks import parse_id
from nefos.compute.listing import DIRECTIONS, SORT_KEYS, ServerQuery, regex
from nefos.compute.nova import ref
from nefos.core import errors
from nefos.core.config import Limits
from nefos.core.numbers import INT64_MAX, ascii_int

STATUSES = ("BUILD", "ACTIVE", "STOPPED", "REBOOT", "ERROR", "DELETED", "RESIZE", "UNKNOWN")


def changes_since(params: QueryParams) -> dt.datetime | None:
    raw = params.get("changes-since") or params.get("changes_since")
    if raw is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise errors.InvalidInput(f"Bad changes-since {raw!r}: an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _status(params: QueryParams, shown: Callable[[str], str]) -> str | None:
    raw = params.get("status")
    if raw is None:
        return None
    named = {shown(s): s for s in STATUSES}  # the dialect's names
    status = named.get(raw.upper())
    if status is None:
        raise errors.InvalidInput(f"Invalid status {raw!r}")
    return status


def _sort(params: QueryParams) -> tuple[tuple[str, str], ...]:
    keys, directions = params.getlist("sort_key"), params.getlist("sort_dir")
    if len(directions) > len(keys):
        raise errors.InvalidInput("Each sort_dir needs a sort_key before it")
    for key in keys:
        if key not in SORT_KEYS:
            raise errors.InvalidInput(f"Invalid sort_key {key!r}: one of {', '.join(SORT_KEYS)}")
    for direction in directions:
        if direction not in DIRECTIONS:
            raise errors.InvalidInput(f"Invalid sort_dir {direction!r}: asc or desc")
    directions += ["desc"] * (len(keys) - len(directions))
    return tuple(zip(keys, directions, strict=True))


def _limit(params: QueryParams, limits: Limits) -> int:
    raw = params.get("limit")
    if raw is None:
        return limits.server_list_max
    limit = ascii_int(raw, 0, INT64_MAX)
    if limit is None:
        raise errors.InvalidInput("limit param must be a whole number, at least 0")
    return min(limit, limits.server_list_max)


def server_query(params: QueryParams, limits: Limits, shown: Callable[[str], str]) -> ServerQuery:
    """The listing a query string asks for; ``shown`` names a status in the dialect."""
    after = None
    marker = params.get("marker")
    if marker is not None:
        after = parse_id(marker)
        if after is None:
            raise errors.InvalidInput(f"marker [{marker}] not found")
    flavor, no_flavor = None, False
    if params.get("flavor"):
        flavor = parse_id(ref(params["flavor"], "flavor"))
        no_flavor = flavor is None  # no such flavor: Nova lists nothing
    name, ip, ip6 = (params.get(key) or None for key in ("name", "ip", "ip6"))
    return ServerQuery(
        status=_status(params, shown),
        name=None if name is None else regex(name, "name"),
        image=ref(params["image"], "image") if params.get("image") else None,
        flavor=flavor,
        no_flavor=no_flavor,
        ip=None if ip is None else regex(ip, "ip"),
        ip6=None if ip6 is None else regex(ip6, "ip6"),
        changes_since=changes_since(params),
        sort=_sort(params),
        after=after,
        limit=_limit(params, limits),
    )


def with_count(params: QueryParams) -> bool:
    raw = params.get("with_count")
    if raw is None:
        return False
    wanted = {"true": True, "1": True, "false": False, "0": False}.get(raw.lower())
    if wanted is None:
        raise errors.InvalidInput(f"Invalid with_count {raw!r}: true or false")
    return wanted


def next_link(base: str, params: QueryParams, last_id: int) -> list[dict[str, str]]:
    """Nova's ``servers_links``: the same query, from past the page's last server."""
    kept = [(k, v) for k, v in params.multi_items() if k != "marker"]
    return [{"rel": "next", "href": f"{base}?{urlencode([*kept, ('marker', str(last_id))])}"}]
