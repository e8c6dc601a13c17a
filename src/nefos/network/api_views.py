"""The Network API's documents: networks, subnets, ports, floating IPs, security groups
as Neutron writes them, with Cyclades's extras where the dialect asks for them."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request

from nefos.core.dialects import public_path
from nefos.network.dialect import (
    FLOATING_IP_EXTRAS,
    NETWORK_EXTRAS,
    PORT_EXTRAS,
    SUBNET_EXTRAS,
)
from nefos.network.dialect import TABLE as DIALECT
from nefos.network.models import IpAddress, Network, Port, Subnet
from nefos.network.security_groups import Rule, SecurityGroup, port_group
from nefos.network.subnets import ranges_of

PREFIX = "/network/v2.0"


@dataclass(frozen=True)
class Wire:
    """How one request's answers are written, read from the dialect table once."""

    base: str
    mtu: int
    network_drops: frozenset[str]
    subnet_drops: frozenset[str]
    port_drops: frozenset[str]
    floating_drops: frozenset[str]
    subnet_key: str
    no_device: str | None
    fields: tuple[str, ...]  # Neutron's ?fields=: only these (none: all)

    def shape(self, item: dict[str, Any], drops: frozenset[str]) -> dict[str, Any]:
        for key in drops:
            item.pop(key, None)
        if self.fields:
            return {k: v for k, v in item.items() if k in self.fields}
        return item


def wire(request: Request) -> Wire:
    settings = request.app.state.settings
    return Wire(
        base=settings.base_url + public_path(request, PREFIX),
        mtu=settings.network.mtu,
        network_drops=NETWORK_EXTRAS - DIALECT.pick(request, "network_extras"),
        subnet_drops=SUBNET_EXTRAS - DIALECT.pick(request, "subnet_extras"),
        port_drops=PORT_EXTRAS - DIALECT.pick(request, "port_extras"),
        floating_drops=FLOATING_IP_EXTRAS - DIALECT.pick(request, "floating_ip_extras"),
        subnet_key=DIALECT.pick(request, "fixed_ip_subnet_key"),
        no_device=DIALECT.pick(request, "no_device_id"),
        fields=tuple(request.query_params.getlist("fields")),
    )


def _time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")[:-6] + "Z"


def _links(w: Wire, kind: str, item_id: object) -> list[dict[str, str]]:
    href = f"{w.base}/{kind}/{item_id}"
    return [{"rel": "self", "href": href}, {"rel": "bookmark", "href": href}]


def network(w: Wire, net: Network) -> dict[str, Any]:
    return w.shape(
        {
            "id": str(net.id),
            "name": net.name,
            "status": net.state,
            "admin_state_up": True,
            "shared": net.public,
            "tenant_id": net.project,
            "project_id": net.project,
            "router:external": net.external_router,
            "subnets": [str(sub.id) for sub in net.subnets],
            "mtu": w.mtu,
            "description": "",
            "port_security_enabled": False,
            "availability_zones": [],
            "availability_zone_hints": [],
            "tags": [],
            "created_at": _time(net.created),
            "updated_at": _time(net.updated),
            "type": net.flavor,
            "public": net.public,
            "user_id": net.user_id,
            "SNF:floating_ip_pool": net.floating_ip_pool,
            "shared_to_project": net.shared_to_project,
            "links": _links(w, "networks", net.id),
        },
        w.network_drops,
    )


def subnet(w: Wire, sub: Subnet) -> dict[str, Any]:
    """A subnet read with its network (``Subnet.network``), whose project it shows."""
    net = sub.network
    v6 = sub.ip_version == 6
    return w.shape(
        {
            "id": str(sub.id),
            "name": sub.name,
            "network_id": str(sub.network_id),
            "tenant_id": net.project,
            "project_id": net.project,
            "cidr": sub.cidr,
            "ip_version": sub.ip_version,
            "gateway_ip": sub.gateway,
            "enable_dhcp": sub.dhcp,
            "dns_nameservers": orjson.loads(sub.dns_nameservers),
            "host_routes": orjson.loads(sub.host_routes),
            "allocation_pools": ranges_of(sub),
            "ipv6_address_mode": "slaac" if v6 else None,
            "ipv6_ra_mode": "slaac" if v6 else None,
            "subnetpool_id": None,
            "service_types": [],
            "description": "",
            "tags": [],
            "created_at": _time(sub.created),
            "updated_at": _time(sub.updated),
            "user_id": sub.user_id,
            "public": net.public,
            "enable_slaac": sub.slaac,
            "links": _links(w, "subnets", sub.id),
        },
        w.subnet_drops | ({"enable_slaac"} if not v6 else frozenset()),
    )


def port(w: Wire, item: Port) -> dict[str, Any]:
    return w.shape(
        {
            "id": str(item.id),
            "name": item.name,
            "network_id": str(item.network_id),
            "tenant_id": item.project,
            "project_id": item.project,
            "mac_address": item.mac,
            "fixed_ips": [
                {w.subnet_key: str(a.subnet_id), "ip_address": a.address}
                for a in sorted(item.addresses, key=lambda a: (a.ip_version, a.created))
            ],
            "device_id": item.device_id if item.device_id else w.no_device,
            "device_owner": item.device_owner,
            "status": item.status,
            "admin_state_up": True,
            "security_groups": [port_group(item.project, item.firewall_profile)],
            "allowed_address_pairs": [],
            "extra_dhcp_opts": [],
            "binding:vnic_type": "normal",
            "port_security_enabled": False,
            "description": "",
            "tags": [],
            "created_at": _time(item.created),
            "updated_at": _time(item.updated),
            "user_id": item.user_id,
            "links": _links(w, "ports", item.id),
        },
        w.port_drops,
    )


def floating_ip(w: Wire, item: IpAddress) -> dict[str, Any]:
    attached = item.port
    return w.shape(
        {
            "id": str(item.id),
            "floating_ip_address": item.address,
            "floating_network_id": str(item.network_id),
            "fixed_ip_address": None,
            "port_id": None if attached is None else str(attached.id),
            "router_id": None,
            "status": "DOWN" if attached is None else "ACTIVE",
            "tenant_id": item.project,
            "project_id": item.project,
            "description": "",
            "tags": [],
            "created_at": _time(item.created),
            "updated_at": _time(item.updated),
            "user_id": item.user_id,
            "instance_id": None if attached is None else attached.device_id,
            "shared_to_project": item.shared_to_project,
        },
        w.floating_drops,
    )


def security_group_rule(w: Wire, group: SecurityGroup, rule: Rule) -> dict[str, Any]:
    return w.shape(
        {
            "id": rule.id,
            "security_group_id": group.id,
            "direction": rule.direction,
            "ethertype": rule.ethertype,
            "protocol": rule.protocol,
            "port_range_min": rule.port,
            "port_range_max": rule.port,
            "remote_ip_prefix": str(
                ipaddress.ip_network("0.0.0.0/0" if rule.ethertype == "IPv4" else "::/0")
            ),
            "remote_group_id": None,
            "tenant_id": group.project,
            "project_id": group.project,
            "description": "",
        },
        frozenset(),
    )


def security_group(w: Wire, group: SecurityGroup) -> dict[str, Any]:
    every_field = Wire(w.base, w.mtu, *(frozenset(),) * 4, w.subnet_key, w.no_device, ())
    return w.shape(
        {
            "id": group.id,
            "name": group.name,
            "description": group.description,
            "tenant_id": group.project,
            "project_id": group.project,
            "stateful": True,
            "tags": [],
            "security_group_rules": [
                security_group_rule(every_field, group, rule) for rule in group.rules
            ],
        },
        frozenset(),
    )
