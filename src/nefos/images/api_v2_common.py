"""What the Glance v2 modules share: paths, the fault format, reading a request and
rendering an image or a member as Glance does, and the checks of Glance's image schema.

Shapes, status codes and messages follow Glance (``glance/api/v2/images.py``,
``image_members.py``, ``image_data.py``, ``discovery.py``): errors are webob's plain
text (``404 Not Found\\n\\n<message>\\n\\n``, :func:`glance_fault`). nefos has no
SHA-512 of the data, so ``os_hash_algo``/``os_hash_value`` are null; ``checksum`` is the
MD5 the server saw.
"""

from __future__ import annotations

import datetime as dt
import re
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import Request
from starlette.responses import Response

from nefos.core import errors
from nefos.core.auth import current_user
from nefos.core.numbers import INT32_MAX
from nefos.images.service import (
    CONTAINER_FORMATS,
    DISK_FORMATS,
    QUEUED,
    VISIBILITIES,
    Image,
    Images,
)

PREFIX = "/image/v2"
IMAGES = PREFIX + "/images"
IMAGE = IMAGES + "/{image_id}"
PATCH_TYPES = {
    "application/openstack-images-v2.0-json-patch": 4,
    "application/openstack-images-v2.1-json-patch": 10,
}
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


async def caller(request: Request) -> tuple[str, Images]:
    credentials = await current_user(request)
    return str(credentials.user_id), request.app.state.engines.images


async def read_json(request: Request) -> Any:
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


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def utc(moment: dt.datetime) -> dt.datetime:
    """Times as aware UTC (a database may hand them back naive)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def iso(moment: dt.datetime) -> str:
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


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
        created_at=iso(image.created_at),
        updated_at=iso(image.updated_at),
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
        "created_at": iso(image.created_at),
        "image_id": str(image.id),
        "member_id": member,
        "schema": "/v2/schemas/member",
        "status": status,
        "updated_at": iso(image.updated_at),
    }


# -- attribute checks (Glance's image schema) -------------------------------------------


def not_schema(value: Any, rule: str) -> errors.InvalidInput:
    return errors.InvalidInput(
        f"Provided object does not match schema 'image': {orjson.dumps(value).decode()} {rule}"
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


UUID_PATTERN = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


def _string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(t, str) and len(t) <= 255 for t in value)


def check_attribute(key: str, value: Any) -> Any:
    """One writable attribute against the schema (400 when it does not match)."""
    if key == "name":
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            raise not_schema(value, "is not a string of at most 255 characters")
    elif key in ("protected", HIDDEN):
        if not isinstance(value, bool):
            raise not_schema(value, "is not of type 'boolean'")
    elif key in ("min_disk", "min_ram"):
        if not _is_int(value):
            raise not_schema(value, "is not of type 'integer'")
        if value < 0:
            raise errors.InvalidInput(f"{key} cannot be a negative value.")
        if value > INT32_MAX:  # Glance's Integer column
            raise not_schema(value, f"is greater than the maximum of {INT32_MAX}")
    elif key == "visibility":
        if value not in VISIBILITIES:
            raise not_schema(value, f"is not one of {list(VISIBILITIES)}")
    elif key == "disk_format":
        if value not in DISK_FORMATS:
            raise not_schema(value, f"is not one of {list(DISK_FORMATS)}")
    elif key == "container_format":
        if value not in CONTAINER_FORMATS:
            raise not_schema(value, f"is not one of {list(CONTAINER_FORMATS)}")
    elif key == "tags" and not _string_list(value):
        raise not_schema(value, "is not a list of strings of at most 255 characters")
    return value


def check_property(key: str, value: Any) -> str:
    """A custom property: Glance's permissive schema takes strings only."""
    if len(key) > 255:
        raise errors.InvalidInput("Custom property should not be greater than 255 characters.")
    if key in RESERVED or key.startswith(RESERVED_NAMESPACE):
        raise errors.PermissionDenied(f"Attribute '{key}' is reserved.")
    if not isinstance(value, str):
        raise not_schema(value, "is not of type 'string'")
    return value
