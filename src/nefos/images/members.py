"""Glance v2's member rules over the image service: only a ``shared`` image has members;
the owner sees and changes them all, a member sees only itself and alone answers for
itself (pending, accepted, rejected). Plankton (v1) keeps its own, laxer rules in
:class:`~nefos.images.service.Images`.

Each function is one call of the API and returns the image with the member list as it
is after the call, for the API to render.
"""

from __future__ import annotations

from nefos.core import errors
from nefos.images.service import MEMBER_STATUSES, Image, Images


async def _shared(images: Images, user: str, image_id: str) -> Image:
    image = await images.get(user, image_id)
    if image.visibility != "shared":
        raise errors.PermissionDenied(
            f"Error fetching members of image {image.id}: Only shared images have members."
        )
    return image


def _member_of(user: str, image: Image, member_id: str) -> str:
    """The member's status, as the caller may see it."""
    if member_id not in image.members or user not in (image.owner, member_id):
        raise errors.NotFound(f"{member_id} not found in the member list of the image {image.id}.")
    return image.members[member_id]


async def listed(images: Images, user: str, image_id: str) -> tuple[Image, dict[str, str]]:
    """The members the caller may see, with their statuses."""
    image = await _shared(images, user, image_id)
    return image, {m: s for m, s in image.members.items() if user in (image.owner, m)}


async def add(images: Images, user: str, image_id: str, member: str) -> Image:
    image = await _shared(images, user, image_id)
    if image.owner != user:
        raise errors.PermissionDenied(f"Not allowed to create members for image {image.id}.")
    if member in image.members:
        raise errors.Conflict(f"Member {member} is duplicated for image {image.id}")
    return await images.set_members(user, image.id, [member], add=True)


async def shown(images: Images, user: str, image_id: str, member: str) -> tuple[Image, str]:
    """One member and its status; an image without members is as missing as any."""
    try:
        image = await _shared(images, user, image_id)
    except errors.PermissionDenied as exc:  # Glance hides why, as for any lookup
        raise errors.NotFound(exc.message) from None
    return image, _member_of(user, image, member)


async def answer(images: Images, user: str, image_id: str, member: str, status: str) -> Image:
    """The member accepts or rejects the image (or makes it pending again)."""
    image = await _shared(images, user, image_id)
    _member_of(user, image, member)
    if status not in MEMBER_STATUSES:
        raise errors.InvalidInput(f"Incorrect request: Invalid status: {status}")
    if user != member:
        raise errors.PermissionDenied(f"Not allowed to update members for image {image.id}.")
    return await images.set_member_status(user, image.id, member, status)


async def remove(images: Images, user: str, image_id: str, member: str) -> None:
    image = await _shared(images, user, image_id)
    _member_of(user, image, member)
    if image.owner != user:
        raise errors.PermissionDenied(f"Not allowed to delete members for image {image.id}.")
    await images.remove_member(user, image.id, member)
