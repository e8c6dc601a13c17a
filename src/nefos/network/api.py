"""The Network API (Neutron v2.0, with Cyclades's extensions) at ``/network/v2.0``.

Networks, subnets, ports and floating IPs (create, list, show, update, delete; and
Cyclades's ``reassign`` action), the ``/detail`` listings kamaki reads, security groups
as a read view, and the project's quota. Each route parses, makes one service call and
renders; faults are Neutron's, ``{"NeutronError": {"type", "message", "detail"}}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from nefos.core import errors
from nefos.core.auth import current_user
from nefos.core.body import parse_json
from nefos.core.faults import json_response
from nefos.network import api_views as views
from nefos.network.dialect import TABLE as DIALECT
from nefos.network.security_groups import LEVELS, Rule, SecurityGroup, group_id
from nefos.network.service import Caller, NetworkService
from nefos.network.subnets import UNSET

PREFIX = views.PREFIX
NOT_FILTERS = frozenset({"fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse"})
NEUTRON_TYPES = {
    400: "HTTPBadRequest",
    401: "HTTPUnauthorized",
    403: "HTTPForbidden",
    404: "HTTPNotFound",
    405: "HTTPMethodNotAllowed",
    409: "HTTPConflict",
    413: "HTTPRequestEntityTooLarge",
    501: "HTTPNotImplemented",
    503: "HTTPServiceUnavailable",
}

router = APIRouter()


def neutron_fault(status: int, error: errors.NefosError) -> Response:
    """Neutron's shape; a quota refusal is Neutron's 409 OverQuota, not a 413, and
    carries the commission's ``data`` too (the resource, its holder's usage and limit,
    as the compute API's overLimit does), from which the web UI writes its own text."""
    kind = NEUTRON_TYPES.get(status, "HTTPError")
    fault: dict[str, Any] = {"type": kind, "message": error.message, "detail": error.details}
    if isinstance(error, errors.OverQuota):
        status, fault["type"] = 409, "OverQuota"
        if error.data is not None:
            fault["data"] = error.data
    return json_response({"NeutronError": fault}, status)


async def _caller(request: Request) -> tuple[Caller, NetworkService]:
    credentials = await current_user(request)
    engines = request.app.state.engines
    members = await engines.projects.member_projects(credentials.user_id)
    caller = Caller(
        user=str(credentials.user_id),
        projects=frozenset({str(credentials.project_id), *map(str, members)}),
        admin=credentials.is_admin,
        project=str(credentials.project_id),
    )
    return caller, engines.network


def _filters(request: Request) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        if key not in NOT_FILTERS:
            found.setdefault(key, []).append(value)
    return found


async def _body(request: Request, key: str) -> dict[str, Any]:
    body = parse_json(dict[str, Any], await request.body())
    inner = body.get(key)
    if not isinstance(inner, dict):
        raise errors.InvalidInput(f"Invalid request: the body is {{{key!r}: {{...}}}}")
    return inner


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise errors.InvalidInput(f"Invalid input for {key}: text expected")
    return value


