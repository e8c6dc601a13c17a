"""Server actions: ``POST /servers/<id>/action`` with a body of one action.

    {"os-start": null}  {"os-stop": null}  {"reboot": {"type": "SOFT" | "HARD"}}
    {"resize": {"flavorRef": ...}}  {"reassign": {"project": ..., "shared_to_project"?}}
    {"console": {"type": "vnc" | "vnc-ws"}}
        -> 200 {"console": {type, host, port, password, expires}}
    {"addFloatingIp": {"address": ..., "fixed_address"?: ...}}  {"removeFloatingIp": {"address"}}
    {"firewallProfile": {"profile": "ENABLED" | "PROTECTED" | "DISABLED", "nic": <port id>}}
    {"createImage": {"name": ..., "metadata"?: {...}}}
        -> 202, Location: <the image's URL> (a server booted from a volume only)

:data:`ACTIONS` maps each action's name to its handler; a handler parses the action's
arguments into one service call and renders its answer (None: 202 with no body, the
server still in its old state until the backend's job events move it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.responses import Response

from nefos.compute.nova import caller, empty, json_body, member_projects, ref, reply
from nefos.compute.service import Compute
from nefos.core import errors
from nefos.core.auth import Credentials


@dataclass(frozen=True)
class Call:
    """One action as parsed from its request: who asks, on which server, with what."""

    request: Request
    credentials: Credentials
    compute: Compute
    server_id: str
    name: str
    args: Any

    @property
    def user(self) -> str:
        return str(self.credentials.user_id)

    async def projects(self) -> list[str]:
        return await member_projects(self.request, self.credentials)


Handler = Callable[[Call], Awaitable[Response | None]]


async def start(call: Call) -> None:
    await call.compute.start(call.user, call.server_id)


async def shutdown(call: Call) -> None:
    await call.compute.shutdown(call.user, call.server_id)


async def reboot(call: Call) -> None:
    kind = (call.args or {}).get("type", "SOFT") if isinstance(call.args, dict) else None
    if not isinstance(kind, str) or kind.upper() not in ("SOFT", "HARD"):
        raise errors.InvalidInput("reboot type is SOFT or HARD")
    await call.compute.reboot(call.user, call.server_id, hard=kind.upper() == "HARD")


async def resize(call: Call) -> None:
    if not isinstance(call.args, dict) or "flavorRef" not in call.args:
        raise errors.InvalidInput("resize needs flavorRef")
    flavor_ref = ref(call.args["flavorRef"], "flavorRef")
    await call.compute.resize(call.user, call.server_id, flavor_ref, await call.projects())


async def reassign(call: Call) -> None:
    args = call.args
    if not isinstance(args, dict) or not isinstance(args.get("project"), str):
        raise errors.InvalidInput('reassign takes {"project": "<project id>"}')
    shared = args.get("shared_to_project")
    if shared is not None and not isinstance(shared, bool):
        raise errors.InvalidInput("shared_to_project is true or false")
    projects = await call.projects()
    await call.compute.reassign(call.user, call.server_id, args["project"], projects, shared)


async def console(call: Call) -> Response:
    kind = call.args.get("type") if isinstance(call.args, dict) else None
    if not isinstance(kind, str):
        raise errors.InvalidInput('console takes {"type": "vnc" | "vnc-ws"}')
    return reply({"console": await call.compute.console(call.user, call.server_id, kind)})


def _address(args: Any, action: str) -> str:
    address = args.get("address") if isinstance(args, dict) else None
    if not isinstance(address, str):
        raise errors.InvalidInput(f'{action} takes {{"address": "<floating IP>"}}')
    return address


async def add_floating_ip(call: Call) -> None:
    address = _address(call.args, call.name)
    fixed = call.args.get("fixed_address")
    if fixed is not None and not isinstance(fixed, str):
        raise errors.InvalidInput("fixed_address is an address of the server")
    projects = await call.projects()
    await call.compute.add_floating_ip(call.user, projects, call.server_id, address, fixed)


async def remove_floating_ip(call: Call) -> None:
    address = _address(call.args, call.name)
    projects = await call.projects()
    await call.compute.remove_floating_ip(call.user, projects, call.server_id, address)


async def firewall_profile(call: Call) -> None:
    """Synnefo's: the NIC's profile becomes an instance tag on the backend; the answer
    is 202 before the tag job has run."""
    args = call.args if isinstance(call.args, dict) else {}
    profile, nic = args.get("profile"), args.get("nic")
    if not isinstance(profile, str) or not isinstance(nic, str):
        raise errors.InvalidInput(
            'firewallProfile takes {"profile": "ENABLED|PROTECTED|DISABLED", "nic": "<port>"}'
        )
    await call.compute.set_firewall(call.user, call.server_id, nic, profile)


async def vnc_console(call: Call) -> None:
    await call.compute.server(call.user, call.server_id)  # 404 before 501
    raise errors.NotImplementedYet(
        "noVNC is not served here: use the console action with type vnc or vnc-ws"
    )


async def create_image(call: Call) -> Response:
    """Nova 2.1's: 202, no body, the new image's URL in ``Location`` (clients take its
    last segment as the image id)."""
    args = call.args if isinstance(call.args, dict) else None
    name = None if args is None else args.get("name")
    if not isinstance(name, str) or not name.strip():
        raise errors.InvalidInput('createImage takes {"name": ..., "metadata"?: {...}}')
    metadata = args.get("metadata") or {} if args is not None else {}
    if not isinstance(metadata, dict):
        raise errors.InvalidInput("metadata is an object of text keys and values")
    image_id = await call.compute.create_image(call.user, call.server_id, name, metadata)
    answer = empty(202)
    base = call.request.app.state.settings.base_url
    answer.headers["Location"] = f"{base}/image/v2/images/{image_id}"
    return answer


async def not_implemented(call: Call) -> None:
    await call.compute.server(call.user, call.server_id)  # 404 before 501
    raise errors.NotImplementedYet(f"The {call.name} action is not implemented")


async def suspend(call: Call) -> None:
    raise errors.PermissionDenied("Servers cannot be suspended")


ACTIONS_NOT_IMPLEMENTED = (
    "changePassword",
    "rebuild",
    "confirmResize",
    "revertResize",
)

ACTIONS: dict[str, Handler] = {
    "start": start,
    "os-start": start,
    "shutdown": shutdown,
    "os-stop": shutdown,
    "reboot": reboot,
    "resize": resize,
    "reassign": reassign,
    "console": console,
    "addFloatingIp": add_floating_ip,
    "removeFloatingIp": remove_floating_ip,
    "firewallProfile": firewall_profile,
    "os-getVNCConsole": vnc_console,
    "suspend": suspend,
    "createImage": create_image,
    **dict.fromkeys(ACTIONS_NOT_IMPLEMENTED, not_implemented),
}


async def action(request: Request, server_id: str) -> Response:
    credentials, compute = await caller(request)
    body = await json_body(request)
    if not isinstance(body, dict) or len(body) != 1:
        raise errors.InvalidInput("An action body has exactly one action")
    ((name, args),) = body.items()
    handler = ACTIONS.get(name)
    if handler is None:
        raise errors.InvalidInput(f"Unknown action {name!r}")
    answer = await handler(Call(request, credentials, compute, server_id, name, args))
    return empty(202) if answer is None else answer
