"""Glance v2 at ``/image/v2``, as python-openstackclient, openstacksdk and tempest call it.

A v2 image is the same object a v1 (Plankton) client sees: a storage file with metadata
in the ``plankton`` domain (:mod:`nefos.images.service`). ``POST /v2/images`` makes a
*queued* image, an empty placeholder file ``images/<id>`` in the owner's account;
``PUT .../file`` streams the data into it as the file's new version, so the data is
readable through the object store too. Visibility is the file's sharing: ``public``
and ``community`` put ``*`` among its readers, members are named readers.

Shapes, status codes and messages follow Glance (``glance/api/v2/images.py``,
``image_members.py``, ``image_data.py``, ``discovery.py``): errors are webob's plain
text (``404 Not Found\\n\\n<message>\\n\\n``, :func:`glance_fault`); a listing
paginates with ``limit``/``marker`` and a ``next`` link whenever a page is full; a
PATCH takes the two JSON-patch media types. Where Glance leaves a choice to policy we
take Synnefo's: any user may publish an image. nefos has no SHA-512 of the data, so
``os_hash_algo``/``os_hash_value`` are null; ``checksum`` is the MD5 the server saw.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response, StreamingResponse

from nefos.core import errors, http
from nefos.core.auth import current_user
from nefos.core.faults import json_response
from nefos.core.numbers import INT32_MAX, INT64_MIN, ascii_int
from nefos.images.api_paths import image_id_in_path
from nefos.images.service import (
    CONTAINER_FORMATS,
    DISK_FORMATS,
    MEMBER_STATUSES,
    QUEUED,
    VISIBILITIES,
    Image,
    Images,
)

PREFIX = "/image/v2"
IMAGES = PREFIX + "/images"
IMAGE = IMAGES + "/{image_id}"
LIST_DEFAULT, LIST_MAX = 25, 1000  # Glance's limit_param_default, api_limit_max
IMAGE_SIZE_CAP = 1 << 40  # Glance's image_size_cap
PATCH_TYPES = {
    "application/openstack-images-v2.0-json-patch": 4,
    "application/openstack-images-v2.1-json-patch": 10,
}
SORT_KEYS = (
    "name", "status", "container_format", "disk_format", "size", "id", "created_at",
    "updated_at",
)  # fmt: skip
# Keys a client may not write, as Glance sorts them (403 on create and on PATCH).
DISALLOWED = ("direct_url", "self", "file", "schema", "stores")
READ_ONLY = (
    "created_at", "updated_at", "status", "checksum", "size", "virtual_size", "direct_url",
    "self", "file", "schema", "id", "os_hash_algo", "os_hash_value",
)  # fmt: skip
RESERVED = ("location", "deleted", "deleted_at")
RESERVED_NAMESPACE = "os_glance"
# Writable image attributes: a PATCH may replace them, never remove them.
WRITABLE = (
    "name", "visibility", "protected", "min_disk", "min_ram", "disk_format",
    "container_format", "tags", "os_hidden",
)  # fmt: skip
STATUSES = (
    "queued", "saving", "active", "killed", "deleted", "uploading", "importing",
    "pending_delete", "deactivated",
)  # fmt: skip
DESCRIPTION = "description"  # an image field to Plankton, a property to Glance
HIDDEN = "os_hidden"  # kept as a property; shown as the boolean Glance has
ATTRIBUTES = frozenset(READ_ONLY + WRITABLE + ("owner", "locations"))

router = APIRouter(dependencies=[Depends(image_id_in_path)])


def glance_fault(status: int, error: errors.NefosError) -> Response:
    """webob's plain-text error page, which Glance answers clients that do not ask for
    HTML or JSON: the status line, a blank line, the explanation."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body = f"{status} {phrase}\n\n{error.message}\n\n   "
    response = Response(body, status, error.headers, media_type="text/plain")
    if status == 401:  # as keystonemiddleware answers in front of Glance
        response.headers["WWW-Authenticate"] = 'Keystone uri="identity"'
    return response


# -- request helpers -------------------------------------------------------------------


async def _caller(request: Request) -> tuple[str, Images]:
    credentials = await current_user(request)
    return str(credentials.user_id), request.app.state.engines.images


