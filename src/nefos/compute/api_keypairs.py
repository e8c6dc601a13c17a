"""Nova's os-keypairs at microversion 2.1, under ``/compute/v2.1`` and ``/compute/v2.0``.

    GET    /os-keypairs         {"keypairs": [{"keypair": {name, public_key, fingerprint}}]}
    POST   /os-keypairs         {"keypair": {name, public_key?}} -> 200 {"keypair": {...,
                                user_id, private_key if generated}}
    GET    /os-keypairs/<name>  {"keypair": {... id, user_id, created_at, deleted ...}}
    DELETE /os-keypairs/<name>  202

Faults are Nova's (the app's default style). Nova 2.1 answers a full key quota with 403,
not the 413 of other quotas, so this module translates that one kind.
"""

from __future__ import annotations

import datetime as dt
import zlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from nefos.compute.keypairs import Keypairs
from nefos.compute.models import Keypair
from nefos.compute.nova import PREFIXES, check_microversion, empty, reply
from nefos.core import errors
from nefos.core.auth import Credentials, current_user
from nefos.core.body import parse_json

router = APIRouter()


async def _caller(request: Request) -> Credentials:
    """The caller, once the microversion asked for is one this API speaks."""
    check_microversion(request)
    return await current_user(request)


User = Annotated[Credentials, Depends(_caller)]


class _NewKeypair(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    public_key: str | None = None
    type: str = "ssh"  # microversion 2.2; accepted so newer clients' imports work


class _Create(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keypair: _NewKeypair


def _keypairs(request: Request) -> Keypairs:
    return request.app.state.engines.keypairs


_reply = reply


def _summary(keypair: Keypair) -> dict[str, Any]:
    return {
        "name": keypair.name,
        "public_key": keypair.public_key,
        "fingerprint": keypair.fingerprint,
    }


def _numeric_id(keypair: Keypair) -> int:
    """Nova shows a database integer no client uses (they address keys by name); the
    row is keyed by (user, name), so this is a stable number derived from that key."""
    return zlib.crc32(f"{keypair.user_id}/{keypair.name}".encode()) & 0x7FFFFFFF


def _time(moment: dt.datetime) -> str:
    """Nova's format: UTC, microseconds, no zone designator."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


async def list_keypairs(request: Request, caller: User) -> Response:
    found = await _keypairs(request).list(str(caller.user_id))
    return _reply({"keypairs": [{"keypair": _summary(k)} for k in found]})


async def create_keypair(request: Request, caller: User) -> Response:
    wanted = parse_json(_Create, await request.body()).keypair
    keypairs, user = _keypairs(request), str(caller.user_id)
    try:
        if wanted.public_key is not None:
            created = await keypairs.import_key(user, wanted.name, wanted.public_key, wanted.type)
            private_key = None
        else:
            if wanted.type != "ssh":
                raise errors.InvalidInput(f"Unsupported keypair type {wanted.type!r}: only ssh")
            generated = await keypairs.generate(user, wanted.name)
            created, private_key = generated.keypair, generated.private_key
    except errors.OverQuota as exc:
        raise errors.PermissionDenied(exc.message) from None
    body = {**_summary(created), "user_id": created.user_id}
    if private_key is not None:
        body["private_key"] = private_key
    return _reply({"keypair": body})


async def show_keypair(request: Request, name: str, caller: User) -> Response:
    keypair = await _keypairs(request).get(str(caller.user_id), name)
    body = {
        **_summary(keypair),
        "user_id": keypair.user_id,
        "id": _numeric_id(keypair),
        "created_at": _time(keypair.created),
        "updated_at": None,
        "deleted_at": None,
        "deleted": False,
    }
    return _reply({"keypair": body})


async def delete_keypair(request: Request, name: str, caller: User) -> Response:
    await _keypairs(request).delete(str(caller.user_id), name)
    return empty(202)


for _prefix in PREFIXES:
    router.add_api_route(f"{_prefix}/os-keypairs", list_keypairs, methods=["GET"])
    router.add_api_route(f"{_prefix}/os-keypairs", create_keypair, methods=["POST"])
    router.add_api_route(f"{_prefix}/os-keypairs/{{name}}", show_keypair, methods=["GET"])
    router.add_api_route(f"{_prefix}/os-keypairs/{{name}}", delete_keypair, methods=["DELETE"])
