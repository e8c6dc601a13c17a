"""The reconciler over networks, NICs and pools, on the embedded backend: its networks
made lazily and removed when unused, then broken behind nefos's back (a NIC gone, a NIC
nobody holds, an address leaked, one held but free, a network gone, one unknown); one
pass reports each, the next repairs each, and a third finds nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import uuid

from sqlalchemy import select

from nefos.backends.base import OP_NETWORK_REMOVE, instance_name, network_name, nic_name
from nefos.compute.backend_networks import REMOVAL_RETRIES
from nefos.compute.models import BackendNetwork
from nefos.compute.reconcile import reconcile_servers
from nefos.compute.service import Compute
from nefos.network import pools
from nefos.network.access import Caller
from nefos.network.models import IpAddress, Pool
from nefos.network.nics import NicRequest
from tests.backends.faulty import FaultyEmbeddedCluster
from tests.compute.conftest import until

NOW = dt.timedelta(0)


async def _states(compute: Compute) -> dict[str, str]:
    async with compute.db.session() as s:
        rows = await s.scalars(select(BackendNetwork))
        return {network_name(row.network_id): row.state for row in rows}


async def _pool(compute: Compute, subnet_id: uuid.UUID) -> tuple[Pool, pools.Bitmap]:
    async with compute.db.session() as s:
        pool = await s.scalar(select(Pool).where(Pool.subnet_id == subnet_id))
        assert pool is not None
        return pool, pools.Bitmap.of(pool)


async def _set_bit(compute: Compute, subnet_id: uuid.UUID, address: str, taken: bool) -> None:
    """Change the pool behind the services' back."""
    async with compute.db.transaction() as s:
        pool = await s.scalar(select(Pool).where(Pool.subnet_id == subnet_id))
        assert pool is not None
        bitmap = pools.Bitmap.of(pool)
        index = pools.index_of(pool, ipaddress.ip_address(address))
        bitmap.take(index) if taken else bitmap.put(index)
        bitmap.store(pool)


