"""Glance's metadata-definitions catalog, as far as nefos has one: its JSON schemas
(``GET /v2/schemas/metadefs/<name>``) and an empty catalog.

A metadef describes the properties a resource may carry (an image's ``hw_cpu_cores``
is an integer, say) so that a dashboard can offer them; it holds no values. nefos keeps
no catalog, so the listings are empty and every namespace is unknown (404), but the
schemas are the shapes the Glance API reference gives, so that python-glanceclient and
openstackclient, which read a schema before they list, work. Written from that
reference's field descriptions; the collections share the image collection's links.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from nefos.core import errors
from nefos.core.auth import current_user
from nefos.core.faults import json_response
from nefos.images.api_v2_common import PREFIX
from nefos.images.api_v2_schemas import collection

router = APIRouter()

# The JSON-schema types a metadef property may declare, and its array items.
PROPERTY_TYPES = ["array", "boolean", "integer", "number", "object", "string", None]
ITEM_TYPES = ["array", "boolean", "integer", "number", "object", "string", "null"]


def _text(description: str, max_length: int | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"type": "string", "description": description}
    if max_length is not None:
        found["maxLength"] = max_length
    return found


def _times() -> dict[str, Any]:
    return {
        "created_at": {
            "type": "string",
            "readOnly": True,
            "description": "Date and time of creation",
            "format": "date-time",
        },
        "updated_at": {
            "type": "string",
            "readOnly": True,
            "description": "Date and time of the last modification",
            "format": "date-time",
        },
    }


def property_definition() -> dict[str, Any]:
    """One property a namespace defines: a JSON-schema fragment with a title."""
    string_list = {"type": "array", "items": {"type": "string"}}
    count = {"type": "integer", "minimum": 0}
    return {
        "type": "object",
        "required": ["title", "type"],
        "properties": {
            "name": _text("Name of the property", 255),
            "title": _text("Human-readable name of the property"),
            "description": _text("Detailed description of the property"),
            "operators": {**string_list, "description": "Operators the property allows"},
            "type": {"type": ["string", "null"], "enum": PROPERTY_TYPES},
            "required": {**string_list, "minItems": 1, "uniqueItems": True},
            "minimum": {"type": "number"},
            "maximum": {"type": "number"},
            "minLength": count,
            "maxLength": count,
            "pattern": {"type": "string", "format": "regex"},
            "enum": {"type": "array"},
            "readonly": {"type": "boolean", "description": "The value may not be changed"},
            "default": {},
            "items": {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "enum": ITEM_TYPES},
                    "enum": {"type": "array"},
                },
            },
            "minItems": count,
            "maxItems": count,
            "uniqueItems": {"type": "boolean", "default": False},
            "additionalItems": {"type": "boolean"},
        },
    }


def property_schema() -> dict[str, Any]:
    return {"name": "property", **property_definition()}


def properties_schema() -> dict[str, Any]:
    return {
        "name": "properties",
        "properties": {
            "properties": {"type": "object", "additionalProperties": property_definition()},
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


def resource_type_schema() -> dict[str, Any]:
    """A resource type's association with a namespace: the resource type's name, and
    the prefix its properties take on that resource."""
    return {
        "name": "resource_type_association",
        "properties": {
            "name": _text("Resource type names should be aligned with Heat resource types", 80),
            "prefix": _text("Prefix for the namespace's properties on this resource type", 80),
            "properties_target": _text("Which part of the resource carries the properties", 80),
            **_times(),
        },
        "required": ["name"],
        "additionalProperties": False,
    }


def tag_schema() -> dict[str, Any]:
    return {
        "name": "tag",
        "properties": {"name": _text("Name of the tag", 255), **_times()},
        "required": ["name"],
        "additionalProperties": False,
    }


def object_schema() -> dict[str, Any]:
    """A named group of properties within a namespace."""
    return {
        "name": "object",
        "properties": {
            "name": _text("Name of the object", 80),
            "description": _text("Detailed description of the object", 500),
            "required": {"type": "array", "items": {"type": "string"}},
            "properties": {"type": "object", "additionalProperties": property_definition()},
            "schema": {"type": "string", "readOnly": True},
            **_times(),
        },
        "required": ["name"],
        "additionalProperties": False,
    }


def namespace_schema() -> dict[str, Any]:
    """A namespace: the container of property, object and tag definitions, and the
    resource types it applies to."""
    return {
        "name": "namespace",
        "properties": {
            "namespace": _text("The unique namespace text", 80),
            "display_name": _text("The user-friendly name for the namespace", 80),
            "description": _text("Provides a user friendly description of the namespace", 500),
            "visibility": {
                "type": "string",
                "description": "Scope of namespace accessibility",
                "enum": ["public", "private"],
            },
            "protected": {
                "type": "boolean",
                "description": "If true, namespace will not be deletable.",
            },
            "owner": _text("Owner of the namespace", 255),
            "resource_type_associations": {
                "type": "array",
                "items": resource_type_schema()["properties"],
            },
            "properties": {"type": "object", "additionalProperties": property_definition()},
            "objects": {"type": "array", "items": object_schema()["properties"]},
            "tags": {"type": "array", "items": tag_schema()["properties"]},
            "self": {"type": "string", "readOnly": True},
            "schema": {"type": "string", "readOnly": True},
            **_times(),
        },
        "required": ["namespace"],
        "additionalProperties": False,
    }


SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "namespace": namespace_schema,
    "namespaces": lambda: collection("namespaces", namespace_schema()),
    "resource_type": resource_type_schema,
    "resource_types": lambda: collection("resource_type_associations", resource_type_schema()),
    "property": property_schema,
    "properties": properties_schema,
    "object": object_schema,
    "objects": lambda: collection("objects", object_schema()),
    "tag": tag_schema,
    "tags": lambda: collection("tags", tag_schema()),
}


@router.get(PREFIX + "/schemas/metadefs/{name}")
async def schema(request: Request, name: str) -> Response:
    await current_user(request)
    if name not in SCHEMAS:
        raise errors.NotFound(f"No schema metadefs/{name}")
    return json_response(SCHEMAS[name]())


@router.get(PREFIX + "/metadefs/namespaces")
async def namespaces(request: Request) -> Response:
    """The catalog is empty (see the module's docstring)."""
    await current_user(request)
    return json_response(
        {
            "namespaces": [],
            "schema": "/v2/schemas/metadefs/namespaces",
            "first": "/v2/metadefs/namespaces",
        }
    )


@router.get(PREFIX + "/metadefs/resource_types")
async def resource_types(request: Request) -> Response:
    await current_user(request)
    return json_response({"resource_types": []})


@router.get(PREFIX + "/metadefs/namespaces/{namespace}")
async def namespace(request: Request, namespace: str) -> Response:
    await current_user(request)
    raise errors.NotFound(f"Metadata definition namespace={namespace} was not found.")
