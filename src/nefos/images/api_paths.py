"""The image id in a request path, checked before a route reads anything else.

Glance looks an id up as text, so any id that names no image answers 404, whatever the
route would have said of the body or the media type. A route here that read its body
first answered a malformed id with 400 (bad JSON) or 415, and one that handed the text
on might have met ``uuid.UUID``, which reads Unicode digits as hex. Both image routers
depend on :func:`image_id_in_path`: the caller is authenticated first (401 before 404,
as keystonemiddleware answers in front of Glance), then an id that is no ASCII UUID is
a 404 in the router's own fault format.
"""

from __future__ import annotations

from fastapi import Request

from nefos.core.auth import current_user
from nefos.images.service import parse_image_id


async def image_id_in_path(request: Request) -> None:
    await current_user(request)
    value = request.path_params.get("image_id")
    if value is not None:
        parse_image_id(value)