async def _json(request: Request) -> Any:
    """The body as JSON, bounded: image paths are exempt from the middleware's limit
    because file uploads share their prefix."""
    limit = request.app.state.settings.limits.json_body_bytes
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise errors.TooLarge(f"Request body exceeds {limit} bytes")
    if not raw:
        raise errors.InvalidInput("Body expected in request.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise errors.InvalidInput("Malformed JSON in request body.") from None


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _utc(moment: dt.datetime) -> dt.datetime:
    """Times as aware UTC (a database may hand them back naive)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- rendering -------------------------------------------------------------------------


def render(image: Image) -> dict[str, Any]:
    """Glance's image view: custom properties flattened beside the attributes."""
    queued = image.status == QUEUED
    view: dict[str, Any] = {
        key: value
        for key, value in image.properties.items()
        if key not in ATTRIBUTES and not key.startswith(RESERVED_NAMESPACE)
    }
    image_id = str(image.id)
    if image.description:  # Plankton's field; a plain property to Glance
        view[DESCRIPTION] = image.description
    view.update(
        id=image_id,
        name=image.name or None,
        status=image.status,
        visibility=image.visibility,
        protected=image.protected,
        os_hidden=image.properties.get(HIDDEN) == "true",
        checksum=None if queued else (image.md5 or None),
        os_hash_algo=None,
        os_hash_value=None,
        owner=image.owner,
        size=None if queued else image.size,
        virtual_size=None,
        min_disk=image.min_disk,
        min_ram=image.min_ram,
        disk_format=image.disk_format,
        container_format=image.container_format,
        created_at=_iso(image.created_at),
        updated_at=_iso(image.updated_at),
        tags=list(image.tags),
        self=f"/v2/images/{image_id}",
        file=f"/v2/images/{image_id}/file",
        schema="/v2/schemas/image",
    )
    return view


def render_member(image: Image, member: str, status: str) -> dict[str, Any]:
    """Glance's member view. Memberships keep no times of their own; the image's are
    the nearest truth (a membership change is an image change here)."""
    return {
        "created_at": _iso(image.created_at),
        "image_id": str(image.id),
        "member_id": member,
        "schema": "/v2/schemas/member",
        "status": status,
        "updated_at": _iso(image.updated_at),
    }


# -- attribute checks (Glance's image schema) -------------------------------------------


def _not_schema(value: Any, rule: str) -> errors.InvalidInput:
    return errors.InvalidInput(
        f"Provided object does not match schema 'image': {orjson.dumps(value).decode()} {rule}"
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(t, str) and len(t) <= 255 for t in value)


def _check_attribute(key: str, value: Any) -> Any:
    """One writable attribute against the schema (400 when it does not match)."""
    if key == "name":
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            raise _not_schema(value, "is not a string of at most 255 characters")
    elif key in ("protected", HIDDEN):
        if not isinstance(value, bool):
            raise _not_schema(value, "is not of type 'boolean'")
    elif key in ("min_disk", "min_ram"):
        if not _is_int(value):
            raise _not_schema(value, "is not of type 'integer'")
        if value < 0:
            raise errors.InvalidInput(f"{key} cannot be a negative value.")
        if value > INT32_MAX:  # Glance's Integer column
            raise _not_schema(value, f"is greater than the maximum of {INT32_MAX}")
    elif key == "visibility":
        if value not in VISIBILITIES:
            raise _not_schema(value, f"is not one of {list(VISIBILITIES)}")
    elif key == "disk_format":
        if value not in DISK_FORMATS:
            raise _not_schema(value, f"is not one of {list(DISK_FORMATS)}")
    elif key == "container_format":
        if value not in CONTAINER_FORMATS:
            raise _not_schema(value, f"is not one of {list(CONTAINER_FORMATS)}")
    elif key == "tags" and not _string_list(value):
        raise _not_schema(value, "is not a list of strings of at most 255 characters")
    return value


def _check_property(key: str, value: Any) -> str:
    """A custom property: Glance's permissive schema takes strings only."""
    if len(key) > 255:
        raise errors.InvalidInput("Custom property should not be greater than 255 characters.")
    if key in RESERVED or key.startswith(RESERVED_NAMESPACE):
        raise errors.PermissionDenied(f"Attribute '{key}' is reserved.")
    if not isinstance(value, str):
        raise _not_schema(value, "is not of type 'string'")
    return value


# -- images ----------------------------------------------------------------------------


@router.post(IMAGES)
async def create_image(request: Request) -> Response:
    user, images = await _caller(request)
    body = await _json(request)
    if not isinstance(body, dict):
        raise _not_schema(body, "is not of type 'object'")
    for key in DISALLOWED + READ_ONLY:
        if key in body and key != "id":
            raise errors.PermissionDenied(f"Attribute '{key}' is read-only.")
    image_id = body.pop("id", None)
    if image_id is not None and (not isinstance(image_id, str) or not _UUID.match(image_id)):
        raise _not_schema(image_id, "does not match the UUID pattern")
    owner = body.pop("owner", None)
    if owner is not None and owner != user:
        raise errors.PermissionDenied(f"You are not permitted to create images owned by '{owner}'.")
    if "locations" in body:
        raise errors.PermissionDenied(
            "It's not allowed to add locations if locations are invisible."
        )
    attributes = {key: _check_attribute(key, body.pop(key)) for key in WRITABLE if key in body}
    properties = {key: _check_property(key, value) for key, value in body.items()}
    description = properties.pop(DESCRIPTION, None)
    if attributes.pop(HIDDEN, False):
        properties[HIDDEN] = "true"
    image = await images.create(
        user,
        name=attributes.get("name") or "",
        disk_format=attributes.get("disk_format"),
        container_format=attributes.get("container_format"),
        visibility=attributes.get("visibility", "shared"),
        image_id=uuid.UUID(image_id) if image_id else None,
        properties=properties,
        tags=attributes.get("tags") or [],
        min_disk=attributes.get("min_disk", 0),
        min_ram=attributes.get("min_ram", 0),
        protected=attributes.get("protected", False),
        description=description,
    )
    location = f"{request.app.state.settings.base_url}{IMAGES}/{image.id}"
    return json_response(render(image), 201, {"Location": location})


@router.get(IMAGE)
async def show_image(request: Request, image_id: str) -> Response:
    user, images = await _caller(request)
    return json_response(render(await images.get(user, image_id)))


@router.delete(IMAGE)
async def delete_image(request: Request, image_id: str) -> Response:
    user, images = await _caller(request)
    await images.delete(user, image_id)
    return Response(status_code=204)


# -- listing ---------------------------------------------------------------------------

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}
CHOICE_FILTERS = ("name", "id", "status", "container_format", "disk_format")
TIME_FILTERS = ("created_at", "updated_at")


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


