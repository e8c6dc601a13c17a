"""Glance v2 image members: who an image is shared with, and each member's answer
(pending, accepted, rejected). Only a ``shared`` image has members; the owner sees them
all, a member only itself.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from nefos.core import errors
from nefos.core.faults import json_response
from nefos.images import members
from nefos.images.api_paths import image_id_in_path
from nefos.images.api_v2_common import IMAGE, caller, read_json, render_member

router = APIRouter(dependencies=[Depends(image_id_in_path)])


@router.get(IMAGE + "/members")
async def list_members(request: Request, image_id: str) -> Response:
    user, images = await caller(request)
    image, found = await members.listed(images, user, image_id)
    return json_response(
        {
            "members": [render_member(image, m, s) for m, s in found.items()],
            "schema": "/v2/schemas/members",
        }
    )


def _member(body: Any) -> str:
    if not isinstance(body, dict) or "member" not in body:
        raise errors.InvalidInput("Member to be added not specified")
    member = body["member"]
    if not member:
        raise errors.InvalidInput("Member can't be empty")
    if not isinstance(member, str):
        raise errors.InvalidInput("A member is a project (user) id")
    return member


@router.post(IMAGE + "/members")
async def add_member(request: Request, image_id: str) -> Response:
    user, images = await caller(request)
    member = _member(await read_json(request))
    image = await members.add(images, user, image_id, member)
    return json_response(render_member(image, member, image.members[member]))


@router.get(IMAGE + "/members/{member_id}")
async def show_member(request: Request, image_id: str, member_id: str) -> Response:
    user, images = await caller(request)
    image, status = await members.shown(images, user, image_id, member_id)
    return json_response(render_member(image, member_id, status))


@router.put(IMAGE + "/members/{member_id}")
async def update_member(request: Request, image_id: str, member_id: str) -> Response:
    user, images = await caller(request)
    body = await read_json(request)
    if not isinstance(body, dict) or "status" not in body:
        raise errors.InvalidInput("Status not specified")
    image = await members.answer(images, user, image_id, member_id, body["status"])
    return json_response(render_member(image, member_id, image.members[member_id]))


@router.delete(IMAGE + "/members/{member_id}")
async def delete_member(request: Request, image_id: str, member_id: str) -> Response:
    user, images = await caller(request)
    await members.remove(images, user, image_id, member_id)
    return Response(status_code=204)
