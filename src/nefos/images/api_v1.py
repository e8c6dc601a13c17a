"""Glance v1 as Synnefo's Plankton serves it, at ``/image/v1`` (spec §5).

This is what kamaki's ``image`` commands speak. Image fields travel as
``X-Image-Meta-<field>`` and ``X-Image-Meta-Property-<key>`` headers, whose values may be
percent-encoded (kamaki quotes them); header names are normalized as Plankton does
(lower case, punctuation as ``_``), so ``X-Image-Meta-Property-Root-Partition`` sets
``root_partition``. Listings are bare JSON lists, as Plankton answers and kamaki reads
them (not Glance's ``{"images": [...]}``).

Registering names an existing file by ``pithos://<account>/<container>/<path>``: the
image is that file with metadata, so registering moves no data and takes the same time
for any size. ``GET /images/<id>`` answers 501 as Plankton does: the data is the file's,
read through the object store. Statuses are Plankton's: AVAILABLE, SAVING (no data
yet), ERROR. Errors are Synnefo's JSON faults, the app's default style.
"""

from __future__ import annotations

import datetime as dt
import string
from typing import Annotated, Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.responses import Response

from nefos.core import errors
from nefos.core.auth import Credentials, current_user
from nefos.core.body import parse_json
from nefos.core.faults import json_response
from nefos.core.http import header_text
from nefos.core.numbers import ascii_int
from nefos.images.api_paths import image_id_in_path
from nefos.images.catalog import Condition, ImageQuery, Match
from nefos.images.dialect import DETAIL_EXTRAS
from nefos.images.dialect import TABLE as DIALECT
from nefos.images.service import (
    ACTIVE,
    DEACTIVATED,
    QUEUED,
    Image,
    ImageChange,
    Images,
    parse_location,
)

PREFIX = "/image/v1"
META = "x-image-meta-"
PROPERTY = "x-image-meta-property-"
PURGE_PROPS = "x-glance-registry-purge-props"

# Plankton's field sets (snf-cyclades-app/synnefo/plankton/views.py), plus description.
LIST_FIELDS = ("id", "name", "status", "disk_format", "container_format", "size")
REGISTER_FIELDS = {
    "name", "location", "id", "store", "disk_format", "container_format", "size",
    "checksum", "is_public", "owner", "description",
}  # fmt: skip
UPDATE_FIELDS = {
    "name", "disk_format", "container_format", "is_public", "owner", "status", "description",
}  # fmt: skip
SORT_KEYS = (
    "id", "name", "status", "size", "disk_format", "container_format", "created_at",
    "updated_at",
)  # fmt: skip
SORT_DIRS = ("asc", "desc")
STORE = "pithos"
TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")

router = APIRouter(prefix=PREFIX, dependencies=[Depends(image_id_in_path)])
User = Annotated[Credentials, Depends(current_user)]


def _images(request: Request) -> Images:
    return request.app.state.engines.images


def _user(credentials: Credentials) -> str:
    return str(credentials.user_id)


# -- rendering ---------------------------------------------------------------------------


Statuses = dict[str, str]  # the service's status -> the dialect's name (images.dialect)


def statuses(request: Request) -> Statuses:
    return DIALECT.pick(request, "status_names")


def extras(request: Request) -> frozenset[str]:
    return DIALECT.pick(request, "detail_extras")


def v1_status_of(status: str, names: Statuses) -> str:
    """The dialect's name; one it lacks (deactivated) keeps the service's, in its case."""
    found = names.get(status.lower())
    if found is not None:
        return found
    return status.upper() if names["active"].isupper() else status.lower()