Predicate = Callable[[Image, dict[str, Any]], bool]


def _choice_filter(key: str, expression: str) -> Predicate:
    operator, value = _split_operator(expression)
    if operator == "in":
        wanted = {v.strip().strip('"') for v in value.split(",")}
        return lambda image, view: view[key] in wanted
    if operator != "eq":
        raise errors.InvalidInput(f"Unable to filter by unknown operator '{operator}'.")
    return lambda image, view: view[key] == value


def _time_filter(key: str, expression: str) -> Predicate:
    operator, value = _split_operator(expression)
    compare = _OPERATORS.get(operator)
    if compare is None:
        raise errors.InvalidInput(f"Unable to filter by unknown operator '{operator}'.")
    threshold = _parse_time(value)
    return lambda image, view: compare(_utc(getattr(image, key)), threshold)


def _range_filter(key: str, value: str) -> Predicate:
    bound = ascii_int(value, INT64_MIN)
    if bound is None:
        raise errors.InvalidInput("Unable to filter on a range with a non-numeric value.")
    if key == "size_min":
        return lambda image, view: view["size"] is not None and view["size"] >= bound
    return lambda image, view: view["size"] is not None and view["size"] <= bound


def _boolean(key: str, value: str) -> bool:
    if value not in ("true", "false"):
        raise errors.InvalidInput(
            f"Invalid value '{value}' for '{key}' filter. Valid values are 'true' or 'false'."
        )
    return value == "true"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


