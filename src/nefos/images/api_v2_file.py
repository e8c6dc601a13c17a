"""Glance v2 image data: ``PUT .../file`` streams the data into the queued image's
placeholder file as its new version (so the object store reads it too); ``GET
.../file`` streams it back, one range at most (webob serves several as the whole).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response, StreamingResponse

from nefos.core import errors, http
from nefos.core.auth import current_user
from nefos.images.api_paths import image_id_in_path
from nefos.images.api_v2_common import IMAGE, caller, media_type

router = APIRouter(dependencies=[Depends(image_id_in_path)])


@router.put(IMAGE + "/file")
async def upload(request: Request, image_id: str) -> Response:
    user, images = await caller(request)
    if media_type(request) != "application/octet-stream":
        raise errors.UnsupportedMedia(f"Invalid content type {request.headers.get('content-type')}")
    limit = request.app.state.settings.limits.image_size_bytes
    await images.upload(user, image_id, request.stream(), max_size=limit)
    return Response(status_code=204)


@router.get(IMAGE + "/file")
async def download(request: Request, image_id: str) -> Response:
    user, images = await caller(request)
    admin = (await current_user(request)).is_admin
    image, record = await images.data(user, image_id, admin=admin)
    if record is None:
        return Response(status_code=204)
    storage = request.app.state.engines.storage
    headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
    if image.md5:
        headers["Content-MD5"] = image.md5
    ranges = None
    if record.size:
        ranges = http.parse_ranges(request.headers.get("range"), record.size)
    if ranges is None or len(ranges) != 1:  # webob serves several ranges as the whole
        headers["Content-Length"] = str(record.size)
        return StreamingResponse(storage.read(record), 200, headers)
    start, end = ranges[0]
    headers["Content-Range"] = http.content_range(start, end, record.size)
    headers["Content-Length"] = str(end - start)
    return StreamingResponse(storage.read(record, start, end), 206, headers)