def _flag(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise errors.InvalidInput(f"Invalid input for {key}: true or false expected")
    return value


def _project(body: dict[str, Any]) -> str | None:
    for key in ("project_id", "tenant_id", "project"):
        if body.get(key) is not None:
            return _text(body[key], key)
    return None


def _reply(body: Any, status: int = 200) -> Response:
    return json_response(body, status)


def _route(path: str, methods: list[str]):  # type: ignore[no-untyped-def]
    def register(handler):  # type: ignore[no-untyped-def]
        router.add_api_route(PREFIX + path, handler, methods=methods, include_in_schema=False)
        return handler

    return register


# Each kind's view; its collection is the kind with an "s" (Neutron's names).
RENDER: dict[str, Callable[[views.Wire, Any], dict[str, Any]]] = {
    "network": views.network,
    "subnet": views.subnet,
    "port": views.port,
    "floatingip": views.floating_ip,
}


def _one(request: Request, kind: str, found: Any, status: int = 200) -> Response:
    return _reply({kind: RENDER[kind](views.wire(request), found)}, status)


# kind, path, and the service's list, show and delete calls: the routes that only read
# or remove are the same for every kind.
PLAIN = (
    ("network", "/networks", "networks", "network", "delete_network"),
    ("subnet", "/subnets", "subnets", "subnet", "delete_subnet"),
    ("port", "/ports", "ports", "port", "delete_port"),
    ("floatingip", "/floatingips", "floating_ips", "floating_ip", "delete_floating_ip"),
)


def _plain_routes(kind: str, path: str, listing: str, show: str, delete: str) -> None:
    async def list_all(request: Request) -> Response:
        caller, net = await _caller(request)
        found = await getattr(net, listing)(caller, _filters(request))
        w = views.wire(request)
        return _reply({f"{kind}s": [RENDER[kind](w, item) for item in found]})

    async def show_one(request: Request) -> Response:
        caller, net = await _caller(request)
        return _one(request, kind, await getattr(net, show)(caller, request.path_params["id"]))

    async def delete_one(request: Request) -> Response:
        caller, net = await _caller(request)
        await getattr(net, delete)(caller, request.path_params["id"])
        return Response(status_code=204)

    _route(path, ["GET"])(list_all)
    _route(f"{path}/detail", ["GET"])(list_all)
    _route(f"{path}/{{id}}", ["GET"])(show_one)
    _route(f"{path}/{{id}}", ["DELETE"])(delete_one)


for plain in PLAIN:
    _plain_routes(*plain)


def _reassign_args(body: dict[str, Any]) -> tuple[str, bool | None]:
    args = body.get("reassign")
    if len(body) != 1 or not isinstance(args, dict):
        raise errors.InvalidInput('The only action is reassign: {"reassign": {"project"}}')
    shared = args.get("shared_to_project")
    return (
        _text(args.get("project"), "project"),
        None if shared is None else _flag(shared, "shared_to_project"),
    )


# -- networks ------------------------------------------------------------------------------


@_route("/networks", ["POST"])
async def create_network(request: Request) -> Response:
    caller, net = await _caller(request)
    body = await _body(request, "network")
    public = body.get("router:external", False)
    created = await net.create_network(
        caller,
        name=_text(body.get("name", ""), "name"),
        flavor=None if body.get("type") is None else _text(body["type"], "type"),
        project=_project(body),
        public=_flag(public, "router:external"),
        floating_ip_pool=public,
    )
    return _one(request, "network", created, 201)


@_route("/networks/{network_id}", ["PUT"])
async def update_network(request: Request, network_id: str) -> Response:
    caller, net = await _caller(request)
    body = await _body(request, "network")
    name = None if "name" not in body else _text(body["name"], "name")
    return _one(request, "network", await net.update_network(caller, network_id, name))


@_route("/networks/{network_id}/action", ["POST"])
async def network_action(request: Request, network_id: str) -> Response:
    caller, net = await _caller(request)
    project, shared = _reassign_args(parse_json(dict[str, Any], await request.body()))
    moved = await net.reassign_network(caller, network_id, project, shared)
    return _one(request, "network", moved)


# -- subnets -------------------------------------------------------------------------------


@_route("/subnets", ["POST"])
async def create_subnet(request: Request) -> Response:
    caller, net = await _caller(request)
    body = await _body(request, "subnet")
    if body.get("network_id") is None or body.get("cidr") is None:
        raise errors.InvalidInput("A subnet needs network_id and cidr")
    mode = body.get("ipv6_address_mode") or body.get("ipv6_ra_mode")
    if body.get("enable_slaac") is False:
        mode = "none"
    created = await net.create_subnet(
        caller,
        _text(body["network_id"], "network_id"),
        body["cidr"],
        ip_version=body.get("ip_version"),
        name=_text(body.get("name", ""), "name"),
        gateway=body.get("gateway_ip", UNSET),
        allocation_pools=body.get("allocation_pools"),
        enable_dhcp=_flag(body.get("enable_dhcp", True), "enable_dhcp"),
        dns_nameservers=body.get("dns_nameservers") or [],
        host_routes=body.get("host_routes") or [],
        ipv6_mode=mode,
    )
    return _one(request, "subnet", created, 201)


@_route("/subnets/{subnet_id}", ["PUT"])
async def update_subnet(request: Request, subnet_id: str) -> Response:
    caller, net = await _caller(request)
    body = await _body(request, "subnet")
    allowed = {"name", "enable_dhcp", "dns_nameservers", "host_routes", "allocation_pools"}
    if set(body) - allowed:
        raise errors.InvalidInput(
            f"Cannot update {', '.join(sorted(set(body) - allowed))} of a subnet"
        )
    return _one(request, "subnet", await net.update_subnet(caller, subnet_id, **body))


# -- ports ---------------------------------------------------------------------------------


@_route("/ports", ["POST"])
async def create_port(request: Request) -> Response:
    caller, net = await _caller(request)
    body = await _body(request, "port")
    if body.get("network_id") is None:
        raise errors.InvalidInput("A port needs a network_id")
    fixed = body.get("fixed_ips")
    if fixed is not None and not isinstance(fixed, list):
        raise errors.InvalidInput("fixed_ips is a list of {subnet_id, ip_address}")
    if body.get("security_groups") is not None:
        _check_groups(body["security_groups"], _project(body) or caller.project, "DISABLED")
    created = await net.create_port(
        caller,
        _text(body["network_id"], "network_id"),
        name=_text(body.get("name", ""), "name"),
        fixed_ips=fixed,
        device_id=body.get("device_id") or None,
        device_owner=_text(body.get("device_owner", ""), "device_owner"),
        project=_project(body),
    )
    return _one(request, "port", created, 201)


def _check_groups(groups: Any, project: str, profile: str) -> None:
    """A port's security group is its firewall profile's (a new port's: DISABLED's,
    ``unprotected``); naming it again is allowed, naming another is not."""
    level = LEVELS[profile]
    own = {group_id(project, level), level}
    if not isinstance(groups, list) or any(not isinstance(g, str) for g in groups):
        raise errors.InvalidInput("security_groups is a list of security group ids")
    if set(groups) - own:
        raise errors.InvalidInput(
            f"A port is in the security group of its firewall profile ({level}) only: "
            "change the profile with the server action firewallProfile"
        )


@_route("/ports/{port_id}", ["PUT"])
async def update_port(request: Request, port_id: str) -> Response:
    caller, net = await _caller(request)
    body = await _body(request, "port")
    allowed = {"name", "device_id", "device_owner", "security_groups", "admin_state_up"}
    own_network = None
    if "network_id" in body and DIALECT.pick(request, "port_update_network_id") == 200:
        own_network = _text(body.pop("network_id"), "network_id")
    if set(body) - allowed:
        raise errors.InvalidInput(f"Cannot update {', '.join(sorted(set(body) - allowed))}")
    if body.get("security_groups") is not None:
        port = await net.port(caller, port_id)
        _check_groups(body["security_groups"], port.project, port.firewall_profile)
    updated = await net.update_port(
        caller,
        port_id,
        name=None if "name" not in body else _text(body["name"], "name"),
        device_id=body.get("device_id", ...),
        device_owner=body.get("device_owner"),
        network_id=own_network,
    )
    return _one(request, "port", updated)


# -- floating IPs --------------------------------------------------------------------------


@_route("/floatingips", ["POST"])
async def create_floating_ip(request: Request) -> Response:
    caller, net = await _caller(request)
    body = await _body(request, "floatingip")
    if body.get("port_id") is not None:
        raise errors.NotImplementedYet(
            "Attach a floating IP by creating a port with it (fixed_ips) for now"
        )
    network = body.get("floating_network_id")
    address = body.get("floating_ip_address")
    created = await net.create_floating_ip(
        caller,
        None if network is None else _text(network, "floating_network_id"),
        None if address is None else _text(address, "floating_ip_address"),
        project=_project(body),
    )
    return _one(request, "floatingip", created, DIALECT.pick(request, "floating_ip_create_status"))


@_route("/floatingips/{ip_id}", ["PUT"])
async def update_floating_ip(request: Request, ip_id: str) -> Response:
    """Associate with a port (``port_id``) or dissociate (``port_id: null``); a body
    without ``port_id`` changes nothing and shows the floating IP."""
    caller, net = await _caller(request)
    body = await _body(request, "floatingip")
    if "port_id" not in body:
        return _one(request, "floatingip", await net.floating_ip(caller, ip_id))
    port = body["port_id"]
    found = await net.attach_floating_ip(
        caller, ip_id, None if port is None else _text(port, "port_id")
    )
    return _one(request, "floatingip", found)


@_route("/floatingips/{ip_id}/action", ["POST"])
async def floating_ip_action(request: Request, ip_id: str) -> Response:
    caller, net = await _caller(request)
    project, shared = _reassign_args(parse_json(dict[str, Any], await request.body()))
    moved = await net.reassign_floating_ip(caller, ip_id, project, shared)
    return _one(request, "floatingip", moved)


# -- security groups (a read view), quotas, extensions --------------------------------------


def _groups(caller: Caller, net: NetworkService, request: Request) -> list[SecurityGroup]:
    """The caller's groups, filtered as Neutron filters them (a filter given several
    times matches any of its values)."""
    q = request.query_params
    projects = set(q.getlist("project_id") + q.getlist("tenant_id"))
    names, ids = set(q.getlist("name")), set(q.getlist("id"))
    return [
        g
        for g in net.security_groups(caller)
        if (not projects or g.project in projects)
        and (not names or g.name in names)
        and (not ids or g.id in ids)
    ]


def _rules(
    caller: Caller, net: NetworkService, request: Request
) -> list[tuple[SecurityGroup, Rule]]:
    q = request.query_params
    wanted = {
        key: set(q.getlist(key))
        for key in ("id", "security_group_id", "direction", "ethertype", "protocol")
        if q.getlist(key)
    }

    def keep(group: SecurityGroup, rule: Rule) -> bool:
        values = {
            "id": rule.id,
            "security_group_id": group.id,
            "direction": rule.direction,
            "ethertype": rule.ethertype,
            "protocol": rule.protocol or "",
        }
        return all(values[key] in allowed for key, allowed in wanted.items())

    groups = [
        g
        for g in net.security_groups(caller)
        if not (projects := set(q.getlist("project_id") + q.getlist("tenant_id")))
        or g.project in projects
    ]
    return [(g, r) for g in groups for r in g.rules if keep(g, r)]


@_route("/security-groups", ["GET"])
async def list_security_groups(request: Request) -> Response:
    caller, net = await _caller(request)
    w = views.wire(request)
    return _reply(
        {"security_groups": [views.security_group(w, g) for g in _groups(caller, net, request)]}
    )


@_route("/security-groups/{group_id}", ["GET"])
async def show_security_group(request: Request, group_id: str) -> Response:
    caller, net = await _caller(request)
    for group in net.security_groups(caller):
        if group.id == group_id:
            return _reply({"security_group": views.security_group(views.wire(request), group)})
    raise errors.NotFound(f"Security group {group_id} does not exist")


@_route("/security-group-rules", ["GET"])
async def list_security_group_rules(request: Request) -> Response:
    caller, net = await _caller(request)
    w = views.wire(request)
    found = _rules(caller, net, request)
    return _reply({"security_group_rules": [views.security_group_rule(w, g, r) for g, r in found]})


@_route("/security-group-rules/{rule_id}", ["GET"])
async def show_security_group_rule(request: Request, rule_id: str) -> Response:
    caller, net = await _caller(request)
    for group in net.security_groups(caller):
        for rule in group.rules:
            if rule.id == rule_id:
                shown = views.security_group_rule(views.wire(request), group, rule)
                return _reply({"security_group_rule": shown})
    raise errors.NotFound(f"Security group rule {rule_id} does not exist")


@_route("/security-groups", ["POST"])
@_route("/security-group-rules", ["POST"])
async def change_security_groups(request: Request) -> Response:
    await _caller(request)
    raise errors.NotImplementedYet(
        "Security groups are a read view of the firewall profiles: change a NIC's "
        "profile with the server action firewallProfile"
    )


@_route("/quotas/{project_id}", ["GET"])
@_route("/quotas/{project_id}/details", ["GET"])
@_route("/quotas/{project_id}/default", ["GET"])
async def show_quota(request: Request, project_id: str) -> Response:
    caller, net = await _caller(request)
    items = await net.quota(caller, project_id, request.query_params.get("user_id"))
    path = request.url.path
    if path.endswith("/details"):
        return _reply(
            {
                "quota": {
                    k: {"limit": v.limit, "used": v.used, "reserved": v.reserved}
                    for k, v in items.items()
                }
            }
        )
    if path.endswith("/default"):
        items = net.default_quota(items)
    return _reply({"quota": {k: v.limit for k, v in items.items()}})


EXTENSIONS = (
    ("external-net", "Neutron external network", "router:external on networks"),
    ("quotas", "Quota management support", "The project's network quota"),
    ("quota_details", "Quota details management support", "Limit, used and reserved"),
    ("security-group", "security-group", "The firewall profiles as groups, read-only"),
)


@_route("/extensions", ["GET"])
async def list_extensions(request: Request) -> Response:
    await _caller(request)
    return _reply(
        {
            "extensions": [
                {"alias": alias, "name": name, "description": about, "links": [], "updated": ""}
                for alias, name, about in EXTENSIONS
            ]
        }
    )
