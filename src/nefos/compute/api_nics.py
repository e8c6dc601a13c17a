"""Servers' NICs on the Compute API: ``networks`` in a create, ``addresses`` and
``attachments`` in the server document, ``/servers/<id>/ips`` and ``os-interface``.

    "networks": [{"uuid": <network>}, {"port": <port>}, {"uuid": ..., "fixed_ip": ...}]
    "networks": "auto" | "none"   (microversion 2.37's strings: the default, or no NIC)

``addresses`` is Nova's, keyed by network name (its id if it has none), each address
``{"version", "addr", "OS-EXT-IPS:type": "fixed" | "floating", "OS-EXT-IPS-MAC:mac_addr"}``;
``attachments`` is Cyclades's, one per NIC.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import Response

from nefos.compute.nova import caller, empty, json_body, member_projects, reply
from nefos.compute.service import ServerView
from nefos.core import errors
from nefos.network.nics import Nic, NicRequest


def parse_networks(value: Any) -> list[NicRequest] | None:
    """``networks`` of a create: None for the default public NIC, [] for none."""
    if value is None or value == "auto":
        return None
    if value == "none":
        return []
    if not isinstance(value, list):
        raise errors.InvalidInput('networks is a list of {"uuid"} or {"port"}, "auto" or "none"')
    found = []
    for item in value:
        if not isinstance(item, dict) or set(item) - {"uuid", "port", "fixed_ip", "tag"}:
            raise errors.InvalidInput('Each of networks is {"uuid", "fixed_ip"} or {"port"}')
        network, port, fixed = item.get("uuid"), item.get("port"), item.get("fixed_ip")
        for key, given in (("uuid", network), ("port", port), ("fixed_ip", fixed)):
            if given is not None and not isinstance(given, str):
                raise errors.InvalidInput(f"Invalid {key} in networks: text expected")
        if port is not None:
            if network is not None or fixed is not None:
                raise errors.InvalidInput("A port in networks takes no uuid or fixed_ip")
            found.append(NicRequest(port=port))
        elif network is not None:
            found.append(NicRequest(network=network, fixed_ip=fixed))
        else:
            raise errors.InvalidInput("Each of networks names a uuid or a port")
    return found or None  # the openstack CLI sends [] when no --network is given


def addresses(nics: tuple[Nic, ...] | list[Nic], extended: bool = True) -> dict[str, Any]:
    found: dict[str, list[dict[str, Any]]] = {}
    for nic in nics:
        items = found.setdefault(nic.network_name, [])
        for address in nic.addresses:
            item: dict[str, Any] = {"version": address.version, "addr": address.address}
            if extended:
                item["OS-EXT-IPS:type"] = "floating" if address.floating else "fixed"
                item["OS-EXT-IPS-MAC:mac_addr"] = nic.mac
            items.append(item)
    return found


def attachments(nics: tuple[Nic, ...]) -> list[dict[str, Any]]:
    """Cyclades's NICs: one per port, its first fixed IPv4 and IPv6 addresses."""
    found = []
    for nic in nics:
        fixed = [a for a in nic.addresses if not a.floating]
        ipv4 = next((a.address for a in nic.addresses if a.version == 4), None)
        ipv6 = next((a.address for a in fixed if a.version == 6), None)
        floating = any(a.floating for a in nic.addresses)
        found.append(
            {
                "id": nic.port_id,
                "network_id": nic.network_id,
                "mac_address": nic.mac,
                "ipv4": ipv4,
                "ipv6": ipv6,
                "OS-EXT-IPS:type": "floating" if floating else "fixed",
                "firewallProfile": nic.firewall,
            }
        )
    return found


def server_addresses(view: ServerView) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return addresses(view.nics), attachments(view.nics)


async def ips(request: Request, server_id: str) -> Response:
    credentials, compute = await caller(request)
    projects = await member_projects(request, credentials)
    view = await compute.server(str(credentials.user_id), server_id, projects)
    return reply({"addresses": addresses(view.nics, extended=False)})


async def ips_of_network(request: Request, server_id: str, network: str) -> Response:
    credentials, compute = await caller(request)
    projects = await member_projects(request, credentials)
    view = await compute.server(str(credentials.user_id), server_id, projects)
    found = addresses(view.nics, extended=False)
    if network not in found:
        raise errors.NotFound(f"Server {server_id} has no address on network {network}")
    return reply({network: found[network]})


def _attachment(nic: Nic) -> dict[str, Any]:
    return {
        "fixed_ips": [
            {"ip_address": a.address, "subnet_id": a.subnet_id}
            for a in nic.addresses
            if not a.floating
        ],
        "mac_addr": nic.mac,
        "net_id": nic.network_id,
        "port_id": nic.port_id,
        "port_state": nic.status,
    }


async def list_interfaces(request: Request, server_id: str) -> Response:
    credentials, compute = await caller(request)
    _, nics = await compute.interfaces(str(credentials.user_id), server_id)
    return reply({"interfaceAttachments": [_attachment(nic) for nic in nics]})


async def show_interface(request: Request, server_id: str, port_id: str) -> Response:
    credentials, compute = await caller(request)
    _, nics = await compute.interfaces(str(credentials.user_id), server_id)
    for nic in nics:
        if nic.port_id == port_id:
            return reply({"interfaceAttachment": _attachment(nic)})
    raise errors.NotFound(f"Port {port_id} is not attached to server {server_id}")


async def attach_interface(request: Request, server_id: str) -> Response:
    credentials, compute = await caller(request)
    body = await json_body(request)
    spec = body.get("interfaceAttachment")
    if not isinstance(spec, dict):
        raise errors.InvalidInput('The body is {"interfaceAttachment": {...}}')
    network, port = spec.get("net_id"), spec.get("port_id")
    fixed_ips = spec.get("fixed_ips") or []
    if (
        not isinstance(fixed_ips, list)
        or len(fixed_ips) > 1
        or not all(isinstance(f, dict) and isinstance(f.get("ip_address"), str) for f in fixed_ips)
    ):
        raise errors.InvalidInput('fixed_ips is one [{"ip_address": ...}]')
    if (network is None) == (port is None):
        raise errors.InvalidInput("interfaceAttachment takes net_id or port_id")
    if port is not None and fixed_ips:
        raise errors.InvalidInput("fixed_ips go with net_id, not port_id")
    for key, given in (("net_id", network), ("port_id", port)):
        if given is not None and not isinstance(given, str):
            raise errors.InvalidInput(f"Invalid {key}: text expected")
    nic = await compute.attach_interface(
        str(credentials.user_id),
        await member_projects(request, credentials),
        server_id,
        network_id=network,
        port_id=port,
        fixed_ip=fixed_ips[0]["ip_address"] if fixed_ips else None,
    )
    return reply({"interfaceAttachment": _attachment(nic)})


async def detach_interface(request: Request, server_id: str, port_id: str) -> Response:
    credentials, compute = await caller(request)
    await compute.detach_interface(str(credentials.user_id), server_id, port_id)
    return empty(202)
