"""Glance v2 image listing, ``GET /v2/images``: the query string checked as Glance's
``RequestDeserializer.index`` checks it, made one :class:`~nefos.images.catalog.ImageQuery`
for the database, and the page rendered with ``first`` and, whenever a page is full,
``next`` links.

Each filter keeps the meaning it has on Glance's image view: ``name=`` never matches an
image without a name (the view shows null), ``size_min`` never matches a queued image
(no size yet), and any other key compares the text of the view's field, so an absent
custom property equals the empty string. The conditions say this in
:mod:`nefos.images.catalog`'s terms.
"""

from __future__ import annotations

import ast
import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from nefos.core import errors
from nefos.core.config import Limits
from nefos.core.faults import json_response
from nefos.core.numbers import INT64_MIN, ascii_int, ascii_uuid
from nefos.images.api_paths import image_id_in_path
from nefos.images.api_v2_common import (
    ATTRIBUTES,
    HIDDEN,
    IMAGES,
    RESERVED_NAMESPACE,
    caller,
    render,
)
from nefos.images.catalog import NOTHING, AnyOf, Condition, ImageQuery, Match
from nefos.images.service import MEMBER_STATUSES, QUEUED, VISIBILITIES

router = APIRouter(dependencies=[Depends(image_id_in_path)])

SORT_KEYS = (
    "name", "status", "container_format", "disk_format", "size", "id", "created_at",
    "updated_at",
)  # fmt: skip
# Glance's view shows a queued image's size as null: that is the size a listing sees.
SORT_FIELDS = {"size": "listed_size"}
CHOICE_FILTERS = ("name", "id", "status", "container_format", "disk_format")
TIME_FILTERS = ("created_at", "updated_at")
COMPARISONS = ("eq", "neq", "gt", "gte", "lt", "lte")
# View fields that are always null: only the empty text matches them.
ALWAYS_NULL = ("virtual_size", "os_hash_algo", "os_hash_value")
# View fields compared as the text the service keeps.
PLAIN_TEXT = ("owner", "min_disk", "min_ram", "description")
NOT_QUEUED = Match("status", "neq", QUEUED)