@dataclass
class Listing:
    """A listing request, checked as Glance's ``RequestDeserializer.index`` does."""

    limit: int = LIST_DEFAULT
    marker: str | None = None
    member_status: str | None = "accepted"
    visibility: str | None = None
    hidden: bool = False
    sort: list[tuple[str, str]] = field(default_factory=list)
    predicates: list[Predicate] = field(default_factory=list)

    @classmethod
    def parse(cls, items: Iterable[tuple[str, str]]) -> Listing:
        listing = cls()
        keys: list[str] = []
        dirs: list[str] = []
        new_sort: str | None = None
        tags: list[str] = []
        for key, value in items:
            if key == "limit":
                limit = ascii_int(value, INT64_MIN)
                if limit is None:
                    raise errors.InvalidInput("limit param must be an integer")
                if limit < 0:
                    raise errors.InvalidInput("limit param must be positive")
                listing.limit = min(limit, LIST_MAX)
            elif key == "marker":
                listing.marker = value
            elif key == "member_status":
                if value not in (*MEMBER_STATUSES, "all"):
                    raise errors.InvalidInput(f"Invalid status: {value}")
                listing.member_status = None if value == "all" else value
            elif key == "visibility":
                if value not in (*VISIBILITIES, "all"):
                    raise errors.InvalidInput(f"Invalid visibility value: {value}")
                listing.visibility = value
            elif key == "sort_key":
                keys.append(_sort_key(value.strip()))
            elif key == "sort_dir":
                dirs.append(_sort_dir(value.strip()))
            elif key == "sort":
                new_sort = value
            elif key == "tag":
                tags.append(value.strip())
            elif key == "changes-since":
                raise errors.InvalidInput(
                    'The "changes-since" filter is no longer available on v2.'
                )
            elif key == HIDDEN:  # Glance lowers this one (openstacksdk sends "True")
                listing.hidden = _boolean(key, value.lower())
            elif key == "protected":
                wanted = _boolean(key, value)
                listing.predicates.append(
                    lambda image, view, wanted=wanted: image.protected == wanted
                )
            elif key in CHOICE_FILTERS:
                listing.predicates.append(_choice_filter(key, value))
            elif key in TIME_FILTERS:
                listing.predicates.append(_time_filter(key, value))
            elif key in ("size_min", "size_max"):
                listing.predicates.append(_range_filter(key, value))
            else:  # owner, min_ram, ... and custom properties: equality
                listing.predicates.append(
                    lambda image, view, key=key, value=value: _text(view.get(key)) == value
                )
        if tags:
            listing.predicates.append(lambda image, view: set(tags) <= set(image.tags))
        if new_sort is not None:
            if keys or dirs:
                raise errors.InvalidInput("Old and new sorting syntax cannot be combined")
            for part in new_sort.strip().split(","):
                key, _, direction = part.partition(":")
                listing.sort.append(
                    (_sort_key(key.strip()), _sort_dir(direction.strip() or "desc"))
                )
        else:
            if len(dirs) > 1 and len(dirs) != len(keys):
                raise errors.InvalidInput(
                    "Number of sort dirs does not match the number of sort keys"
                )
            keys = keys or ["created_at"]
            dirs = dirs or ["desc"]
            if len(dirs) == 1:
                dirs = dirs * len(keys)
            listing.sort = list(zip(keys, dirs, strict=True))
        default_dir = listing.sort[0][1]
        for key in ("created_at", "id"):  # Glance's tie-breakers
            if key not in dict(listing.sort):
                listing.sort.append((key, default_dir))
        return listing

    def shows(self, user: str, image: Image, view: dict[str, Any]) -> bool:
        """Glance's visibility rules for listings, then the filters."""
        owned = image.owner == user
        if image.visibility in ("public", "community") or owned:
            visible = True
        elif user in image.members:
            status = image.members[user]
            visible = self.member_status is None or status == self.member_status
        else:  # readable through the file's sharing (a Pithos grant): accepted
            visible = self.member_status in (None, "accepted")
        if not visible:
            return False
        if self.visibility == "all":
            pass
        elif self.visibility is not None:
            if image.visibility != self.visibility:
                return False
            if self.visibility == "private" and not owned:
                return False
        elif image.visibility == "community" and not owned:
            return False
        if view["os_hidden"] != self.hidden:  # os_hidden=true lists only hidden ones
            return False
        return all(predicate(image, view) for predicate in self.predicates)


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


def _sorted(entries: list[tuple[Image, dict[str, Any]]], sort: list[tuple[str, str]]) -> None:
    """Sort in place by several keys, each ascending or descending; nulls sort low."""

    def value(key: str) -> Callable[[tuple[Image, dict[str, Any]]], Any]:
        def get(entry: tuple[Image, dict[str, Any]]) -> Any:
            image, view = entry
            found = _utc(getattr(image, key)) if key in TIME_FILTERS else view[key]
            return (found is not None, found if found is not None else 0)

        return get

    for key, direction in reversed(sort):
        entries.sort(key=value(key), reverse=direction == "desc")


