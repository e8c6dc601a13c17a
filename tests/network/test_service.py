"""The network service: flavors, rights, pools under concurrency, quotas, bad input."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from nefos.core import errors
from nefos.network.models import Network, Port
from nefos.network.service import Caller, NetworkService
from nefos.server.engines import Engines
from tests.network.conftest import holding


async def public_net(net: NetworkService, root: Caller, cidr: str = "192.0.2.0/24", **kw) -> str:
    network = await net.create_network(root, "public", "CUSTOM", public=True, **kw)
    await net.create_subnet(root, str(network.id), cidr)
    return str(network.id)


async def test_users_create_private_networks_of_enabled_flavors(net, people, engines: Engines):
    alice = people["alice"][0]
    network = await net.create_network(alice, "lan")
    assert (network.flavor, network.mode, network.link) == ("MAC_FILTERED", "bridged", "prv0")
    assert network.mac_prefix == "aa:00:1" and not network.public
    other = await net.create_network(alice, "lan2", "MAC_FILTERED")
    assert other.mac_prefix == "aa:00:2"  # each private network its own prefix
    assert await holding(engines, alice.user, "cyclades.network.private") == (2, 2)
    with pytest.raises(errors.PermissionDenied, match="not enabled"):
        await net.create_network(alice, "vlan", "PHYSICAL_VLAN")
    with pytest.raises(errors.PermissionDenied, match="administrators"):
        await net.create_network(alice, "pub", "CUSTOM", public=True)
    with pytest.raises(errors.InvalidInput, match="Invalid network type"):
        await net.create_network(alice, "x", "ETHERNET")
    await net.delete_network(alice, str(network.id))
    assert await holding(engines, alice.user, "cyclades.network.private") == (1, 1)
    again = await net.create_network(alice, "lan3")
    assert again.mac_prefix == "aa:00:1"  # the lowest free prefix, given back


async def test_private_network_quota_is_enforced(net, people, engines: Engines):
    alice = people["alice"][0]
    for index in range(5):
        await net.create_network(alice, f"n{index}")
    with pytest.raises(errors.OverQuota):
        await net.create_network(alice, "sixth")
    assert len(await net.networks(alice)) == 5


async def test_physical_vlan_bridges_come_from_the_pool(net, people):
    root = people["root"][0]
    await net.resize_shared_pool("bridge", 2)
    first = await net.create_network(root, "v1", "PHYSICAL_VLAN")
    second = await net.create_network(root, "v2", "PHYSICAL_VLAN")
    assert (first.link, second.link) == ("prv1", "prv2")
    with pytest.raises(errors.Conflict, match="bridges"):
        await net.create_network(root, "v3", "PHYSICAL_VLAN")
    with pytest.raises(errors.Conflict, match="in use"):
        await net.resize_shared_pool("bridge", 1)
    assert await net.resize_shared_pool("bridge", 3) == 2  # grown
    assert (await net.create_network(root, "v3", "PHYSICAL_VLAN")).link == "prv3"


async def test_rights_on_networks_ports_and_floating_ips(net, people):
    alice, bob, root = (people[n][0] for n in ("alice", "bob", "root"))
    lan = await net.create_network(alice, "lan")
    await net.create_subnet(alice, str(lan.id), "10.0.0.0/24")
    port = await net.create_port(alice, str(lan.id))
    pub = await public_net(net, root, floating_ip_pool=True)
    fip = await net.create_floating_ip(alice)
    # bob sees the public network only; alice's things do not exist for him
    assert [str(n.id) for n in await net.networks(bob)] == [pub]
    for call in (
        net.network(bob, str(lan.id)),
        net.port(bob, str(port.id)),
        net.floating_ip(bob, str(fip.id)),
        net.delete_network(bob, str(lan.id)),
        net.delete_port(bob, str(port.id)),
        net.delete_floating_ip(bob, str(fip.id)),
        net.create_port(bob, str(lan.id)),
        net.create_subnet(bob, str(lan.id), "10.1.0.0/24"),
        net.update_network(bob, str(lan.id), "mine"),
    ):
        with pytest.raises(errors.NotFound):
            await call
    assert await net.ports(bob) == [] and await net.floating_ips(bob) == []
    # a public network is seen, not changed
    with pytest.raises(errors.PermissionDenied):
        await net.update_network(bob, pub, "mine")
    with pytest.raises(errors.PermissionDenied):
        await net.delete_network(bob, pub)
    # a network shared to a project is seen by its members
    # (membership is the projects service's: here the project is set in the row)
    bob_in = Caller(bob.user, frozenset({"team"}))
    await net.reassign_network(alice, str(lan.id), alice.user, shared_to_project=True)
    async with net.db.transaction() as s:
        (await s.get(Network, lan.id)).project = "team"
    assert str(lan.id) not in {str(n.id) for n in await net.networks(bob)}
    assert str(lan.id) in {str(n.id) for n in await net.networks(bob_in)}
    with pytest.raises(errors.PermissionDenied):
        await net.delete_network(bob_in, str(lan.id))
    assert len(await net.networks(root)) == 2  # administrators see everything


async def test_delete_a_network_with_ports_is_409(net, people):
    alice = people["alice"][0]
    lan = await net.create_network(alice, "lan")
    await net.create_subnet(alice, str(lan.id), "10.0.0.0/24")
    port = await net.create_port(alice, str(lan.id))
    with pytest.raises(errors.Conflict, match="still in use"):
        await net.delete_network(alice, str(lan.id))
    await net.delete_port(alice, str(port.id))
    await net.delete_network(alice, str(lan.id))
    assert await net.networks(alice) == []


async def test_a_user_may_not_delete_a_public_networks_port(net, people):
    alice, root = people["alice"][0], people["root"][0]
    pub = await public_net(net, root, floating_ip_pool=True)
    # an operator's port for alice (as a server's default NIC will be)
    port = await net.create_port(root, pub, project=alice.user)
    mine = await net.port(root, str(port.id))
    assert mine.addresses[0].address == "192.0.2.2"
    with pytest.raises(errors.PermissionDenied, match="floating IP"):
        await net.create_port(alice, pub)
    fip = await net.create_floating_ip(alice, pub)
    own = await net.create_port(alice, pub, fixed_ips=[{"ip_address": fip.address}])
    assert [a.address for a in own.addresses] == [fip.address]
    with pytest.raises(errors.Conflict, match="in use"):
        await net.delete_floating_ip(alice, str(fip.id))
    await net.delete_port(alice, str(own.id))  # holds her floating IP: she may
    assert (await net.floating_ip(alice, str(fip.id))).port_id is None
    # a port of the public network without a floating IP: 403 for a user
    async with net.db.transaction() as s:  # the server's NIC will be alice's own
        (await s.get(Port, port.id)).user_id = alice.user
    with pytest.raises(errors.PermissionDenied, match="public network"):
        await net.delete_port(alice, str(port.id))
    await net.delete_port(root, str(port.id))


async def test_subnet_bad_input(net, people):
    alice = people["alice"][0]
    lan = str((await net.create_network(alice, "lan")).id)
    await net.create_subnet(alice, lan, "10.0.0.0/24")
    with pytest.raises(errors.InvalidInput, match="overlaps"):
        await net.create_subnet(alice, lan, "10.0.0.128/25")
    with pytest.raises(errors.InvalidInput, match="not in subnet"):
        await net.create_subnet(alice, lan, "10.1.0.0/24", gateway="10.2.0.1")
    with pytest.raises(errors.InvalidInput, match="overlapping allocation pools"):
        await net.create_subnet(
            alice, lan, "10.3.0.0/24",
            allocation_pools=[{"start": "10.3.0.10", "end": "10.3.0.20"},
                              {"start": "10.3.0.20", "end": "10.3.0.30"}],
        )  # fmt: skip
    with pytest.raises(errors.InvalidInput, match="spans beyond"):
        await net.create_subnet(
            alice, lan, "10.4.0.0/24", allocation_pools=[{"start": "10.4.0.2", "end": "10.4.1.9"}]
        )
    with pytest.raises(errors.Conflict, match="conflicts with allocation pool"):
        await net.create_subnet(
            alice, lan, "10.5.0.0/24", gateway="10.5.0.5",
            allocation_pools=[{"start": "10.5.0.2", "end": "10.5.0.9"}],
        )  # fmt: skip
    with pytest.raises(errors.InvalidInput, match="not a valid network CIDR"):
        await net.create_subnet(alice, lan, "10.6.0.1/24")
    none = await net.create_subnet(alice, lan, "10.7.0.0/29", gateway=None)
    assert none.gateway is None and [p.size for p in none.pools] == [6]
    v6 = await net.create_subnet(alice, lan, "2001:db8::/64", ip_version=6)
    assert v6.slaac and v6.gateway == "2001:db8::1"
    with pytest.raises(errors.InvalidInput, match="SLAAC"):
        await net.create_subnet(alice, lan, "2001:db9::/64", ipv6_mode="dhcpv6-stateful")


async def test_fixed_ips_taken_out_of_range_and_slaac(net, people):
    alice = people["alice"][0]
    lan = str((await net.create_network(alice, "lan")).id)
    v4 = await net.create_subnet(
        alice, lan, "10.0.0.0/24", allocation_pools=[{"start": "10.0.0.10", "end": "10.0.0.20"}]
    )
    v6 = await net.create_subnet(alice, lan, "2001:db8::/64")
    port = await net.create_port(alice, lan)
    addresses = {a.ip_version: a.address for a in port.addresses}
    assert addresses[4] == "10.0.0.10"
    assert ipaddress.ip_address(addresses[6]) in ipaddress.ip_network("2001:db8::/64")
    # EUI-64 of its MAC: the address ends in the MAC's last two bytes (compared as bytes:
    # the text drops a leading zero, so a MAC ending 03:14 gives ...:314).
    mac_tail = bytes.fromhex(port.mac[-5:].replace(":", ""))
    assert ipaddress.ip_address(addresses[6]).packed[-2:] == mac_tail
    assert port.mac.startswith("aa:00:1")
    fixed = await net.create_port(alice, lan, fixed_ips=[{"ip_address": "10.0.0.15"}])
    assert [a.address for a in fixed.addresses] == ["10.0.0.15"]
    with pytest.raises(errors.Conflict, match="already in use"):
        await net.create_port(alice, lan, fixed_ips=[{"ip_address": "10.0.0.15"}])
    with pytest.raises(errors.InvalidInput, match="not in any allocation pool"):
        await net.create_port(alice, lan, fixed_ips=[{"ip_address": "10.0.0.30"}])
    with pytest.raises(errors.InvalidInput, match="not a valid IP for network"):
        await net.create_port(alice, lan, fixed_ips=[{"ip_address": "172.16.0.1"}])
    with pytest.raises(errors.InvalidInput, match="automatic addresses"):
        await net.create_port(
            alice, lan, fixed_ips=[{"subnet_id": str(v6.id), "ip_address": "2001:db8::5"}]
        )
    by_subnet = await net.create_port(alice, lan, fixed_ips=[{"subnet_id": str(v4.id)}])
    assert [a.address for a in by_subnet.addresses] == ["10.0.0.11"]
    await net.delete_port(alice, str(fixed.id))
    again = await net.create_port(alice, lan, fixed_ips=[{"ip_address": "10.0.0.15"}])
    assert [a.address for a in again.addresses] == ["10.0.0.15"]  # released, given again


async def test_pools_grow_and_shrink(net, people):
    alice = people["alice"][0]
    lan = str((await net.create_network(alice, "lan")).id)
    subnet = await net.create_subnet(
        alice, lan, "10.0.0.0/24", allocation_pools=[{"start": "10.0.0.10", "end": "10.0.0.11"}]
    )
    for _ in range(2):
        await net.create_port(alice, lan)
    with pytest.raises(errors.Conflict, match=f"network {lan}"):
        await net.create_port(alice, lan)
    grown = await net.update_subnet(
        alice, str(subnet.id), allocation_pools=[{"start": "10.0.0.10", "end": "10.0.0.12"}]
    )
    assert [p.size for p in grown.pools] == [3]
    port = await net.create_port(alice, lan)
    assert port.addresses[0].address == "10.0.0.12"
    with pytest.raises(errors.Conflict, match="in use"):
        await net.update_subnet(
            alice, str(subnet.id), allocation_pools=[{"start": "10.0.0.10", "end": "10.0.0.11"}]
        )
    await net.delete_port(alice, str(port.id))
    shrunk = await net.update_subnet(
        alice, str(subnet.id), allocation_pools=[{"start": "10.0.0.10", "end": "10.0.0.11"}]
    )
    assert [p.size for p in shrunk.pools] == [2]
    added = await net.add_range(alice, lan, "10.0.0.100", "10.0.0.101")
    assert [p.size for p in added.pools] == [2, 2]
    assert (await net.create_port(alice, lan)).addresses[0].address == "10.0.0.100"


async def test_200_concurrent_port_creates_never_share_an_address(net, people):
    """A /24 with 250 free addresses: 200 ports at once get 200 different addresses;
    the 51st of the next 60 finds the pool exhausted (409 naming the network)."""
    alice = people["alice"][0]
    lan = str((await net.create_network(alice, "lan")).id)
    await net.create_subnet(
        alice, lan, "10.9.0.0/24", allocation_pools=[{"start": "10.9.0.2", "end": "10.9.0.251"}]
    )
    ports = await asyncio.gather(*(net.create_port(alice, lan) for _ in range(200)))
    addresses = [p.addresses[0].address for p in ports]
    assert len(set(addresses)) == 200
    assert len({p.mac for p in ports}) == 200
    more = await asyncio.gather(
        *(net.create_port(alice, lan) for _ in range(60)), return_exceptions=True
    )
    made = [p for p in more if not isinstance(p, BaseException)]
    refused = [e for e in more if isinstance(e, BaseException)]
    assert len(made) == 50 and len(refused) == 10
    assert all(isinstance(e, errors.Conflict) and lan in e.message for e in refused)
    every = addresses + [p.addresses[0].address for p in made]
    assert sorted(every, key=ipaddress.ip_address) == [f"10.9.0.{n}" for n in range(2, 252)]


async def test_floating_ips_from_pools_with_quota(net, people, engines: Engines):
    alice, bob, root = (people[n][0] for n in ("alice", "bob", "root"))
    with pytest.raises(errors.Conflict):
        await net.create_floating_ip(alice)  # no pool at all
    small = await net.create_network(root, "small", "CUSTOM", floating_ip_pool=True)
    await net.create_subnet(
        root, str(small.id), "198.51.100.0/24",
        allocation_pools=[{"start": "198.51.100.5", "end": "198.51.100.5"}],
    )  # fmt: skip
    big = await public_net(net, root, floating_ip_pool=True)
    plain = await public_net(net, root, cidr="203.0.113.0/24")
    first = await net.create_floating_ip(alice)
    second = await net.create_floating_ip(alice)
    assert (first.address, second.address) == ("198.51.100.5", "192.0.2.2")  # the next pool
    assert await holding(engines, alice.user, "cyclades.floating_ip") == (2, 2)
    with pytest.raises(errors.OverQuota):
        await net.create_floating_ip(alice)
    with pytest.raises(errors.InvalidInput, match="not a floating IP pool"):
        await net.create_floating_ip(bob, plain)
    with pytest.raises(errors.Conflict, match=str(small.id)):
        await net.create_floating_ip(bob, str(small.id))
    with pytest.raises(errors.Conflict, match="already in use"):
        await net.create_floating_ip(bob, big, "192.0.2.2")
    await net.delete_floating_ip(alice, str(first.id))
    assert await holding(engines, alice.user, "cyclades.floating_ip") == (1, 1)
    assert (await net.create_floating_ip(bob, str(small.id))).address == "198.51.100.5"


async def test_reassign_within_the_callers_projects(net, people, engines: Engines):
    alice, bob = people["alice"][0], people["bob"][0]
    lan = await net.create_network(alice, "lan")
    with pytest.raises(errors.PermissionDenied, match="not a member"):
        await net.reassign_network(alice, str(lan.id), bob.user)
    moved = await net.reassign_network(alice, str(lan.id), alice.user, shared_to_project=True)
    assert moved.shared_to_project and moved.project == alice.user
    assert await holding(engines, alice.user, "cyclades.network.private") == (1, 1)
