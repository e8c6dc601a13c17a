"""``nefos network``: the operator's public networks and their address ranges.

Users make their private networks through the API; public networks, floating IP pools
and their ranges are the operator's, made here through the same service as the API's
administrators (spec §4.1). Networks made here belong to the operator (``operator``).
"""

from __future__ import annotations

import ipaddress
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from nefos.cli.common import ConfigFile, DataDir, fail, out, with_engines
from nefos.core import errors
from nefos.network.models import Network
from nefos.network.service import Caller, NetworkService
from nefos.network.subnets import ranges_of
from nefos.server.engines import Engines

network_app = typer.Typer(
    help="Networks: public networks, floating IP pools and their address ranges.",
    no_args_is_help=True,
)
OPERATOR = Caller("operator", admin=True)
FLAVOR_NAMES = "CUSTOM, IP_LESS_ROUTED, MAC_FILTERED or PHYSICAL_VLAN"
JsonOption = Annotated[bool, typer.Option("--json", help="JSON output")]


async def _find(net: NetworkService, ref: str) -> Network:
    """A network by id, else by name (one only)."""
    try:
        return await net.network(OPERATOR, ref)
    except errors.NotFound:
        found = await net.networks(OPERATOR, {"name": [ref]})
        if len(found) == 1:
            return found[0]
        if found:
            raise errors.Conflict(f"{len(found)} networks are named {ref}: give its id") from None
        raise


async def _record(net: NetworkService, network: Network) -> dict[str, Any]:
    subnets = []
    for subnet in network.subnets:
        full = await net.subnet(OPERATOR, str(subnet.id))
        subnets.append(
            {
                "id": str(full.id),
                "cidr": full.cidr,
                "gateway": full.gateway,
                "ranges": ranges_of(full),
            }
        )
    return {
        "id": str(network.id),
        "name": network.name,
        "type": network.flavor,
        "public": network.public,
        "floating_ip_pool": network.floating_ip_pool,
        "link": network.link,
        "mac_prefix": network.mac_prefix,
        "owner": network.user_id,
        "subnets": subnets,
    }


def _holds(cidr: ipaddress.IPv4Network | ipaddress.IPv6Network, address: str) -> bool:
    try:
        return ipaddress.ip_address(address) in cidr
    except ValueError:
        raise fail(f"--range {address} is not an IP address") from None


