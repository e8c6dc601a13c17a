"""``nefos network``: the operator's public networks, their ranges, and a floating IP
taken from them through the service as a user would."""

from __future__ import annotations

import json

from nefos.core.config import Settings
from nefos.server.engines import Engines
from tests.conftest import invoke_nefos, run_nefos


async def test_create_add_range_list_delete(settings: Settings, engines: Engines, people):
    created = await run_nefos(
        settings, "network", "create", "public", "--public", "--subnet", "192.0.2.0/28",
        "--gateway", "192.0.2.1", "--subnet", "2001:db8::/64", "--floating-ip-pool", "--json",
    )  # fmt: skip
    record = json.loads(created.stdout)
    assert record["public"] and record["floating_ip_pool"] and record["type"] == "CUSTOM"
    v4 = next(s for s in record["subnets"] if ":" not in s["cidr"])
    assert v4["gateway"] == "192.0.2.1"
    assert v4["ranges"] == [{"start": "192.0.2.2", "end": "192.0.2.14"}]
    added = await invoke_nefos(
        settings, "network", "add-range", "public", "192.0.2.16", "192.0.2.20", check=False
    )
    assert added.returncode == 1 and "No IPv4 subnet" in added.stderr  # outside the /28
    await invoke_nefos(settings, "network", "delete", "public")
    await invoke_nefos(
        settings, "network", "create", "public", "--public", "--subnet", "192.0.2.0/24",
        "--gateway", "192.0.2.1", "--floating-ip-pool", "--range", "192.0.2.10-192.0.2.20",
    )  # fmt: skip
    await invoke_nefos(settings, "network", "add-range", "public", "192.0.2.100", "192.0.2.100")
    listed = json.loads((await invoke_nefos(settings, "network", "list", "--json")).stdout)
    assert [r["name"] for r in listed] == ["public"]
    assert {"start": "192.0.2.100", "end": "192.0.2.100"} in listed[0]["subnets"][0]["ranges"]
    fip = await engines.network.create_floating_ip(people["alice"][0])
    assert fip.address == "192.0.2.10"
    busy = await invoke_nefos(settings, "network", "delete", "public", check=False)
    assert busy.returncode == 1 and "still in use" in busy.stderr
    bad = await invoke_nefos(
        settings, "network", "create", "x", "--public", "--subnet", "10.0.0.0/24",
        "--gateway", "10.9.0.1", check=False,
    )  # fmt: skip
    assert bad.returncode == 1 and "in no --subnet" in bad.stderr
    gateway_out = await invoke_nefos(
        settings, "network", "create", "y", "--subnet", "10.0.0.0/24", "--type", "ETHERNET",
        check=False,
    )  # fmt: skip
    assert gateway_out.returncode == 1 and "Invalid network type" in gateway_out.stderr
    names = json.loads((await invoke_nefos(settings, "network", "list", "--json")).stdout)
    assert [r["name"] for r in names] == ["public"]  # nothing half-made


async def test_a_project_names_its_default_network(settings: Settings, engines: Engines, people):
    """`nefos project default-network`: the operator's setting that servers of a
    project created without networks follow (tests/compute/test_nics.py has the
    servers); only a public network, only an existing project."""
    alice = people["alice"][0].user  # her system project
    await invoke_nefos(
        settings, "network", "create", "campus", "--public", "--subnet", "198.51.100.0/28",
        "--gateway", "198.51.100.1",
    )  # fmt: skip
    shown = await invoke_nefos(settings, "project", "default-network", alice)
    assert "the deployment's default network" in shown.stdout
    named = await invoke_nefos(settings, "project", "default-network", alice, "campus")
    campus = await engines.network.project_network(alice)
    assert campus is not None and campus.name == "campus" and str(campus.id) in named.stdout
    again = await invoke_nefos(settings, "project", "default-network", alice)
    assert str(campus.id) in again.stdout
    private = await engines.network.create_network(people["alice"][0], "mine", "MAC_FILTERED")
    for ref in (str(private.id), "nowhere"):
        refused = await invoke_nefos(
            settings, "project", "default-network", alice, ref, check=False
        )
        assert refused.returncode == 1 and "could not be found" in refused.stderr, ref
    unknown = await invoke_nefos(
        settings, "project", "default-network", "0" * 32, "campus", check=False
    )
    assert unknown.returncode == 1
    assert (await engines.network.project_network("0" * 32)) is None
    both = await invoke_nefos(
        settings, "project", "default-network", alice, "campus", "--clear", check=False
    )
    assert both.returncode == 1
    await invoke_nefos(settings, "project", "default-network", alice, "--clear")
    assert await engines.network.project_network(alice) is None
    await invoke_nefos(settings, "project", "default-network", alice, "campus")
    await invoke_nefos(settings, "network", "delete", "campus")  # the setting goes with it
    assert await engines.network.project_network(alice) is None
