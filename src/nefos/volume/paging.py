"""Cinder's paging and sorting of a listing (volumes, snapshots), as openstacksdk and
``openstack volume list --limit --marker --sort-column`` ask for them: ``limit`` (at
most 1000 an answer, Cinder's ``osapi_max_limit``), ``marker`` (the last id of the
previous page), ``offset``, and ``sort=key[:asc|desc],...`` or the older ``sort_key``
and ``sort_dir``. Newest first unless told otherwise; ties go by ``created_at`` and
then ``id``, in the first key's direction. A page that is full links to the next
(``volumes_links``), whose URL keeps the filters and the order.

A user's listing is small (a quota bounds it), so it is sorted here, on the fields as
the API renders them, and the same names sort on both dialects (``name`` and Synnefo's
``display_name`` alike).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from nefos.core import errors

MAX_LIMIT = 1000
PARAMS = ("limit", "marker", "offset", "sort", "sort_key", "sort_dir")
ALIASES = {
    "name": "display_name",
    "display_name": "name",
    "description": "display_description",
    "display_description": "description",
}
TIES = ("created_at", "id")


@dataclass(frozen=True)
class Paging:
    limit: int | None  # None: not asked for (a page then ends at MAX_LIMIT)
    marker: str | None
    offset: int
    order: tuple[tuple[str, bool], ...]  # (field, descending), ties appended

    @property
    def size(self) -> int:
        """The most items one answer holds."""
        return MAX_LIMIT if self.limit is None else min(self.limit, MAX_LIMIT)


def paging_of(params: Mapping[str, str], fields: frozenset[str]) -> Paging:
    """The query's paging, or Cinder's 400 naming what is wrong. ``fields``: the
    rendered fields a listing sorts by."""
    limit = _number(params, "limit")
    offset = _number(params, "offset") or 0
    if "sort" in params and ("sort_key" in params or "sort_dir" in params):
        raise errors.InvalidInput(
            "The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used "
            "with the 'sort' parameter"
        )
    if "sort" in params:
        wanted = [part.partition(":")[::2] for part in params["sort"].split(",")]
    else:
        wanted = [(params.get("sort_key", "created_at"), params.get("sort_dir", ""))]
    order: list[tuple[str, bool]] = []
    for key, direction in wanted:
        key, direction = key.strip(), direction.strip().lower() or "desc"
        if key not in fields:
            raise errors.InvalidInput(f"Invalid input: {key!r} is not a sort key")
        if direction not in ("asc", "desc"):
            raise errors.InvalidInput(f"Invalid input: sort direction {direction!r}")
        order.append((key, direction == "desc"))
    first = order[0][1]
    order += [(tie, first) for tie in TIES if tie not in {key for key, _ in order}]
    return Paging(limit, params.get("marker") or None, offset, tuple(order))


def _number(params: Mapping[str, str], name: str) -> int | None:
    if name not in params:
        return None
    value = params[name]
    if not value.isascii() or not value.isdigit():
        raise errors.InvalidInput(f"Invalid input: {name} must be a whole number, not {value!r}")
    return int(value)


def page(items: Sequence[dict[str, Any]], paging: Paging) -> list[dict[str, Any]]:
    """The items of this page, in order. A marker that is not among the items is
    Cinder's 404."""
    ordered = list(items)
    for key, descending in reversed(paging.order):  # stable: the first key sorts last
        ordered.sort(key=lambda item, key=key: _sortable(_field(item, key)), reverse=descending)
    if paging.marker is not None:
        at = next((i for i, item in enumerate(ordered) if item["id"] == paging.marker), None)
        if at is None:
            raise errors.NotFound(f"Marker {paging.marker} could not be found")
        ordered = ordered[at + 1 :]
    return ordered[paging.offset : paging.offset + paging.size]


def _field(item: dict[str, Any], key: str) -> Any:
    return item[key] if key in item else item.get(ALIASES.get(key, key))


def _sortable(value: Any) -> tuple[int, Any]:
    """None first, then the values (of one type per field)."""
    return (0, "") if value is None else (1, value)


def next_links(
    paging: Paging, shown: Sequence[dict[str, Any]], url: str, params: Mapping[str, str]
) -> list[dict[str, str]]:
    """Cinder's ``<kind>_links``: a full page links to the one after its last item."""
    if not shown or len(shown) < paging.size:
        return []
    kept = {k: v for k, v in params.items() if k not in ("marker", "offset")}
    query = urlencode({**kept, "marker": shown[-1]["id"]})
    return [{"rel": "next", "href": f"{url}?{query}"}]
