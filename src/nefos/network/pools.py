"""Pools of values (spec §4.3): IPs per allocation range, MAC prefixes, bridges.

Why bitmaps and not a row per address (NetBox's way): allocation must take the *lowest*
free value, and must also reserve values nobody holds (the gateway, a subnet's network
and broadcast addresses, multicast MAC prefixes). With one row per pool the lowest free
value is one big-integer operation on the locked row, a /16 (65,536 addresses, 8 KiB
per map) included; with a row per address it is a gap search over every used row, and
the reserved values need rows of their own. The price is one lock per pool: two
allocations from one range take turns, which is what "lowest free value" means anyway.
The unique key on addresses (``network_ip_addresses``) still refuses a twin.

The row is locked ``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite the statement has
no lock of its own, and the writer's transaction (``Database.transaction``: one writer
at a time in the process, ``BEGIN IMMEDIATE`` between processes) serialises instead.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nefos.core import errors
from nefos.network.models import Pool

IP, MAC_PREFIX, BRIDGE = "ip", "mac_prefix", "bridge"


class Exhausted(errors.Conflict):
    """No free value left in the pools asked."""


def _ones(size: int) -> bytes:
    """A map of ``size`` 1 bits (the padding bits of the last byte are 0: never free)."""
    return ((1 << size) - 1).to_bytes((size + 7) // 8, "little")


def _bits(data: bytes) -> int:
    return int.from_bytes(data, "little")


def _pack(value: int, size: int) -> bytes:
    return (value & ((1 << size) - 1)).to_bytes((size + 7) // 8, "little")


@dataclass(repr=False)
class Bitmap:
    """One pool's two maps as integers, with the pool's rules; written back by
    :meth:`store`. Pure: no database."""

    size: int
    available: int
    reserved: int

    @classmethod
    def of(cls, pool: Pool) -> Bitmap:
        return cls(pool.size, _bits(pool.available), _bits(pool.reserved))

    @classmethod
    def empty(cls, size: int) -> Bitmap:
        return cls(size, (1 << size) - 1, (1 << size) - 1)

    def store(self, pool: Pool) -> None:
        pool.size = self.size
        pool.available = _pack(self.available, self.size)
        pool.reserved = _pack(self.reserved, self.size)

    def _check(self, index: int) -> None:
        if not 0 <= index < self.size:
            raise errors.InvalidInput(f"Value {index} is outside the pool (size {self.size})")

    def is_free(self, index: int) -> bool:
        self._check(index)
        return bool((self.available & self.reserved) >> index & 1)

    def is_allocated(self, index: int) -> bool:
        self._check(index)
        return not self.available >> index & 1

    def lowest_free(self) -> int | None:
        free = self.available & self.reserved
        if not free:
            return None
        return (free & -free).bit_length() - 1

    def take(self, index: int) -> None:
        self._check(index)
        self.available &= ~(1 << index)

    def put(self, index: int) -> None:
        self._check(index)
        self.available |= 1 << index

    def reserve(self, index: int) -> None:
        self._check(index)
        self.reserved &= ~(1 << index)

    def unreserve(self, index: int) -> None:
        self._check(index)
        self.reserved |= 1 << index

    def used(self) -> int:
        """How many values are allocated (reserved values are not)."""
        return self.size - (self.available & ((1 << self.size) - 1)).bit_count()

    def resize(self, size: int) -> None:
        """Grow (new values free) or shrink (only over values not allocated)."""
        if size < 1:
            raise errors.InvalidInput("A pool holds at least one value")
        if size < self.size:
            cut = ((1 << self.size) - 1) & ~((1 << size) - 1)
            taken = cut & ~self.available
            if taken:
                lowest = (taken & -taken).bit_length() - 1
                raise errors.Conflict(
                    f"Cannot shrink the pool to {size} values: value {lowest} is in use"
                )
        else:
            fresh = ((1 << size) - 1) & ~((1 << self.size) - 1)
            self.available |= fresh
            self.reserved |= fresh
        mask = (1 << size) - 1
        self.available &= mask
        self.reserved &= mask
        self.size = size


def new_pool(kind: str, base: str, size: int, offset: int = 0) -> tuple[Pool, Bitmap]:
    bitmap = Bitmap.empty(size)
    pool = Pool(kind=kind, base=base, offset=offset, size=size, available=b"", reserved=b"")
    bitmap.store(pool)
    return pool, bitmap


async def locked(s: AsyncSession, pool_ids: Iterable[int]) -> list[Pool]:
    """The pools, locked for this transaction, in id order (allocations lock several
    pools in one order: no deadlock between them)."""
    ids = sorted(set(pool_ids))
    if not ids:
        return []
    query = select(Pool).where(Pool.id.in_(ids)).order_by(Pool.id).with_for_update()
    # populate_existing: the row as it is now, not as this session saw it unlocked
    return list(await s.scalars(query.execution_options(populate_existing=True)))


# -- IP pools: one per allocation range of a subnet ---------------------------------------


@dataclass(frozen=True)
class IpRange:
    start: ipaddress.IPv4Address | ipaddress.IPv6Address
    end: ipaddress.IPv4Address | ipaddress.IPv6Address

    @property
    def size(self) -> int:
        return int(self.end) - int(self.start) + 1

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return False
        return address.version == self.start.version and self.start <= address <= self.end

    def overlaps(self, other: IpRange) -> bool:
        return self.start <= other.end and other.start <= self.end

    def as_dict(self) -> dict[str, str]:
        return {"start": str(self.start), "end": str(self.end)}


def ip_range(pool: Pool) -> IpRange:
    network = ipaddress.ip_network(pool.base)
    start = network.network_address + pool.offset
    return IpRange(start, start + (pool.size - 1))


def new_ip_pool(
    cidr: ipaddress.IPv4Network | ipaddress.IPv6Network,
    span: IpRange,
    gateway: ipaddress.IPv4Address | ipaddress.IPv6Address | None,
) -> Pool:
    """A pool over ``span`` with the subnet's network and broadcast addresses and its
    gateway reserved, where they fall inside it."""
    pool, bitmap = new_pool(IP, str(cidr), span.size, int(span.start) - int(cidr.network_address))
    kept = {cidr.network_address, gateway}
    if cidr.version == 4:
        kept.add(cidr.broadcast_address)
    for address in kept:
        if address in span:
            bitmap.reserve(int(address) - int(span.start))
    bitmap.store(pool)
    return pool


def ip_at(pool: Pool, index: int) -> str:
    return str(ip_range(pool).start + index)


def index_of(pool: Pool, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    return int(address) - int(ip_range(pool).start)


def allocate_ip(pools: list[Pool], where: str) -> str:
    """The lowest free address of the first pool (in order) that has one; the pools
    must be locked. ``where`` names the network in the 409 when none is left."""
    for pool in pools:
        bitmap = Bitmap.of(pool)
        index = bitmap.lowest_free()
        if index is not None:
            bitmap.take(index)
            bitmap.store(pool)
            return ip_at(pool, index)
    raise Exhausted(f"No more IP addresses available on network {where}")


def take_ip(
    pools: list[Pool], address: ipaddress.IPv4Address | ipaddress.IPv6Address, where: str
) -> None:
    """Allocate this address: 409 if someone holds it (or it is reserved), 400 if it is
    in no allocation range of the subnet."""
    for pool in pools:
        if address in ip_range(pool):
            bitmap = Bitmap.of(pool)
            index = index_of(pool, address)
            if not bitmap.is_free(index):
                raise errors.Conflict(f"IP address {address} is already in use on network {where}")
            bitmap.take(index)
            bitmap.store(pool)
            return
    raise errors.InvalidInput(
        f"IP address {address} is not in any allocation pool of network {where}"
    )


def release_ip(pools: list[Pool], address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    """Give an address back to the pool it came from (none: it was not pooled)."""
    for pool in pools:
        if address in ip_range(pool):
            bitmap = Bitmap.of(pool)
            bitmap.put(index_of(pool, address))
            bitmap.store(pool)
            return


# -- MAC prefixes and bridges: one pool each per deployment -------------------------------


def mac_prefix_value(pool: Pool, index: int) -> str:
    """The prefix at ``index``: ``base`` + index in as many hex digits as the base has,
    with colons every two digits (``aa:00:0`` + 1 = ``aa:00:1``)."""
    digits = pool.base.replace(":", "")
    value = f"{int(digits, 16) + index:0{len(digits)}x}"
    return ":".join(value[i : i + 2] for i in range(0, len(value), 2))


def mac_prefix_usable(prefix: str) -> bool:
    """A prefix for NICs must be unicast and locally administered (first octet: bit 0
    clear, bit 1 set)."""
    first = int(prefix.replace(":", "")[:2], 16)
    return first & 0b11 == 0b10


def new_mac_prefix_pool(base: str, size: int) -> Pool:
    """Index 0 (the base, public networks' prefix) and unusable prefixes reserved."""
    pool, bitmap = new_pool(MAC_PREFIX, base, size)
    for index in range(size):
        if index == 0 or not mac_prefix_usable(mac_prefix_value(pool, index)):
            bitmap.reserve(index)
    bitmap.store(pool)
    return pool


def bridge_value(pool: Pool, index: int) -> str:
    """``prv1`` for index 0: value = base + (index + 1)."""
    return f"{pool.base}{index + 1}"


def allocate_value(pool: Pool, what: str) -> int:
    bitmap = Bitmap.of(pool)
    index = bitmap.lowest_free()
    if index is None:
        raise Exhausted(f"No more {what} available")
    bitmap.take(index)
    bitmap.store(pool)
    return index


def release_value(pool: Pool, index: int) -> None:
    bitmap = Bitmap.of(pool)
    if 0 <= index < bitmap.size:  # a pool shrunk meanwhile cannot have lent it
        bitmap.put(index)
        bitmap.store(pool)