def _time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def detail(image: Image, names: Statuses, extras: frozenset[str]) -> dict[str, Any]:
    """The detailed image (``GET /images/detail``, and the body of a register or update
    reply, as Glance v1 sends ``{"image": ...}``), with the dialect's own fields."""
    item = {
        "id": str(image.id),
        "name": image.name,
        "status": v1_status_of(image.status, names),
        "disk_format": image.disk_format,
        "container_format": image.container_format,
        "size": image.size,
        "checksum": image.checksum,
        "location": image.location,
        "created_at": _time(image.created_at),
        "updated_at": _time(image.updated_at),
        "deleted_at": None,
        "is_public": image.is_public,
        "owner": image.owner,
        "properties": dict(image.properties),
        "is_snapshot": False,
        "description": image.description,
        "min_ram": image.min_ram,
        "min_disk": image.min_disk,
        "protected": False,
        "deleted": False,
    }
    for key in DETAIL_EXTRAS - extras:
        del item[key]
    return item


def _header_value(text: str) -> str:
    """Printable ASCII as is; anything else percent-encoded, which kamaki unquotes."""
    if text.isascii() and text.isprintable():
        return text
    return quote(text, safe=" !#$&'()*+,/:;=?@[]~")


def image_headers(image: Image, names: Statuses, fields: frozenset[str]) -> dict[str, str]:
    """The image as ``X-Image-Meta-*`` headers (HEAD, register, update); property keys
    with ``_`` as ``-``, as Plankton sends them (kamaki maps them back)."""
    headers = {}
    for key, value in detail(image, names, fields).items():
        if key == "properties":
            continue
        if isinstance(value, bool):
            text = str(value)
        elif value is None:
            text = ""
        else:
            text = str(value)
        headers[META + key.replace("_", "-")] = _header_value(text)
    for key, value in image.properties.items():
        name = quote(key.replace("_", "-"), safe="")
        headers[PROPERTY + name] = _header_value(value)
    return headers


# -- parsing -----------------------------------------------------------------------------


def _normalize(name: str) -> str:
    return "".join("_" if c in string.punctuation else c.lower() for c in name)


def meta_headers(request: Request) -> tuple[dict[str, str], dict[str, str]]:
    """Image fields and properties from ``X-Image-Meta-*`` headers, decoded."""
    fields: dict[str, str] = {}
    properties: dict[str, str] = {}
    for name, value in request.headers.items():
        name = name.lower()
        if name.startswith(PROPERTY):
            key = _normalize(unquote(name[len(PROPERTY) :]))
            if not key:
                raise errors.InvalidInput("A property header without a key")
            properties[key] = header_text(value)
        elif name.startswith(META):
            fields[_normalize(name[len(META) :])] = header_text(value)
    return fields, properties


def _check_fields(fields: dict[str, str], allowed: set[str]) -> None:
    if "id" in fields:
        raise errors.InvalidInput("Setting the image ID is not supported")
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise errors.InvalidInput(
            f"Unknown image fields {', '.join(unknown)}; give {', '.join(sorted(allowed))}"
        )


def _flag(value: str, what: str) -> bool:
    lowered = value.strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise errors.InvalidInput(f"{what} is true or false")


def _count(value: str, what: str) -> int:
    count = ascii_int(value.strip())
    if count is None:
        raise errors.InvalidInput(f"{what} is a whole number of bytes")
    return count


def _image_reply(request: Request, image: Image) -> Response:
    names, fields = statuses(request), extras(request)
    return json_response(
        {"image": detail(image, names, fields)}, 200, image_headers(image, names, fields)
    )


# -- listing -----------------------------------------------------------------------------


def _conditions(request: Request) -> list[Condition]:
    """Plankton's filters, plus Glance v1's ``property-<key>=<value>``, on the image's
    own fields (an image without a property never matches one)."""
    query = request.query_params
    conditions: list[Condition] = [
        Match(key, "eq", query[key])
        for key in ("name", "container_format", "disk_format")
        if key in query
    ]
    if "status" in query:
        wanted = query["status"].upper()
        names = statuses(request)
        chosen = tuple(
            s for s in (QUEUED, ACTIVE, DEACTIVATED) if v1_status_of(s, names).upper() == wanted
        )
        conditions.append(Match("status", "in", chosen))
    if "size_min" in query:
        conditions.append(Match("size", "gte", _count(query["size_min"], "size_min")))
    if "size_max" in query:
        conditions.append(Match("size", "lte", _count(query["size_max"], "size_max")))
    for key, value in query.items():
        if key.startswith("property-"):
            conditions.append(Match(f"property:{key[len('property-') :]}", "eq", value))
    return conditions