@network_app.command("create")
def network_create(
    name: Annotated[str, typer.Argument(help="The network's name")],
    public: Annotated[
        bool, typer.Option("--public", help="A public network (every user sees it)")
    ] = False,
    subnet: Annotated[
        list[str] | None,
        typer.Option("--subnet", help="A subnet CIDR, IPv4 or IPv6 (/64, SLAAC); repeatable"),
    ] = None,
    gateway: Annotated[
        list[str] | None,
        typer.Option(
            "--gateway",
            help="The gateway of the subnet that holds it [default: each subnet's first address]",
        ),
    ] = None,
    ranges: Annotated[
        list[str] | None,
        typer.Option(
            "--range",
            help="An allocation range START-END of the IPv4 subnet that holds it; repeatable "
            "[default: every address but the network, broadcast and gateway ones]",
        ),
    ] = None,
    no_gateway: Annotated[
        bool, typer.Option("--no-gateway", help="Subnets without a gateway")
    ] = False,
    floating_ip_pool: Annotated[
        bool,
        typer.Option(
            "--floating-ip-pool", help="Users take floating IPs from it (implies --public)"
        ),
    ] = False,
    network_type: Annotated[
        str, typer.Option("--type", help=f"The network flavor: {FLAVOR_NAMES}")
    ] = "CUSTOM",
    as_json: JsonOption = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Create a network and its subnets, with the allocation ranges given by --range
    (else every address but the network, broadcast and gateway ones); add-range adds more."""
    cidrs = []
    for value in subnet or []:
        try:
            cidrs.append(ipaddress.ip_network(value, strict=True))
        except ValueError:
            raise fail(f"--subnet {value} is not a network CIDR such as 192.0.2.0/24") from None
    gateways = []
    for value in gateway or []:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise fail(f"--gateway {value} is not an IP address") from None
        if not any(address in cidr for cidr in cidrs):
            raise fail(f"--gateway {value} is in no --subnet")
        gateways.append(address)
    spans: list[tuple[str, str]] = []
    for value in ranges or []:
        start, _, end = value.partition("-")
        if not end:
            raise fail(f"--range {value} is START-END, e.g. 192.0.2.10-192.0.2.99")
        spans.append((start.strip(), end.strip()))
    if no_gateway and gateways:
        raise fail("--gateway and --no-gateway contradict each other")

    async def work(engines: Engines) -> dict[str, Any]:
        net = engines.network
        network = await net.create_network(
            OPERATOR, name, network_type, public=public, floating_ip_pool=floating_ip_pool
        )
        try:
            for cidr in cidrs:
                options: dict[str, Any] = {}
                mine = [g for g in gateways if g in cidr]
                if no_gateway:
                    options["gateway"] = None
                elif mine:
                    options["gateway"] = str(mine[0])
                held = [
                    {"start": a, "end": b}
                    for a, b in spans
                    if cidr.version == 4 and _holds(cidr, a)
                ]
                if held:
                    options["allocation_pools"] = held
                await net.create_subnet(OPERATOR, str(network.id), str(cidr), **options)
        except errors.NefosError:
            await net.delete_network(OPERATOR, str(network.id))  # nothing half-made
            raise
        return await _record(net, await net.network(OPERATOR, str(network.id)))

    record = with_engines(config, data_dir, work)
    if as_json:
        out.print_json(json.dumps(record))
        return
    out.print(f"network {record['id']} {record['name']} created")


@network_app.command("add-range")
def network_add_range(
    network: Annotated[str, typer.Argument(help="The network, by id or name")],
    start: Annotated[str, typer.Argument(help="First address of the range")],
    end: Annotated[str, typer.Argument(help="Last address of the range")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Add an allocation range to the network's IPv4 subnet that holds START (it may
    not overlap another range, nor hold the gateway)."""

    async def work(engines: Engines) -> str:
        found = await _find(engines.network, network)
        await engines.network.add_range(OPERATOR, str(found.id), start, end)
        return str(found.id)

    network_id = with_engines(config, data_dir, work)
    out.print(f"network {network_id}: range {start} - {end} added")


@network_app.command("list")
def network_list(
    as_json: JsonOption = False, data_dir: DataDir = None, config: ConfigFile = None
) -> None:
    """Every network, users' private ones included."""

    async def work(engines: Engines) -> list[dict[str, Any]]:
        net = engines.network
        return [await _record(net, n) for n in await net.networks(OPERATOR)]

    records = with_engines(config, data_dir, work)
    if as_json:
        out.print_json(json.dumps(records))
        return
    table = Table("id", "name", "type", "public", "floating IPs", "subnets", "ranges")
    for r in records:
        table.add_row(
            r["id"],
            r["name"],
            r["type"],
            "yes" if r["public"] else "no",
            "yes" if r["floating_ip_pool"] else "no",
            " ".join(s["cidr"] for s in r["subnets"]),
            " ".join(f"{x['start']}-{x['end']}" for s in r["subnets"] for x in s["ranges"]),
        )
    out.print(table)


@network_app.command("delete")
def network_delete(
    network: Annotated[str, typer.Argument(help="The network, by id or name")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Delete a network with its subnets; refused while a port or floating IP is on it."""

    async def work(engines: Engines) -> str:
        found = await _find(engines.network, network)
        await engines.network.delete_network(OPERATOR, str(found.id))
        return str(found.id)

    out.print(f"network {with_engines(config, data_dir, work)} deleted")
