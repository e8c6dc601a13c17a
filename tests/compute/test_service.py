"""Servers on the embedded backend through the effect and update paths, on both
databases and both buses: states move only on job events, quotas follow them."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from nefos.backends import base
from nefos.compute.service import Compute
from nefos.core import errors
from nefos.server.engines import Engines
from tests.backends.faulty import FaultyEmbeddedCluster
from tests.compute.conftest import until, usage

MiB = 1 << 20


async def test_lifecycle_moves_on_events(engines: Engines, compute: Compute, world):
    user = world["user"]
    view, password = await compute.create_server(
        user, "web", world["image"], world["small"].id, metadata={"role": "web"}
    )
    assert view.status == "BUILD" and view.task_state == "BUILDING"
    assert len(password) >= 10
    assert await usage(engines, user, "cyclades.vm") == (1, 1)  # accepted at once
    active = await until(compute, user, view.server.id, "ACTIVE")
    assert active.metadata == {"role": "web"}
    cluster = compute.cluster(await compute.backend("embedded"))
    assert isinstance(cluster, FaultyEmbeddedCluster)
    cluster.delay = 1.0  # slow enough for the checks while the job runs
    await compute.shutdown(user, view.server.id)
    assert (await compute.server(user, view.server.id)).task_state == "STOPPING"
    with pytest.raises(errors.InvalidInput):
        await compute.start(user, view.server.id)  # busy
    cluster.delay = 0.02
    await until(compute, user, view.server.id, "STOPPED")
    assert await usage(engines, user, "cyclades.cpu") == (0, 0)
    assert await usage(engines, user, "cyclades.total_cpu") == (1, 1)
    await compute.resize(user, view.server.id, world["big"].id)
    resized = await until(compute, user, view.server.id, "STOPPED")
    assert resized.flavor.id == world["big"].id
    assert await usage(engines, user, "cyclades.total_cpu") == (2, 2)
    await compute.start(user, view.server.id)
    await until(compute, user, view.server.id, "ACTIVE")
    assert await usage(engines, user, "cyclades.ram") == (1024 * MiB, 1024 * MiB)
    await compute.reboot(user, view.server.id, hard=True)
    await until(compute, user, view.server.id, "ACTIVE")
    with pytest.raises(errors.Conflict):
        await compute.start(user, view.server.id)  # already running
    await compute.delete_server(user, view.server.id)
    await until(compute, user, view.server.id, "DELETED")
    for resource in ("cyclades.vm", "cyclades.cpu", "cyclades.total_ram", "cyclades.disk"):
        assert await usage(engines, user, resource) == (0, 0), resource
    jobs = await compute.jobs(view.server.id)
    assert [j.opcode for j in jobs if j.status == "success"] == [
        base.OP_CREATE,
        base.OP_SHUTDOWN,
        base.OP_MODIFY,
        base.OP_STARTUP,
        base.OP_REBOOT,
        base.OP_REMOVE,
    ]


async def test_failed_build_ends_in_error_with_diagnostic(compute: Compute, world):
    cluster = compute.cluster(await compute.backend("embedded"))
    assert isinstance(cluster, FaultyEmbeddedCluster)
    cluster.fail_next(base.OP_CREATE, "No free memory on node1")
    view, _ = await compute.create_server(world["user"], "x", world["image"], world["small"].id)
    failed = await until(compute, world["user"], view.server.id, "ERROR")
    assert "No free memory" in failed.diagnostics[0].message
    with pytest.raises(errors.InvalidInput):
        await compute.start(world["user"], view.server.id)
    await compute.delete_server(world["user"], view.server.id)
    await until(compute, world["user"], view.server.id, "DELETED")


async def test_old_and_repeated_events_change_nothing(compute: Compute, world):
    user = world["user"]
    view, _ = await compute.create_server(user, "x", world["image"], world["small"].id)
    await until(compute, user, view.server.id, "ACTIVE")
    instance = base.instance_name(view.server.id)
    stale = {
        "type": "ganeti-op-status",
        "instance": instance,
        "operation": base.OP_SHUTDOWN,
        "status": "success",
        "jobId": 999,
        "cluster": "embedded",
        "event_time": [1, 0],  # long before the create finished
    }
    await compute.apply_event(stale)
    await compute.apply_event(stale)
    assert (await compute.server(user, view.server.id)).status == "ACTIVE"
    assert sum(j.job_id == 999 for j in await compute.jobs(view.server.id)) == 1


async def test_bad_requests(engines: Engines, compute: Compute, world):
    user = world["user"]
    other, _ = await engines.identity.create_user(f"o-{uuid.uuid4().hex[:6]}@example.org")
    with pytest.raises(errors.NotFound):
        await compute.create_server(user, "x", world["image"], 9999)
    with pytest.raises(errors.InvalidInput):
        await compute.create_server(user, "x", str(uuid.uuid4()), world["small"].id)
    with pytest.raises(errors.InvalidInput):
        await compute.create_server(str(other.id), "x", world["image"], world["small"].id)
    with pytest.raises(errors.InvalidInput):
        await compute.create_server(user, "", world["image"], world["small"].id)
    with pytest.raises(errors.InvalidInput, match="key_name"):
        await compute.create_server(
            user, "x", world["image"], world["small"].id, key_names=["nobody's key"]
        )
    with pytest.raises(errors.OverQuota):
        await compute.create_server(
            user, "x", world["image"], world["small"].id, metadata={str(i): "v" for i in range(11)}
        )
    cluster = compute.cluster(await compute.backend("embedded"))
    assert isinstance(cluster, FaultyEmbeddedCluster)
    cluster.delay = 1.0  # slow enough to act while it builds
    view, _ = await compute.create_server(user, "mine", world["image"], world["small"].id)
    with pytest.raises(errors.NotFound):
        await compute.server(str(other.id), view.server.id)
    with pytest.raises(errors.Conflict):
        await compute.shutdown(user, view.server.id)  # still building
    cluster.delay = 0.02
    await until(compute, user, view.server.id, "ACTIVE")


async def test_quota_allows_exactly_the_limit(engines: Engines, compute: Compute, world):
    user = world["user"]
    for resource, limit in (
        ("cyclades.vm", 60),
        ("cyclades.total_cpu", 100),
        ("cyclades.cpu", 100),
        ("cyclades.total_ram", 100 << 30),
        ("cyclades.ram", 100 << 30),
        ("cyclades.disk", 100 * 10 << 30),
    ):
        await engines.quotas.set_base_quota(uuid.UUID(user), resource, limit)
    attempts = [
        compute.create_server(user, f"s{i}", world["image"], world["small"].id) for i in range(100)
    ]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    created = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, errors.OverQuota)]
    assert (len(created), len(refused)) == (60, 40)
    for view, _ in created:
        await until(compute, user, view.server.id, "ACTIVE")


async def test_no_server_is_built_from_a_deactivated_image(
    engines: Engines, compute: Compute, world
):
    """An admin's hold on an image stops its use: Nova refuses a non-active image, to
    its owner and to an admin alike (once public, so the admin sees it), until the
    image is reactivated."""
    owner, image = world["user"], world["image"]
    admin, _ = await engines.identity.create_user("held@example.org", admin=True)
    await engines.images.set_deactivated(str(admin.id), True, image, deactivated=True)
    with pytest.raises(errors.InvalidInput, match="not active"):
        await compute.create_server(owner, "x", image, world["small"].id)
    await engines.images.update(owner, image, fields={"visibility": "public"})
    with pytest.raises(errors.InvalidInput, match="not active"):
        await compute.create_server(str(admin.id), "x", image, world["small"].id)
    assert await compute.servers(owner) == []
    await engines.images.set_deactivated(str(admin.id), True, image, deactivated=False)
    view, _ = await compute.create_server(owner, "x", image, world["small"].id)
    assert view.server.image_id == image
