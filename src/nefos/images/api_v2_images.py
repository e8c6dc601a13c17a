"""Glance v2 images: create, show, change (the two JSON-patch media types), delete, and
their tags.

``POST /v2/images`` makes a *queued* image, an empty placeholder file ``images/<id>``
in the owner's account (:mod:`nefos.images.service`). Where Glance leaves a choice to
policy we take Synnefo's: any user may publish an image.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from nefos.core import errors
from nefos.core.faults import json_response
from nefos.images.api_paths import image_id_in_path
from nefos.images.api_v2_common import (
    DESCRIPTION,
    DISALLOWED,
    HIDDEN,
    IMAGE,
    IMAGES,
    PATCH_TYPES,
    READ_ONLY,
    RESERVED,
    RESERVED_NAMESPACE,
    UUID_PATTERN,
    WRITABLE,
    caller,
    check_attribute,
    check_property,
    media_type,
    not_schema,
    read_json,
    render,
)
from nefos.images.service import Image, ImageChange

router = APIRouter(dependencies=[Depends(image_id_in_path)])


# -- images ----------------------------------------------------------------------------


@router.post(IMAGES)
async def create_image(request: Request) -> Response:
    user, images = await caller(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise not_schema(body, "is not of type 'object'")
    for key in DISALLOWED + READ_ONLY:
        if key in body and key != "id":
            raise errors.PermissionDenied(f"Attribute '{key}' is read-only.")
    image_id = body.pop("id", None)
    if image_id is not None and (not isinstance(image_id, str) or not UUID_PATTERN.match(image_id)):
        raise not_schema(image_id, "does not match the UUID pattern")
    owner = body.pop("owner", None)
    if owner is not None and owner != user:
        raise errors.PermissionDenied(f"You are not permitted to create images owned by '{owner}'.")
    if "locations" in body:
        raise errors.PermissionDenied(
            "It's not allowed to add locations if locations are invisible."
        )
    attributes = {key: check_attribute(key, body.pop(key)) for key in WRITABLE if key in body}
    properties = {key: check_property(key, value) for key, value in body.items()}
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
    user, images = await caller(request)
    return json_response(render(await images.get(user, image_id)))


@router.delete(IMAGE)
async def delete_image(request: Request, image_id: str) -> Response:
    user, images = await caller(request)
    await images.delete(user, image_id)
    return Response(status_code=204)


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
                check_attribute(key, value)
            elif key not in ("owner", "locations"):
                check_property(key, value)
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
    user, images = await caller(request)
    draft = PATCH_TYPES.get(media_type(request))
    if draft is None:
        raise errors.UnsupportedMedia(
            "The request has an unsupported media type; use a JSON patch type.",
            headers={"Accept-Patch": ", ".join(sorted(PATCH_TYPES))},
        )
    changes = _changes(await read_json(request), draft)

    def plan(image: Image) -> ImageChange | None:
        fields, properties = _apply(image, changes, draft)
        return ImageChange(fields, properties) if fields or properties else None

    denied = "You are not permitted to modify this image."
    return json_response(render(await images.change(user, image_id, plan, denied)))


# -- tags ------------------------------------------------------------------------------

TAGS_DENIED = "You are not permitted to modify tags on this image."


@router.put(IMAGE + "/tags/{tag}")
async def add_tag(request: Request, image_id: str, tag: str) -> Response:
    user, images = await caller(request)

    def plan(image: Image) -> ImageChange | None:
        check_attribute("tags", [tag])
        return None if tag in image.tags else ImageChange({"tags": [*image.tags, tag]})

    await images.change(user, image_id, plan, TAGS_DENIED)
    return Response(status_code=204)


@router.delete(IMAGE + "/tags/{tag}")
async def delete_tag(request: Request, image_id: str, tag: str) -> Response:
    user, images = await caller(request)

    def plan(image: Image) -> ImageChange:
        if tag not in image.tags:
            raise errors.NotFound(f"Tag {tag} not found")
        return ImageChange({"tags": [t for t in image.tags if t != tag]})

    await images.change(user, image_id, plan, TAGS_DENIED)
    return Response(status_code=204)