@router.get("/images")
@router.get("/images/")
async def list_images(request: Request, caller: User) -> Response:
    """Own, public and shared images (Plankton's listing), summary fields."""
    names = statuses(request)
    return _listing_reply(request, [_summary(i, names) for i in await _listing(request, caller)])


@router.get("/images/detail")
async def list_images_detail(request: Request, caller: User) -> Response:
    names, fields = statuses(request), extras(request)
    found = await _listing(request, caller)
    return _listing_reply(request, [detail(i, names, fields) for i in found])


def _listing_reply(request: Request, images: list[dict[str, Any]]) -> Response:
    """Plankton sends the array itself; Glance v1 wraps it (images.dialect)."""
    if DIALECT.pick(request, "listing_shape") == "array":
        return json_response(images)
    return json_response({"images": images})


def _summary(image: Image, names: Statuses) -> dict[str, Any]:
    full = detail(image, names, frozenset())
    return {key: full[key] for key in LIST_FIELDS}


def _query(request: Request) -> ImageQuery:
    """Plankton's listing: every image the caller sees, no paging. Members see their
    images at once: v1 has no accepting of membership. Plankton's statuses sort as the
    service's do (AVAILABLE, DEACTIVATED, SAVING as active, deactivated, queued)."""
    query = request.query_params
    sort_key = query.get("sort_key", "created_at")
    sort_dir = query.get("sort_dir", "desc")
    if sort_key not in SORT_KEYS:
        raise errors.InvalidInput(f"sort_key is one of {', '.join(SORT_KEYS)}")
    if sort_dir not in SORT_DIRS:
        raise errors.InvalidInput("sort_dir is asc or desc")
    return ImageQuery(
        member_status=None,
        conditions=tuple(_conditions(request)),
        sort=((sort_key, sort_dir), ("id", sort_dir)),
    )


async def _listing(request: Request, caller: Credentials) -> list[Image]:
    return await _images(request).listing(_user(caller), _query(request))


# -- one image ---------------------------------------------------------------------------


@router.post("/images")
@router.post("/images/")
async def register(request: Request, caller: User) -> Response:
    """Make a file an image; 200 with the image as headers and body (Plankton)."""
    fields, properties = meta_headers(request)
    _check_fields(fields, REGISTER_FIELDS)
    name = fields.get("name")
    if not name:
        raise errors.InvalidInput("X-Image-Meta-Name is required")
    location = fields.get("location")
    if not location:
        raise errors.InvalidInput("X-Image-Meta-Location (pithos://<account>/...) is required")
    if fields.get("store", STORE) != STORE:
        raise errors.InvalidInput(f"The only store is {STORE}")
    user = _user(caller)
    owner = fields.get("owner")
    if owner is not None and owner != parse_location(location)[0]:
        raise errors.InvalidInput("An image's owner is the account of its file")
    image = await _images(request).register(
        user,
        location,
        name,
        disk_format=fields.get("disk_format", "diskdump"),
        container_format=fields.get("container_format", "bare"),
        is_public=_flag(fields.get("is_public", "false"), "X-Image-Meta-Is-Public"),
        properties=properties,
        size=_count(fields["size"], "X-Image-Meta-Size") if "size" in fields else None,
        checksum=fields.get("checksum"),
        description=fields.get("description"),
    )
    return _image_reply(request, image)


@router.head("/images/{image_id}")
async def image_meta(request: Request, image_id: str, caller: User) -> Response:
    image = await _images(request).get(_user(caller), image_id)
    return Response(
        status_code=200, headers=image_headers(image, statuses(request), extras(request))
    )


@router.get("/images/{image_id}")
async def image_data(request: Request, image_id: str, caller: User) -> Response:
    """Plankton's 501: the data is the file's, read through the object store."""
    image = await _images(request).get(_user(caller), image_id)
    raise errors.NotImplementedYet(
        f"Read the image's data from its file, {image.location}, through the object store"
    )


