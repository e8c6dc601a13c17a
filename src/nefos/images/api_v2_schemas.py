"""Glance v2 schemas and discovery: the image and member schemas clients read, and
the import and store information (no import methods, no multiple stores).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from nefos.core import errors
from nefos.core.auth import current_user
from nefos.core.faults import json_response
from nefos.images.api_v2_common import PREFIX, STATUSES, UUID_PATTERN
from nefos.images.service import CONTAINER_FORMATS, DISK_FORMATS, MEMBER_STATUSES, VISIBILITIES

router = APIRouter()


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
            "pattern": UUID_PATTERN.pattern,
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
                "pattern": UUID_PATTERN.pattern,
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
