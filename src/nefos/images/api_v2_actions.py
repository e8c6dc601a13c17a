"""Glance v2's image actions: ``POST /v2/images/{id}/actions/deactivate`` and
``.../reactivate``, an admin's hold on an image and its release (204 both, 403 to anyone
else, 409 from a status other than active or deactivated).

Kept apart from :mod:`nefos.images.api_v2_images` (the image CRUD); its router joins
the others at the same prefix, with the same path-id check and fault format.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from nefos.core.auth import current_user
from nefos.images.api_paths import image_id_in_path
from nefos.images.api_v2_common import IMAGE

router = APIRouter(dependencies=[Depends(image_id_in_path)])


@router.post(IMAGE + "/actions/deactivate", status_code=204)
async def deactivate(request: Request, image_id: str) -> Response:
    return await _hold(request, image_id, deactivated=True)


@router.post(IMAGE + "/actions/reactivate", status_code=204)
async def reactivate(request: Request, image_id: str) -> Response:
    return await _hold(request, image_id, deactivated=False)


async def _hold(request: Request, image_id: str, deactivated: bool) -> Response:
    credentials = await current_user(request)
    images = request.app.state.engines.images
    await images.set_deactivated(
        str(credentials.user_id), credentials.is_admin, image_id, deactivated
    )
    return Response(status_code=204)
