"""Glance v2 image members: who an image is shared with, and each member's answer
(pending, accepted, rejected). Only a ``shared`` image has members; the owner sees them
all, a member only itself.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from nefos.core import errors
from nefos.core.faults import json_response
from nefos.images.api_paths import image_id_in_path
from nefos.images.api_v2_common import IMAGE, caller, read_json, render_member
from nefos.images.service import MEMBER_STATUSES, Image, Images

router = APIRouter(dependencies=[Depends(image_id_in_path)])


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
    user, images = await caller(request)
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
    user, images = await caller(request)
    body = await read_json(request)
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
    user, images = await caller(request)
    try:
        image = await _shared(images, user, image_id)
    except errors.PermissionDenied as exc:  # Glance hides why, as for any lookup
        raise errors.NotFound(exc.message) from None
    return json_response(render_member(image, member_id, _member_of(user, image, member_id)))


@router.put(IMAGE + "/members/{member_id}")
async def update_member(request: Request, image_id: str, member_id: str) -> Response:
    user, images = await caller(request)
    body = await read_json(request)
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
    user, images = await caller(request)
    image = await _shared(images, user, image_id)
    _member_of(user, image, member_id)
    if image.owner != user:
        raise errors.PermissionDenied(f"Not allowed to delete members for image {image.id}.")
    await images.remove_member(user, image.id, member_id)
    return Response(status_code=204)