@router.get(IMAGES)
async def list_images(request: Request) -> Response:
    user, images = await _caller(request)
    items = list(request.query_params.multi_items())
    listing = Listing.parse(items)
    candidates = {i.id: i for i in await images.visible(user, None)}
    if listing.visibility in ("community", "all"):
        candidates.update((i.id, i) for i in await images.community())
    entries = [(i, render(i)) for i in candidates.values()]
    entries = [(i, v) for i, v in entries if listing.shows(user, i, v)]
    if listing.marker is not None:
        try:
            marker = await images.get(user, listing.marker)
        except errors.NotFound:
            raise errors.InvalidInput(f"Marker {listing.marker} not found.") from None
        if all(i.id != marker.id for i, _ in entries):
            entries.append((marker, render(marker)))
        _sorted(entries, listing.sort)
        start = next(n for n, (i, _) in enumerate(entries) if i.id == marker.id) + 1
    else:
        _sorted(entries, listing.sort)
        start = 0
    page = entries[start : start + listing.limit]
    params = [(k, v) for k, v in items if k != "marker"]
    body: dict[str, Any] = {
        "images": [view for _, view in page],
        "first": "/v2/images" + (f"?{urlencode(params)}" if params else ""),
        "schema": "/v2/schemas/images",
    }
    if page and len(page) == listing.limit:
        body["next"] = "/v2/images?" + urlencode([*params, ("marker", str(page[-1][0].id))])
    return json_response(body)


# -- updating: JSON patch --------------------------------------------------------------


def _pointer(pointer: Any) -> list[str]:
    """A JSON pointer in the limited form Glance accepts, decoded into its parts."""
    if not isinstance(pointer, str) or not pointer.startswith("/"):
        raise errors.InvalidInput(f'Pointer `{pointer}` does not start with "/".')
    if re.search(r"/\s*?/", pointer[1:]):
        raise errors.InvalidInput(f'Pointer `{pointer}` contains adjacent "/".')
    if len(pointer) > 1 and pointer.endswith("/"):
        raise errors.InvalidInput(f'Pointer `{pointer}` end with "/".')
    if pointer[1:].strip() == "/" or pointer == "/":
        raise errors.InvalidInput(f"Pointer `{pointer}` does not contains valid token.")
    if re.search("~[^01]", pointer) or pointer.endswith("~"):
        raise errors.InvalidInput(
            f'Pointer `{pointer}` contains "~" not part of a recognized escape sequence.'
        )
    return [p.replace("~1", "/").replace("~0", "~").strip() for p in pointer[1:].split("/")]


@dataclass(frozen=True)
class Change:
    op: str
    key: str
    value: Any = None


def _changes(body: Any, draft: int) -> list[Change]:
    if not isinstance(body, list):
        raise errors.InvalidInput("Request body must be a JSON array of operation objects.")
    changes = []
    for raw in body:
        if not isinstance(raw, dict):
            raise errors.InvalidInput("Operations must be JSON objects.")
        if draft == 10:
            op = raw.get("op")
            if op not in ("add", "remove", "replace"):
                raise errors.InvalidInput(
                    f"Invalid operation: `{op}`. It must be one of the following: "
                    "add, remove, replace."
                )
            if "path" not in raw:
                raise errors.InvalidInput("Unable to find 'path' in JSON Schema change")
            path = _pointer(raw["path"])
        else:
            ops = [o for o in ("add", "remove", "replace") if o in raw]
            if len(ops) != 1:
                raise errors.InvalidInput(
                    'Operation objects must contain exactly one member named "add", '
                    '"remove", or "replace".'
                )
            op = ops[0]
            path = _pointer(raw[op])
        key = path[0]
        if len(path) != 1 and key != "locations":
            raise errors.InvalidInput(
                f"Invalid JSON pointer for this resource: '/{'/'.join(path)}'"
            )
        if key in DISALLOWED or key in READ_ONLY:
            raise errors.PermissionDenied(f"Attribute '{key}' is read-only.")
        if key in RESERVED or key.startswith(RESERVED_NAMESPACE):
            raise errors.PermissionDenied(f"Attribute '{key}' is reserved.")
        if op != "remove" and "value" not in raw:
            raise errors.InvalidInput(f'Operation "{op}" requires a member named "value".')
        value = raw.get("value")
        if op != "remove":
            if key in WRITABLE:
                _check_attribute(key, value)
            elif key not in ("owner", "locations"):
                _check_property(key, value)
        changes.append(Change(op, key, value))
    return changes


