"""The vmapi routes: a server's build fetches its configuration and image here.

``GET /vmapi/<secret>`` answers the build configuration (JSON) once; ``GET
/vmapi/<secret>/image`` the image's bytes (one ``Range`` honoured) while the build runs.
No token: the secret in the path is the credential, and the access log masks it.
Faults are Synnefo's shape; every refusal of a secret is the same 404.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from nefos.compute.vmapi import PREFIX, VmApi
from nefos.core import http
from nefos.core.faults import json_response

router = APIRouter()
NO_STORE = {"Cache-Control": "no-store"}


def _vmapi(request: Request) -> VmApi:
    return request.app.state.engines.compute.vmapi


@router.get(PREFIX + "/{secret}")
async def config(request: Request, secret: str) -> Response:
    return json_response(await _vmapi(request).config(secret), headers=NO_STORE)


@router.get(PREFIX + "/{secret}/image")
async def image(request: Request, secret: str) -> Response:
    vmapi = _vmapi(request)
    pinned = await vmapi.image(secret)
    headers = {
        **NO_STORE,
        "Content-Type": "application/octet-stream",
        "Accept-Ranges": "bytes",
        "X-Object-Hash": pinned.hash,
    }
    ranges = http.parse_ranges(request.headers.get("range"), pinned.size) if pinned.size else None
    if ranges is None or len(ranges) != 1:
        headers["Content-Length"] = str(pinned.size)
        return StreamingResponse(vmapi.read(pinned), 200, headers)
    start, end = ranges[0]
    headers["Content-Range"] = http.content_range(start, end, pinned.size)
    headers["Content-Length"] = str(end - start)
    return StreamingResponse(vmapi.read(pinned, start, end), 206, headers)
