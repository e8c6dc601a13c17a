"""Subnets: IPv4 with allocation pools (one bitmap pool per range), IPv6 by SLAAC.

The checks are Neutron's: a CIDR overlapping another subnet of the network, ranges
overlapping each other or leaving the subnet, a gateway outside the subnet are 400; a
gateway inside a range is 409. IPv6 addresses are derived from the port's MAC (SLAAC,
EUI-64), as Synnefo gives them, so an IPv6 subnet has no pool to exhaust; its ranges
are shown for what they are, the whole subnet.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import contains_eager, selectinload

from nefos.core import errors
from nefos.core.config import Settings
from nefos.core.db import Database, utcnow
from nefos.network import pools
from nefos.network.access import Caller, may_change, networks_seen, parse_id
from nefos.network.models import IpAddress, Network, Pool, Subnet
from nefos.network.networks import Networks, check_name, where

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
UNSET: Any = object()  # a field the request left out (None is "none", as for a gateway)

SUBNET_FILTERS = {
    "id": Subnet.id,
    "name": Subnet.name,
    "network_id": Subnet.network_id,
    "cidr": Subnet.cidr,
    "ip_version": Subnet.ip_version,
    "gateway_ip": Subnet.gateway,
}


def parse_address(value: object, what: str) -> IPAddress:
    try:
        return ipaddress.ip_address(str(value)) if isinstance(value, str) else _bad(what, value)
    except ValueError:
        return _bad(what, value)


def _bad(what: str, value: object) -> Any:
    raise errors.InvalidInput(f"Invalid input for {what}: {value!r} is not a valid IP address")


def parse_cidr(value: object, version: object) -> IPNetwork:
    if not isinstance(value, str):
        raise errors.InvalidInput("Invalid input for cidr: a CIDR such as 10.0.0.0/24")
    try:
        cidr = ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise errors.InvalidInput(
            f"Invalid input for cidr: {value!r} is not a valid network CIDR"
        ) from None
    if version not in (None, 4, 6) or (version is not None and version != cidr.version):
        raise errors.InvalidInput(f"Invalid input for ip_version: {value} is not IPv{version}")
    if cidr.version == 4 and cidr.prefixlen > 30:
        raise errors.InvalidInput("An IPv4 subnet needs a prefix of /30 or shorter")
    if cidr.version == 6 and cidr.prefixlen != 64:
        raise errors.InvalidInput("An IPv6 subnet (SLAAC) is a /64")
    return cidr


def first_host(cidr: IPNetwork) -> IPAddress:
    return cidr.network_address + 1


def last_host(cidr: IPNetwork) -> IPAddress:
    return cidr.broadcast_address - (1 if cidr.version == 4 else 0)


def eui64(cidr: IPNetwork, mac: str) -> IPAddress:
    """The SLAAC address of a MAC in a /64 (the U/L bit flipped, ff:fe in the middle)."""
    octets = [int(part, 16) for part in mac.split(":")]
    octets[0] ^= 0x02
    interface = bytes([*octets[:3], 0xFF, 0xFE, *octets[3:]])
    return cidr.network_address + int.from_bytes(interface, "big")


def default_ranges(cidr: IPNetwork, gateway: IPAddress | None) -> list[pools.IpRange]:
    """Every host address but the gateway (Synnefo's and Neutron's default)."""
    low, high = first_host(cidr), last_host(cidr)
    if gateway is None or not low <= gateway <= high:
        return [pools.IpRange(low, high)]
    found = []
    if gateway > low:
        found.append(pools.IpRange(low, gateway - 1))
    if gateway < high:
        found.append(pools.IpRange(gateway + 1, high))
    return found


def parse_ranges(value: object, cidr: IPNetwork) -> list[pools.IpRange]:
    if not isinstance(value, list):
        raise errors.InvalidInput("allocation_pools is a list of {start, end}")
    found = []
    for item in value:
        if not isinstance(item, dict) or set(item) != {"start", "end"}:
            raise errors.InvalidInput("allocation_pools is a list of {start, end}")
        start = parse_address(item["start"], "allocation_pools")
        end = parse_address(item["end"], "allocation_pools")
        if start.version != cidr.version or end.version != cidr.version or start > end:
            raise errors.InvalidInput(f"The allocation pool {start} - {end} is not valid")
        span = pools.IpRange(start, end)
        if not (first_host(cidr) <= start and end <= last_host(cidr)):
            raise errors.InvalidInput(
                f"The allocation pool {start} - {end} spans beyond the subnet cidr {cidr}"
            )
        found.append(span)
    found.sort(key=lambda r: r.start)
    for left, right in itertools.pairwise(found):
        if left.overlaps(right):
            raise errors.InvalidInput(
                f"Found overlapping allocation pools: {left.as_dict()} and {right.as_dict()}"
            )
    return found


def check_gateway(gateway: IPAddress | None, cidr: IPNetwork, ranges: list[pools.IpRange]) -> None:
    if gateway is None:
        return
    if gateway.version != cidr.version or gateway not in cidr:
        raise errors.InvalidInput(f"Gateway IP {gateway} is not in subnet {cidr}")
    if gateway == cidr.network_address or (cidr.version == 4 and gateway == cidr.broadcast_address):
        raise errors.InvalidInput(f"Gateway IP {gateway} is the network or broadcast address")
    for span in ranges:
        if gateway in span:
            raise errors.Conflict(
                f"Gateway ip {gateway} conflicts with allocation pool {span.as_dict()}"
            )


def ranges_of(subnet: Subnet) -> list[dict[str, str]]:
    """The allocation ranges as the API shows them."""
    if subnet.ip_version == 6:
        cidr = ipaddress.ip_network(subnet.cidr)
        return [pools.IpRange(first_host(cidr), last_host(cidr)).as_dict()]
    return [pools.ip_range(pool).as_dict() for pool in subnet.pools]


class Subnets:
    def __init__(self, db: Database, settings: Settings, networks: Networks):
        self.db = db
        self.settings = settings
        self.networks = networks

    def _check_extras(self, dns: object, routes: object) -> tuple[str, str]:
        conf = self.settings.network
        if not isinstance(dns, list) or len(dns) > conf.max_dns_nameservers:
            raise errors.InvalidInput(
                f"dns_nameservers is a list of at most {conf.max_dns_nameservers} addresses"
            )
        names = [str(parse_address(d, "dns_nameservers")) for d in dns]
        if not isinstance(routes, list) or len(routes) > conf.max_host_routes:
            raise errors.InvalidInput(
                f"host_routes is a list of at most {conf.max_host_routes} routes"
            )
        checked = []
        for route in routes:
            if not isinstance(route, dict) or set(route) != {"destination", "nexthop"}:
                raise errors.InvalidInput("host_routes is a list of {destination, nexthop}")
            try:
                destination = ipaddress.ip_network(str(route["destination"]), strict=True)
            except ValueError:
                raise errors.InvalidInput(f"Invalid host route {route!r}") from None
            nexthop = parse_address(route["nexthop"], "host_routes")
            checked.append({"destination": str(destination), "nexthop": str(nexthop)})
        return orjson.dumps(names).decode(), orjson.dumps(checked).decode()

    def _check_size(self, ranges: list[pools.IpRange]) -> None:
        limit = self.settings.network.max_pool_addresses
        for span in ranges:
            if span.size > limit:
                raise errors.InvalidInput(
                    f"An allocation pool holds at most {limit} addresses: "
                    f"{span.as_dict()} has {span.size}"
                )

    async def subnets(
        self, caller: Caller, filters: Mapping[str, Sequence[str]] | None = None
    ) -> list[Subnet]:
        query = (
            select(Subnet)
            .join(Network, Network.id == Subnet.network_id)
            .where(networks_seen(caller))
            .options(selectinload(Subnet.pools), contains_eager(Subnet.network))
        )
        query = where(query, SUBNET_FILTERS, filters or {}).order_by(Subnet.created, Subnet.id)
        async with self.db.session() as s:
            return list(await s.scalars(query))

    async def subnet(self, caller: Caller, subnet_id: str) -> Subnet:
        """The subnet if ``caller`` sees its network, with its pools and network loaded."""
        async with self.db.session() as s:
            return (await self._seen(s, caller, subnet_id))[0]

    async def _seen(
        self, s: AsyncSession, caller: Caller, subnet_id: str
    ) -> tuple[Subnet, Network]:
        key = parse_id(subnet_id, "Subnet")
        found = (
            await s.execute(
                select(Subnet, Network)
                .join(Network, Network.id == Subnet.network_id)
                .where(Subnet.id == key, networks_seen(caller))
                .options(selectinload(Subnet.pools), contains_eager(Subnet.network))
                .execution_options(populate_existing=True)
            )
        ).first()
        if found is None:
            raise errors.NotFound(f"Subnet {subnet_id} could not be found")
        return found[0], found[1]

    async def create_subnet(
        self,
        caller: Caller,
        network_id: str,
        cidr: object,
        ip_version: object = None,
        name: str = "",
        gateway: object = UNSET,
        allocation_pools: object = None,
        enable_dhcp: bool = True,
        dns_nameservers: object = (),
        host_routes: object = (),
        ipv6_mode: object = None,
    ) -> Subnet:
        check_name(name)
        subnet_cidr = parse_cidr(cidr, ip_version)
        if gateway is UNSET:
            gateway_ip: IPAddress | None = first_host(subnet_cidr)
        elif gateway is None:
            gateway_ip = None
        else:
            gateway_ip = parse_address(gateway, "gateway_ip")
        if subnet_cidr.version == 6:
            if ipv6_mode not in (None, "slaac"):
                raise errors.InvalidInput(
                    f"IPv6 address mode {ipv6_mode} is not supported: nefos gives IPv6 "
                    "addresses by SLAAC"
                )
            if allocation_pools is not None:
                raise errors.InvalidInput(
                    "IPv6 subnets take no allocation pools: addresses come by SLAAC"
                )
            ranges: list[pools.IpRange] = []
        elif allocation_pools is None:
            ranges = default_ranges(subnet_cidr, gateway_ip)
        else:
            ranges = parse_ranges(allocation_pools, subnet_cidr)
        check_gateway(gateway_ip, subnet_cidr, ranges)
        self._check_size(ranges)
        dns, routes = self._check_extras(list(dns_nameservers or []), list(host_routes or []))  # type: ignore[call-overload]
        async with self.db.transaction() as s:
            network = await self.networks.seen(s, caller, network_id, lock=True)
            may_change(caller, network.user_id, f"network {network_id}")
            for other in network.subnets:
                if ipaddress.ip_network(other.cidr).overlaps(subnet_cidr):
                    raise errors.InvalidInput(
                        f"Invalid input for operation: Requested subnet with cidr: "
                        f"{subnet_cidr} for network: {network.id} overlaps with another "
                        "subnet."
                    )
            subnet = Subnet(
                network_id=network.id,
                name=name,
                user_id=network.user_id,
                cidr=str(subnet_cidr),
                ip_version=subnet_cidr.version,
                gateway=None if gateway_ip is None else str(gateway_ip),
                dhcp=bool(enable_dhcp),
                slaac=subnet_cidr.version == 6,
                dns_nameservers=dns,
                host_routes=routes,
            )
            s.add(subnet)
            await s.flush()
            for span in ranges:
                pool = pools.new_ip_pool(subnet_cidr, span, gateway_ip)
                pool.subnet_id = subnet.id
                s.add(pool)
            network.updated = utcnow()
        return await self.subnet(caller, str(subnet.id))

    async def update_subnet(
        self,
        caller: Caller,
        subnet_id: str,
        name: object = UNSET,
        enable_dhcp: object = UNSET,
        dns_nameservers: object = UNSET,
        host_routes: object = UNSET,
        allocation_pools: object = UNSET,
    ) -> Subnet:
        """Rename, change DHCP and DNS, or the allocation ranges: a range kept by its
        start grows or shrinks (not below an address in use), a new one is added, one
        left out is removed if nobody holds an address of it."""
        async with self.db.transaction() as s:
            subnet, network = await self._seen(s, caller, subnet_id)
            may_change(caller, network.user_id, f"subnet {subnet_id}")
            if name is not UNSET:
                subnet.name = check_name(name)
            if enable_dhcp is not UNSET:
                subnet.dhcp = bool(enable_dhcp)
            if dns_nameservers is not UNSET or host_routes is not UNSET:
                dns, routes = self._check_extras(
                    orjson.loads(subnet.dns_nameservers)
                    if dns_nameservers is UNSET
                    else dns_nameservers,
                    orjson.loads(subnet.host_routes) if host_routes is UNSET else host_routes,
                )
                subnet.dns_nameservers, subnet.host_routes = dns, routes
            if allocation_pools is not UNSET:
                await self._set_ranges(s, subnet, allocation_pools)
            subnet.updated = utcnow()
        return await self.subnet(caller, subnet_id)

    async def _set_ranges(self, s: AsyncSession, subnet: Subnet, value: object) -> None:
        cidr = ipaddress.ip_network(subnet.cidr)
        if cidr.version == 6:
            raise errors.InvalidInput("IPv6 subnets take no allocation pools")
        ranges = parse_ranges(value, cidr)
        gateway = None if subnet.gateway is None else ipaddress.ip_address(subnet.gateway)
        check_gateway(gateway, cidr, ranges)
        self._check_size(ranges)
        current = await pools.locked(s, [p.id for p in subnet.pools])
        by_start = {pools.ip_range(p).start: p for p in current}
        wanted = {span.start: span for span in ranges}
        for start, pool in by_start.items():
            if start not in wanted:
                if pools.Bitmap.of(pool).used():
                    raise errors.Conflict(
                        f"The allocation pool {pools.ip_range(pool).as_dict()} has addresses in use"
                    )
                await s.delete(pool)
        for start, span in wanted.items():
            pool = by_start.get(start)
            if pool is None:
                fresh = pools.new_ip_pool(cidr, span, gateway)
                fresh.subnet_id = subnet.id
                s.add(fresh)
                continue
            bitmap = pools.Bitmap.of(pool)
            bitmap.resize(span.size)
            if gateway is not None and gateway in span:  # not possible: checked above
                bitmap.reserve(pools.index_of(pool, gateway))
            bitmap.store(pool)

    async def add_range(self, caller: Caller, network_id: str, start: str, end: str) -> Subnet:
        """A new allocation range on the network's IPv4 subnet that holds it (the
        operator's ``nefos network add-range``)."""
        first = parse_address(start, "start")
        network = await self.networks.network(caller, network_id)
        for subnet in network.subnets:
            cidr = ipaddress.ip_network(subnet.cidr)
            if subnet.ip_version == 4 and first in cidr:
                current = await self.subnet(caller, str(subnet.id))
                ranges = [pools.ip_range(p).as_dict() for p in current.pools]
                return await self.update_subnet(
                    caller,
                    str(subnet.id),
                    allocation_pools=[*ranges, {"start": start, "end": end}],
                )
        raise errors.InvalidInput(f"No IPv4 subnet of network {network_id} holds {start}")

    async def delete_subnet(self, caller: Caller, subnet_id: str) -> None:
        """409 while any address of it is held (by a port or as a floating IP)."""
        async with self.db.transaction() as s:
            subnet, network = await self._seen(s, caller, subnet_id)
            may_change(caller, network.user_id, f"subnet {subnet_id}")
            held = await s.scalar(
                select(IpAddress.id).where(IpAddress.subnet_id == subnet.id).limit(1)
            )
            if held is not None:
                raise errors.Conflict(
                    f"Unable to complete operation on subnet {subnet_id}: one or more ports "
                    "have an IP allocation from this subnet."
                )
            await pools.locked(s, [p.id for p in subnet.pools])
            for pool in list(subnet.pools):
                await s.delete(pool)
            await s.delete(subnet)


async def ip_pools(s: AsyncSession, subnet_ids: Sequence[object]) -> dict[object, list[Pool]]:
    """The locked pools of these subnets, by subnet."""
    rows = await s.scalars(select(Pool.id).where(Pool.subnet_id.in_(list(subnet_ids))))
    found: dict[object, list[Pool]] = {key: [] for key in subnet_ids}
    for pool in await pools.locked(s, list(rows)):
        found[pool.subnet_id].append(pool)
    for key in found:
        found[key].sort(key=lambda p: p.offset)
    return found