def _apply(
    image: Image, changes: list[Change], draft: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Glance's ``_do_add``/``_do_replace``/``_do_remove`` on a copy of the image; the
    attribute and property changes that result, for one service update."""
    current: dict[str, Any] = {
        "name": image.name or None,
        "visibility": image.visibility,
        "protected": image.protected,
        "min_disk": image.min_disk,
        "min_ram": image.min_ram,
        "disk_format": image.disk_format,
        "container_format": image.container_format,
        "tags": list(image.tags),
        HIDDEN: image.properties.get(HIDDEN) == "true",
    }
    attributes = dict(current)
    original: dict[str, str | None] = {k: v for k, v in image.properties.items() if k != HIDDEN}
    original[DESCRIPTION] = image.description or None
    properties = dict(original)
    for change in changes:
        key = change.key
        if key == "locations":
            raise errors.PermissionDenied(
                f"It's not allowed to {'remove' if change.op == 'remove' else 'update'} "
                "locations if locations are invisible."
            )
        if key == "owner":
            if change.op == "remove":
                raise errors.PermissionDenied("Property owner may not be removed.")
            if change.value != image.owner:
                raise errors.PermissionDenied("Owner can't be updated by non admin.")
            continue
        if key in WRITABLE:
            if change.op == "remove":
                raise errors.PermissionDenied(f"Property {key} may not be removed.")
            if change.op == "add" and draft == 4:
                raise errors.Conflict(f"Property {key} already present.")
            attributes[key] = change.value
            continue
        exists = properties.get(key) is not None
        if change.op == "remove" or change.op == "replace":
            if not exists:
                raise errors.Conflict(f"Property {key} does not exist.")
        elif exists and draft == 4:
            raise errors.Conflict(f"Property {key} already present.")
        properties[key] = None if change.op == "remove" else change.value
    fields = {k: v for k, v in attributes.items() if v != current[k] and k != HIDDEN}
    if "name" in fields and fields["name"] is None:
        fields["name"] = ""
    changed = {k: v for k, v in properties.items() if v != original.get(k)}
    if DESCRIPTION in changed:
        fields[DESCRIPTION] = changed.pop(DESCRIPTION) or ""
    if attributes[HIDDEN] != current[HIDDEN]:
        changed[HIDDEN] = "true" if attributes[HIDDEN] else None
    return fields, changed


@router.patch(IMAGE)
async def update_image(request: Request, image_id: str) -> Response:
    user, images = await _caller(request)
    draft = PATCH_TYPES.get(_media_type(request))
    if draft is None:
        raise errors.UnsupportedMedia(
            "The request has an unsupported media type; use a JSON patch type.",
            headers={"Accept-Patch": ", ".join(sorted(PATCH_TYPES))},
        )
    changes = _changes(await _json(request), draft)
    image = await images.get(user, image_id)
    if image.owner != user:
        raise errors.PermissionDenied("You are not permitted to modify this image.")
    fields, properties = _apply(image, changes, draft)
    if fields or properties:
        image = await images.update(user, image.id, fields=fields, properties=properties)
    return json_response(render(image))


# -- data ------------------------------------------------------------------------------


@router.put(IMAGE + "/file")
async def upload(request: Request, image_id: str) -> Response:
    user, images = await _caller(request)
    if _media_type(request) != "application/octet-stream":
        raise errors.UnsupportedMedia(f"Invalid content type {request.headers.get('content-type')}")
    await images.upload(user, image_id, request.stream(), max_size=IMAGE_SIZE_CAP)
    return Response(status_code=204)


@router.get(IMAGE + "/file")
async def download(request: Request, image_id: str) -> Response:
    user, images = await _caller(request)
    admin = (await current_user(request)).is_admin
    image, record = await images.data(user, image_id, admin=admin)
    if record is None:
        return Response(status_code=204)
    storage = request.app.state.engines.storage
    headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
    if image.md5:
        headers["Content-MD5"] = image.md5
    ranges = None
    if record.size:
        ranges = http.parse_ranges(request.headers.get("range"), record.size)
    if ranges is None or len(ranges) != 1:  # webob serves several ranges as the whole
        headers["Content-Length"] = str(record.size)
        return StreamingResponse(storage.read(record), 200, headers)
    start, end = ranges[0]
    headers["Content-Range"] = http.content_range(start, end, record.size)
    headers["Content-Length"] = str(end - start)
    return StreamingResponse(storage.read(record, start, end), 206, headers)


# -- tags ------------------------------------------------------------------------------


@router.put(IMAGE + "/tags/{tag}")
async def add_tag(request: Request, image_id: str, tag: str) -> Response:
    user, images = await _caller(request)
    image = await images.get(user, image_id)
    if image.owner != user:
        raise errors.PermissionDenied("You are not permitted to modify tags on this image.")
    _check_attribute("tags", [tag])
    if tag not in image.tags:
        await images.update(user, image.id, fields={"tags": [*image.tags, tag]})
    return Response(status_code=204)


@router.delete(IMAGE + "/tags/{tag}")
async def delete_tag(request: Request, image_id: str, tag: str) -> Response:
    user, images = await _caller(request)
    image = await images.get(user, image_id)
    if image.owner != user:
        raise errors.PermissionDenied("You are not permitted to modify tags on this image.")
    if tag not in image.tags:
        raise errors.NotFound(f"Tag {tag} not found")
    await images.update(user, image.id, fields={"tags": [t for t in image.tags if t != tag]})
    return Response(status_code=204)


# -- members ---------------------------------------------------------------------------


async def _shared(images: Images, user: str, image_id: str) -> Image:
    image = await images.get(user, image_id)
    if image.visibility != "shared":
        raise errors.PermissionDenied(
            f"Error fetching members of image {image.id}: Only shared images have members."
        )
    return image


def _member_of(user: str, image: Image, member_id: str) -> str:
    """The member's status, as the caller may see it: the owner sees every member, a
    member only itself."""
    if member_id not in image.members or user not in (image.owner, member_id):
        raise errors.NotFound(f"{member_id} not found in the member list of the image {image.id}.")
    return image.members[member_id]


@router.get(IMAGE + "/members")
async def list_members(request: Request, image_id: str) -> Response:
    user, images = await _caller(request)
    image = await _shared(images, user, image_id)
    members = {m: s for m, s in image.members.items() if user in (image.owner, m)}
    return json_response(
        {
            "members": [render_member(image, m, s) for m, s in members.items()],
            "schema": "/v2/schemas/members",
        }
    )


@router.post(IMAGE + "/members")
async def add_member(request: Request, image_id: str) -> Response:
    user, images = await _caller(request)
    body = await _json(request)
    if not isinstance(body, dict) or "member" not in body:
        raise errors.InvalidInput("Member to be added not specified")
    member = body["member"]
    if not member:
        raise errors.InvalidInput("Member can't be empty")
    if not isinstance(member, str):
        raise errors.InvalidInput("A member is a project (user) id")
    image = await _shared(images, user, image_id)
    if image.owner != user:
        raise errors.PermissionDenied(f"Not allowed to create members for image {image.id}.")
    if member in image.members:
        raise errors.Conflict(f"Member {member} is duplicated for image {image.id}")
    image = await images.set_members(user, image.id, [member], add=True)
    return json_response(render_member(image, member, image.members[member]))


@router.get(IMAGE + "/members/{member_id}")
async def show_member(request: Request, image_id: str, member_id: str) -> Response:
    user, images = await _caller(request)
    try:
        image = await _shared(images, user, image_id)
    except errors.PermissionDenied as exc:  # Glance hides why, as for any lookup
        raise errors.NotFound(exc.message) from None
    return json_response(render_member(image, member_id, _member_of(user, image, member_id)))


@router.put(IMAGE + "/members/{member_id}")
async def update_member(request: Request, image_id: str, member_id: str) -> Response:
    user, images = await _caller(request)
    body = await _json(request)
    if not isinstance(body, dict) or "status" not in body:
        raise errors.InvalidInput("Status not specified")
    image = await _shared(images, user, image_id)
    _member_of(user, image, member_id)
    if body["status"] not in MEMBER_STATUSES:
        raise errors.InvalidInput(f"Incorrect request: Invalid status: {body['status']}")
    if user != member_id:
        raise errors.PermissionDenied(f"Not allowed to update members for image {image.id}.")
    image = await images.set_member_status(user, image.id, member_id, body["status"])
    return json_response(render_member(image, member_id, image.members[member_id]))


@router.delete(IMAGE + "/members/{member_id}")
async def delete_member(request: Request, image_id: str, member_id: str) -> Response:
    user, images = await _caller(request)
    image = await _shared(images, user, image_id)
    _member_of(user, image, member_id)
    if image.owner != user:
        raise errors.PermissionDenied(f"Not allowed to delete members for image {image.id}.")
    await images.remove_member(user, image.id, member_id)
    return Response(status_code=204)


# -- schemas and discovery -------------------------------------------------------------


def _nullable(kind: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"type": ["null", kind], "description": description, **extra}


def _read_only(kind: Any, description: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "readOnly": True, "description": description, **extra}


def image_properties() -> dict[str, Any]:
    """Glance's base image properties, with nefos's formats."""
    return {
        "id": {
            "type": "string",
            "description": "An identifier for the image",
            "pattern": _UUID.pattern,
        },
        "name": _nullable("string", "Descriptive name for the image", maxLength=255),
        "status": _read_only("string", "Status of the image", enum=list(STATUSES)),
        "visibility": {
            "type": "string",
            "description": "Scope of image accessibility",
            "enum": list(VISIBILITIES),
        },
        "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
        "os_hidden": {
            "type": "boolean",
            "description": "If true, image will not appear in default image list response.",
        },
        "checksum": _read_only(["null", "string"], "md5 hash of image contents.", maxLength=32),
        "os_hash_algo": _read_only(
            ["null", "string"], "Algorithm to calculate the os_hash_value", maxLength=64
        ),
        "os_hash_value": _read_only(
            ["null", "string"],
            "Hexdigest of the image contents using the algorithm specified by the os_hash_algo",
            maxLength=128,
        ),
        "owner": _nullable("string", "Owner of the image", maxLength=255),
        "size": _read_only(["null", "integer"], "Size of image file in bytes"),
        "virtual_size": _read_only(["null", "integer"], "Virtual size of image in bytes"),
        "container_format": _nullable(
            "string", "Format of the container", enum=[None, *CONTAINER_FORMATS]
        ),
        "disk_format": _nullable("string", "Format of the disk", enum=[None, *DISK_FORMATS]),
        "created_at": _read_only("string", "Date and time of image registration"),
        "updated_at": _read_only("string", "Date and time of the last image modification"),
        "tags": {
            "type": "array",
            "description": "List of strings related to the image",
            "items": {"type": "string", "maxLength": 255},
        },
        "direct_url": _read_only("string", "URL to access the image file kept in external store"),
        "min_ram": {
            "type": "integer",
            "description": "Amount of ram (in MB) required to boot image.",
        },
        "min_disk": {
            "type": "integer",
            "description": "Amount of disk space (in GB) required to boot image.",
        },
        "self": _read_only("string", "An image self url"),
        "file": _read_only("string", "An image file url"),
        "stores": _read_only("string", "Store in which image data resides."),
        "schema": _read_only("string", "An image schema url"),
        "locations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "url": {"type": "string", "maxLength": 255},
                    "metadata": {"type": "object"},
                },
                "required": ["url", "metadata"],
            },
            "description": "A set of URLs to access the image file kept in external store",
        },
    }


def image_schema() -> dict[str, Any]:
    return {
        "name": "image",
        "properties": image_properties(),
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def member_schema() -> dict[str, Any]:
    return {
        "name": "member",
        "properties": {
            "member_id": {
                "type": "string",
                "description": "An identifier for the image member (tenantId)",
            },
            "image_id": {
                "type": "string",
                "description": "An identifier for the image",
                "pattern": _UUID.pattern,
            },
            "created_at": {
                "type": "string",
                "description": "Date and time of image member creation",
            },
            "updated_at": {
                "type": "string",
                "description": "Date and time of last modification of image member",
            },
            "status": {
                "type": "string",
                "description": "The status of this image member",
                "enum": list(MEMBER_STATUSES),
            },
            "schema": {"type": "string", "readOnly": True},
        },
        "additionalProperties": False,
    }


def collection(name: str, item: dict[str, Any]) -> dict[str, Any]:
    """Glance's ``CollectionSchema``: the items plus the paging links."""
    return {
        "name": name,
        "properties": {
            name: {"type": "array", "items": item},
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "image": image_schema,
    "images": lambda: collection("images", image_schema()),
    "member": member_schema,
    "members": lambda: collection("members", member_schema()),
}


@router.get(PREFIX + "/schemas/{name}")
async def schema(request: Request, name: str) -> Response:
    await current_user(request)
    if name not in SCHEMAS:
        raise errors.NotFound(f"No schema {name}")
    return json_response(SCHEMAS[name]())


@router.get(PREFIX + "/info/import")
async def import_info(request: Request) -> Response:
    """No interoperable import methods: data goes in by ``PUT .../file`` only."""
    await current_user(request)
    return json_response(
        {
            "import-methods": {
                "description": "Import methods available.",
                "type": "array",
                "value": [],
            }
        }
    )


@router.get(PREFIX + "/info/stores")
async def stores_info(request: Request) -> Response:
    await current_user(request)
    raise errors.NotFound("Multi backend is not supported at this site.")