@router.put("/images/{image_id}")
async def update(request: Request, image_id: str, caller: User) -> Response:
    """Change fields; given properties are merged into the image's, unless
    ``X-Glance-Registry-Purge-Props: true`` makes them replace all. An empty property
    value removes that property."""
    fields, properties = meta_headers(request)
    _check_fields(fields, UPDATE_FIELDS)
    purge = _flag(request.headers.get(PURGE_PROPS, "false"), "X-Glance-Registry-Purge-Props")
    v1_statuses = statuses(request)

    def plan(image: Image) -> ImageChange:
        given = fields.pop("status", None)
        if given is not None and given.upper() != v1_status_of(image.status, v1_statuses).upper():
            raise errors.InvalidInput("An image's status follows its file; it cannot be set")
        if "owner" in fields and fields.pop("owner") != image.owner:
            raise errors.InvalidInput("An image's owner is the account of its file")
        changes: dict[str, Any] = {
            key: fields[key]
            for key in ("name", "disk_format", "container_format", "description")
            if key in fields
        }
        if "is_public" in fields:
            public = _flag(fields["is_public"], "X-Image-Meta-Is-Public")
            changes["visibility"] = (
                "public" if public else ("shared" if image.members else "private")
            )
        given_properties = {key: value or None for key, value in properties.items()}
        return ImageChange(changes, given_properties, replace_properties=purge)

    updated = await _images(request).change(_user(caller), image_id, plan)
    return _image_reply(request, updated)


@router.delete("/images/{image_id}", status_code=204)
async def unregister(request: Request, image_id: str, caller: User) -> Response:
    """Forget the image; the file stays."""
    await _images(request).unregister(_user(caller), image_id)
    return Response(status_code=204)


# -- members -----------------------------------------------------------------------------


class _Membership(BaseModel):
    member_id: str
    can_share: bool = False


class _Memberships(BaseModel):
    memberships: list[_Membership]


@router.get("/images/{image_id}/members")
async def list_members(request: Request, image_id: str, caller: User) -> Response:
    _, members = await _images(request).members(_user(caller), image_id)
    return json_response(
        {"members": [{"member_id": m, "can_share": False} for m in sorted(members)]}
    )


@router.put("/images/{image_id}/members", status_code=204)
async def replace_members(request: Request, image_id: str, caller: User) -> Response:
    """Replace the member list (``can_share`` is ignored, as in Plankton)."""
    body = await _read_body(request)
    wanted = parse_json(_Memberships, body or b"{}")
    members = [m.member_id for m in wanted.memberships]
    await _images(request).set_members(_user(caller), image_id, members)
    return Response(status_code=204)


async def _read_body(request: Request) -> bytes:
    """The body, bounded: this prefix is exempt from the middleware's JSON limit."""
    limit = request.app.state.settings.limits.json_body_bytes
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise errors.TooLarge(f"The body exceeds {limit} bytes")
    return bytes(body)


@router.put("/images/{image_id}/members/{member}", status_code=204)
async def add_member(request: Request, image_id: str, member: str, caller: User) -> Response:
    await _images(request).set_members(_user(caller), image_id, [member], add=True)
    return Response(status_code=204)


@router.delete("/images/{image_id}/members/{member}", status_code=204)
async def remove_member(request: Request, image_id: str, member: str, caller: User) -> Response:
    """Idempotent, as in Plankton: removing a non-member is a 204 too."""
    await _images(request).remove_member(
        _user(caller),
        image_id,
        member,
        missing_ok=True,
        denied="Only the image's owner may change its members",
    )
    return Response(status_code=204)


@router.get("/shared-images/{member}")
async def shared_images(request: Request, member: str, caller: User) -> Response:
    """The caller's images shared with ``member`` (Plankton), or, when the caller is
    that member, the images shared with the caller (Glance)."""
    found = await _images(request).shared_images(_user(caller), member)
    shared = [{"image_id": str(i.id), "can_share": False} for i in found]
    return json_response({"shared_images": shared})