def _parse_time(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise errors.InvalidInput(f"Invalid time {text!r}: ISO 8601 expected") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _split_operator(expression: str) -> tuple[str, str]:
    """Glance's ``op:value`` filters; a bare ISO time (which holds colons) is ``eq``."""
    operator, sep, value = expression.partition(":")
    if not sep:
        return "eq", expression
    try:
        _parse_time(expression)
    except errors.InvalidInput:
        return operator, value
    return "eq", expression


def _image_id(text: str) -> uuid.UUID | None:
    """The id whose view text is exactly ``text`` (lower case, with hyphens)."""
    found = ascii_uuid(text)
    return found if found is not None and str(found) == text else None


def _choice(key: str, expression: str) -> Condition:
    """``key=value`` or ``key=in:a,b`` on the view's field."""
    operator, value = _split_operator(expression)
    if operator == "in":
        wanted = {v.strip().strip('"') for v in value.split(",")}
    elif operator == "eq":
        wanted = {value}
    else:
        raise errors.InvalidInput(f"Unable to filter by unknown operator '{operator}'.")
    if key == "id":
        ids = {found for found in map(_image_id, wanted) if found is not None}
        return Match("id", "in", tuple(ids))
    if key == "name":  # the view shows no name as null, which equals no text
        wanted.discard("")
    return Match(key, "in", tuple(sorted(wanted)))


def _time(key: str, expression: str) -> Condition:
    operator, value = _split_operator(expression)
    if operator not in COMPARISONS:
        raise errors.InvalidInput(f"Unable to filter by unknown operator '{operator}'.")
    return Match(key, operator, _parse_time(value))


def _range(key: str, value: str) -> list[Condition]:
    bound = ascii_int(value, INT64_MIN)
    if bound is None:
        raise errors.InvalidInput("Unable to filter on a range with a non-numeric value.")
    return [NOT_QUEUED, Match("size", "gte" if key == "size_min" else "lte", bound)]


def _boolean(key: str, value: str) -> bool:
    if value not in ("true", "false"):
        raise errors.InvalidInput(
            f"Invalid value '{value}' for '{key}' filter. Valid values are 'true' or 'false'."
        )
    return value == "true"


def _view_text(key: str, value: str) -> list[Condition]:
    """Any other key: the text of the view's field equals ``value`` (null is "")."""
    if key in PLAIN_TEXT:
        return [Match(key, "eq", value)]
    if key in ALWAYS_NULL:
        return [] if value == "" else [NOTHING]
    if key == "checksum":  # null while queued or when no MD5 was seen
        if value == "":
            return [AnyOf((Match("status", "eq", QUEUED), Match("checksum", "eq", "")))]
        return [NOT_QUEUED, Match("checksum", "eq", value)]
    if key == "size":
        if value == "":
            return [Match("status", "eq", QUEUED)]
        number = ascii_int(value, INT64_MIN)
        if number is None or str(number) != value:
            return [NOTHING]
        return [NOT_QUEUED, Match("size", "eq", number)]
    if key in ("self", "file"):
        suffix = "/file" if key == "file" else ""
        text = value.removeprefix("/v2/images/")
        if text == value or not text.endswith(suffix):
            return [NOTHING]
        image_id = _image_id(text[: len(text) - len(suffix)])
        return [NOTHING] if image_id is None else [Match("id", "eq", image_id)]
    if key == "schema":
        return [] if value == "/v2/schemas/image" else [NOTHING]
    if key == "tags":  # the text of a list of tags, as Python writes it
        return [_tags_text(value)]
    if key in ATTRIBUTES or key.startswith(RESERVED_NAMESPACE):  # never in the view
        return [] if value == "" else [NOTHING]
    prop = f"property:{key}"
    if value == "":
        return [AnyOf((Match(prop, "eq", None), Match(prop, "eq", "")))]
    return [Match(prop, "eq", value)]


def _tags_text(value: str) -> Condition:
    try:
        tags = ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return NOTHING
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        return NOTHING
    return Match("tags", "eq", tuple(tags)) if repr(tags) == value else NOTHING


def _sort_key(key: str) -> str:
    if key not in SORT_KEYS:
        raise errors.InvalidInput(
            f"Invalid sort key: {key}. It must be one of the following: {', '.join(SORT_KEYS)}."
        )
    return key


def _sort_dir(direction: str) -> str:
    if direction not in ("asc", "desc"):
        raise errors.InvalidInput(f"Invalid sort direction: {direction}")
    return direction


def _sort(keys: list[str], dirs: list[str], new_sort: str | None) -> list[tuple[str, str]]:
    """``sort_key``/``sort_dir`` or ``sort=k1:dir,k2``, then Glance's tie-breakers."""
    sort: list[tuple[str, str]] = []
    if new_sort is not None:
        if keys or dirs:
            raise errors.InvalidInput("Old and new sorting syntax cannot be combined")
        for part in new_sort.strip().split(","):
            key, _, direction = part.partition(":")
            sort.append((_sort_key(key.strip()), _sort_dir(direction.strip() or "desc")))
    else:
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise errors.InvalidInput("Number of sort dirs does not match the number of sort keys")
        keys = keys or ["created_at"]
        dirs = dirs or ["desc"]
        if len(dirs) == 1:
            dirs = dirs * len(keys)
        sort = list(zip(keys, dirs, strict=True))
    default_dir = sort[0][1]
    for key in ("created_at", "id"):
        if key not in dict(sort):
            sort.append((key, default_dir))
    return [(SORT_FIELDS.get(key, key), direction) for key, direction in sort]


def parse_listing(items: Iterable[tuple[str, str]], limits: Limits) -> ImageQuery:
    """A listing request as one typed query (400 for what Glance refuses)."""
    limit = limits.image_list_default
    marker: uuid.UUID | None = None
    member_status: str | None = "accepted"
    visibility = "listed"
    hidden = False
    keys: list[str] = []
    dirs: list[str] = []
    new_sort: str | None = None
    conditions: list[Condition] = []
    for key, value in items:
        if key == "limit":
            number = ascii_int(value, INT64_MIN)
            if number is None:
                raise errors.InvalidInput("limit param must be an integer")
            if number < 0:
                raise errors.InvalidInput("limit param must be positive")
            limit = min(number, limits.image_list_max)
        elif key == "marker":
            marker = ascii_uuid(value)
            if marker is None:
                raise errors.InvalidInput(f"Marker {value} not found.")
        elif key == "member_status":
            if value not in (*MEMBER_STATUSES, "all"):
                raise errors.InvalidInput(f"Invalid status: {value}")
            member_status = None if value == "all" else value
        elif key == "visibility":
            if value not in (*VISIBILITIES, "all"):
                raise errors.InvalidInput(f"Invalid visibility value: {value}")
            visibility = value
        elif key == "sort_key":
            keys.append(_sort_key(value.strip()))
        elif key == "sort_dir":
            dirs.append(_sort_dir(value.strip()))
        elif key == "sort":
            new_sort = value
        elif key == "tag":
            conditions.append(Match("tag", "eq", value.strip()))
        elif key == "changes-since":
            raise errors.InvalidInput('The "changes-since" filter is no longer available on v2.')
        elif key == HIDDEN:  # Glance lowers this one (openstacksdk sends "True")
            hidden = _boolean(key, value.lower())
        elif key == "protected":
            conditions.append(Match("protected", "eq", _boolean(key, value)))
        elif key in CHOICE_FILTERS:
            conditions.append(_choice(key, value))
        elif key in TIME_FILTERS:
            conditions.append(_time(key, value))
        elif key in ("size_min", "size_max"):
            conditions.extend(_range(key, value))
        else:
            conditions.extend(_view_text(key, value))
    return ImageQuery(
        member_status=member_status,
        grant_status="accepted",  # a read grant on the file is an accepted membership
        visibility=visibility,
        hidden=hidden,
        conditions=tuple(conditions),
        sort=tuple(_sort(keys, dirs, new_sort)),
        after=marker,
        limit=limit,
    )


@router.get(IMAGES)
async def list_images(request: Request) -> Response:
    user, images = await caller(request)
    items = list(request.query_params.multi_items())
    query = parse_listing(items, request.app.state.settings.limits)
    page = await images.listing(user, query)
    params = [(k, v) for k, v in items if k != "marker"]
    body: dict[str, Any] = {
        "images": [render(image) for image in page],
        "first": "/v2/images" + (f"?{urlencode(params)}" if params else ""),
        "schema": "/v2/schemas/images",
    }
    if page and len(page) == query.limit:
        body["next"] = "/v2/images?" + urlencode([*params, ("marker", str(page[-1].id))])
    return json_response(body)
