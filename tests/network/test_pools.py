"""The bitmaps every allocation goes through (spec §4.3), without a database."""

from __future__ import annotations

import ipaddress

import pytest

from nefos.core import errors
from nefos.network import pools


def test_lowest_free_value_first_and_never_twice():
    bitmap = pools.Bitmap.empty(10)
    bitmap.reserve(0)
    taken = []
    for _ in range(9):
        index = bitmap.lowest_free()
        assert index is not None
        bitmap.take(index)
        taken.append(index)
    assert taken == list(range(1, 10))
    assert bitmap.lowest_free() is None
    bitmap.put(4)
    assert bitmap.lowest_free() == 4
    assert bitmap.used() == 8


def test_grow_frees_new_values_and_shrink_stops_at_a_used_one():
    bitmap = pools.Bitmap.empty(4)
    for index in range(4):
        bitmap.take(index)
    bitmap.resize(6)
    assert bitmap.lowest_free() == 4
    bitmap.put(3)
    with pytest.raises(errors.Conflict, match="value 2 is in use"):
        bitmap.resize(2)
    bitmap.resize(3)  # 3 was given back: the pool may end before it
    assert bitmap.size == 3 and bitmap.lowest_free() is None


def test_a_stored_pool_reads_back_the_same():
    pool, bitmap = pools.new_pool(pools.BRIDGE, "prv", 13)
    bitmap.take(0)
    bitmap.reserve(5)
    bitmap.store(pool)
    again = pools.Bitmap.of(pool)
    assert (again.size, again.available, again.reserved) == (13, bitmap.available, bitmap.reserved)
    assert len(pool.available) == 2  # 13 bits, padded to bytes
    assert pools.bridge_value(pool, 0) == "prv1"


def test_ip_pool_reserves_the_gateway_and_maps_addresses():
    cidr = ipaddress.ip_network("10.0.0.0/29")
    span = pools.IpRange(ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("10.0.0.6"))
    pool = pools.new_ip_pool(cidr, span, ipaddress.ip_address("10.0.0.1"))
    assert pools.ip_range(pool) == span
    assert pools.allocate_ip([pool], "net") == "10.0.0.2"
    with pytest.raises(errors.Conflict):
        pools.take_ip([pool], ipaddress.ip_address("10.0.0.1"), "net")  # the gateway
    with pytest.raises(errors.InvalidInput):
        pools.take_ip([pool], ipaddress.ip_address("10.0.0.7"), "net")  # outside the range
    pools.take_ip([pool], ipaddress.ip_address("10.0.0.6"), "net")
    for expected in ("10.0.0.3", "10.0.0.4", "10.0.0.5"):
        assert pools.allocate_ip([pool], "net") == expected
    with pytest.raises(pools.Exhausted, match="network net"):
        pools.allocate_ip([pool], "net")


def test_mac_prefixes_skip_the_base_and_multicast_or_global_prefixes():
    pool = pools.new_mac_prefix_pool("aa:00:0", 65536)
    first = pools.allocate_value(pool, "MAC prefixes")
    assert pools.mac_prefix_value(pool, first) == "aa:00:1"
    assert pools.mac_prefix_value(pool, 0x1000) == "ab:00:0"  # multicast: reserved
    assert not pools.Bitmap.of(pool).is_free(0x1000)
    assert not pools.Bitmap.of(pool).is_free(0x2000)  # ac:00:0 is global
    assert pools.Bitmap.of(pool).is_free(0x4000)  # ae:00:0 is unicast and local