async def test_networks_nics_and_pools_repaired_and_reported(compute: Compute, world) -> None:
    user = world["user"]
    cluster = compute.cluster(await compute.backend("embedded"))
    assert isinstance(cluster, FaultyEmbeddedCluster)
    network = compute.network
    caller = Caller(user)
    lan = await network.create_network(caller, "lan")
    subnet = await network.create_subnet(caller, str(lan.id), "10.9.0.0/24", 4)
    other = await network.create_network(caller, "other")
    await network.create_subnet(caller, str(other.id), "10.8.0.0/24", 4)
    lan_name = network_name(lan.id)

    views = []
    for name in ("a", "b"):
        view, _ = await compute.create_server(
            user, name, world["image"], world["small"].id, networks=[NicRequest(str(lan.id))]
        )
        views.append(view)
    for view in views:
        await until(compute, user, view.server.id, "ACTIVE")
    a, b = (v.server.id for v in views)
    await cluster.idle()
    assert (await _states(compute))[lan_name] == "active"
    assert set(await cluster.networks()) == {lan_name}  # "other" is used by no server yet
    (a_nic,) = (await compute.server(user, a)).nics
    (b_nic,) = (await compute.server(user, b)).nics
    assert a_nic.status == b_nic.status == "ACTIVE"
    a_address = a_nic.addresses[0].address
    b_address = b_nic.addresses[0].address

    # Behind nefos's back: a's NIC goes, b gets a NIC no port holds, an address leaks,
    # b's address is marked free, and an unknown network appears.
    cluster.state.read()
    cluster.change_behind_back(instance_name(a), nics=[])
    stray = nic_name(uuid.uuid4())
    b_nics = cluster.state.instances[instance_name(b)]["nics"]
    cluster.change_behind_back(
        instance_name(b),
        nics=[*b_nics, {"name": stray, "network": lan_name, "mac": "aa:00:00:00:00:01"}],
    )
    await _set_bit(compute, subnet.id, "10.9.0.200", taken=True)
    await _set_bit(compute, subnet.id, b_address, taken=False)
    unknown = network_name(uuid.uuid4())
    cluster.state.read()
    cluster.state.networks[unknown] = {"subnet": "10.7.0.0/24", "tags": [], "groups": {}}
    cluster.state.write()

    report = await reconcile_servers(compute, fix=False, stale_after=NOW)
    problems = {(f.instance, f.problem) for f in report}
    assert problems == {
        (instance_name(a), f"NIC {nic_name(a_nic.port_id)} ({a_address}) is not on the instance"),
        (instance_name(b), f"NIC {stray} on the instance holds no port"),
        ("10.9.0.200", "address 10.9.0.200 leaked: given by its pool, held by no port"),
        (b_address, f"address {b_address} held, but free in its pool (given twice)"),
        (unknown, "network unknown to nefos"),
    }
    assert not any(f.fixed for f in report)

    fixed = await reconcile_servers(compute, fix=True, stale_after=NOW)
    assert {(f.instance, f.problem) for f in fixed} == problems
    assert all(f.fixed for f in fixed if f.instance != unknown)  # that one is only reported
    await cluster.idle()
    again = await reconcile_servers(compute, fix=False, stale_after=NOW)
    assert [(f.instance, f.problem) for f in again] == [(unknown, "network unknown to nefos")]

    # The repairs: a's port is gone with its address, b's stray NIC is off, the pool
    # holds exactly the addresses ports hold.
    assert (await compute.server(user, a)).nics == ()
    assert [n["name"] for n in cluster.state.instances[instance_name(b)]["nics"]] == [
        nic_name(b_nic.port_id)
    ]
    pool, bitmap = await _pool(compute, subnet.id)
    async with compute.db.session() as s:
        held = set(
            await s.scalars(select(IpAddress.address).where(IpAddress.subnet_id == subnet.id))
        )
    given = {pools.ip_at(pool, i) for i in range(bitmap.size) if bitmap.is_allocated(i)}
    assert given == held == {b_address}

    # The cluster loses the network: the row says removed, and the next server that
    # needs it makes it again.
    cluster.state.read()
    cluster.state.networks.pop(lan_name)
    cluster.state.write()
    found = await reconcile_servers(compute, fix=True, stale_after=NOW)
    assert {(f.instance, f.problem) for f in found} == {
        (lan_name, "network active in nefos, not on the backend"),
        (unknown, "network unknown to nefos"),
    }
    assert (await _states(compute))[lan_name] == "removed"
    view, _ = await compute.create_server(
        user, "c", world["image"], world["small"].id, networks=[NicRequest(str(lan.id))]
    )
    await until(compute, user, view.server.id, "ACTIVE")
    await cluster.idle()
    assert lan_name in await cluster.networks()
    assert (await _states(compute))[lan_name] == "active"

    # Unused networks leave the backend with the last server on them.
    for server_id in (b, view.server.id):
        await compute.delete_server(user, server_id)
        await until(compute, user, server_id, "DELETED")
    for _ in range(200):  # the removal follows the last delete's event, then its own
        await cluster.idle()
        if (await _states(compute))[lan_name] == "removed":
            break
        await asyncio.sleep(0.02)
    assert (await _states(compute))[lan_name] == "removed"
    assert set(await cluster.networks()) == {unknown}


async def test_a_failed_network_removal_is_tried_again(compute: Compute, world) -> None:
    """Ganeti fails a removal's disconnect when the node group's instances change under
    it (servers going together) and says to retry: nefos does, a bounded number of
    times, so the unused network still leaves the backend; one that keeps failing stays
    active, with Ganeti's reason, for the next release."""
    user = world["user"]
    cluster = compute.cluster(await compute.backend("embedded"))
    assert isinstance(cluster, FaultyEmbeddedCluster)
    caller = Caller(user)
    raced = "Instances in node group 'default' changed since locks were acquired; retry"
    for failures, final in ((2, "removed"), (REMOVAL_RETRIES + 1, "active")):
        lan = await compute.network.create_network(caller, f"lan-{failures}")
        await compute.network.create_subnet(caller, str(lan.id), f"10.6.{failures}.0/24", 4)
        view, _ = await compute.create_server(
            user, "a", world["image"], world["small"].id, networks=[NicRequest(str(lan.id))]
        )
        await until(compute, user, view.server.id, "ACTIVE")
        for _ in range(failures):
            cluster.fail_next(OP_NETWORK_REMOVE, raced)
        await compute.delete_server(user, view.server.id)
        await until(compute, user, view.server.id, "DELETED")
        name = network_name(lan.id)
        for _ in range(300):  # each try is a job and its event
            await cluster.idle()
            if (await _states(compute))[name] == final and not cluster.failures.get(
                OP_NETWORK_REMOVE
            ):
                break
            await asyncio.sleep(0.02)
        assert (await _states(compute))[name] == final
        assert (name in await cluster.networks()) == (final == "active")
        async with compute.db.session() as s:
            row = await s.get(BackendNetwork, (lan.id, (await compute.backend("embedded")).id))
            assert row is not None and row.logmsg == ("" if final == "removed" else raced)
