"""nefos's Ganeti backend: the RAPI client, ``GanetiCluster`` and ``nefos ganeti eventd``.

The first tests need no cluster (a fake RAPI, job files written the way Ganeti writes
them). The rest run against the real single-node Ganeti of ``scripts/ganeti-dev.sh``
(fake hypervisor, ``noop`` OS): the backend's jobs, the event daemon publishing them to
RabbitMQ, and the whole path, where servers reach ACTIVE, STOPPED and DELETED only on
what the cluster reported.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import os
import secrets
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from nefos.backends import base
from nefos.backends.base import InstanceInfo, InstanceSpec
from nefos.backends.ganeti import GanetiCluster, RapiClient
from nefos.backends.ganeti.eventd import QueueWatcher, op_message
from nefos.backends.ganeti.rapi import pem_certificates, ssl_context
from nefos.backends.ops import (
    CreateInstance,
    ModifyInstance,
    RebootInstance,
    RemoveInstance,
    ShutdownInstance,
    StartupInstance,
)
from nefos.compute.service import ServerView
from nefos.core import errors
from nefos.core.bus import AmqpBus, Message
from nefos.server.engines import Engines
from tests.backends.conftest import (
    IN_CI,
    Ganeti,
    add_ganeti_backend,
    force_remove,
    number_servers_apart,
    start_eventd,
    stop_eventd,
    tenant,
    wait_until,
)
from tests.compute.conftest import usage

AMQP_URL = os.environ.get("NEFOS_TEST_AMQP_URL") or "amqp://guest:guest@127.0.0.1:5672/"
ORDER = ("queued", "waiting", "canceling", "running", "success", "error", "canceled")
MiB = 1 << 20


def new_name() -> str:
    """``snf-<digits>``, as the update path reads them, unlikely to meet another run's."""
    return f"snf-{9 * 10**8 + secrets.randbelow(10**8)}"


# -- without a cluster: the RAPI client over a fake Ganeti ------------------------------------


def fake_rapi(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if path == "/2/instances" and request.method == "POST":
            return httpx.Response(200, json=17)
        if path == "/2/instances/snf-1/reboot":
            return httpx.Response(200, json="18")
        if path == "/2/instances/snf-404":
            body = {"code": 404, "message": "Not Found", "explain": "Instance 'snf-404' not known"}
            return httpx.Response(404, json=body)
        if path == "/2/instances/bad/modify":
            return httpx.Response(400, json={"code": 400, "message": "Bad Request"})
        if path == "/2/info" and request.headers.get("Authorization") is None:
            return httpx.Response(401, json={"code": 401, "message": "Unauthorized"})
        if path == "/2/nodes":
            return httpx.Response(200, json=[{"name": "n1", "vm_capable": True, "cnodes": 1}])
        if path == "/2/jobs/5":
            return httpx.Response(502, text="queue full")
        return httpx.Response(500, text="unexpected")

    return httpx.MockTransport(handle)


async def test_rapi_requests_and_error_kinds() -> None:
    seen: list[httpx.Request] = []
    cluster = GanetiCluster(
        "g", "https://ganeti.test:5080", "nefos", "pw", transport=fake_rapi(seen), hypervisor="fake"
    )
    spec = InstanceSpec("snf-1", 2, 256, 1, "file", "snf-image+default", {}, [{"link": "br0"}])
    assert await cluster.submit(CreateInstance(spec)) == 17
    created = json.loads(seen[-1].content)
    assert created == {
        "__version__": 1,
        "mode": "create",
        "instance_name": "snf-1",
        "disk_template": "file",
        "disks": [{"size": 1024}],
        "nics": [{"link": "br0"}],
        "os_type": "noop",  # the backend's own OS wins over the spec's
        "beparams": {"vcpus": 2, "maxmem": 256, "minmem": 256},
        "name_check": False,
        "ip_check": False,
        "start": True,
        "tags": [],
        "hypervisor": "fake",
        "pnode": "n1",  # the only node: no allocator to ask
    }
    assert seen[-1].headers["Authorization"].startswith("Basic ")
    assert await cluster.submit(RebootInstance("snf-1", hard=True)) == 18
    assert seen[-1].url.params["type"] == "hard"
    with pytest.raises(errors.NotFound, match="Instance 'snf-404' not known"):
        await cluster.rapi.instance("snf-404")
    with pytest.raises(errors.InvalidInput):
        await cluster.submit(ModifyInstance("bad", 1, 128))
    with pytest.raises(errors.Unavailable, match="queue full"):
        await cluster.rapi.job(5)
    await cluster.close()

    anonymous = RapiClient("https://ganeti.test:5080", transport=fake_rapi(seen))
    with pytest.raises(errors.Unavailable, match="refuses nefos's RAPI credentials"):
        await anonymous.info()
    await anonymous.close()

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    nobody = RapiClient(f"https://127.0.0.1:{port}", "u", "p")
    with pytest.raises(errors.Unavailable, match="unreachable"):
        await nobody.info()
    await nobody.close()


def test_certificate_as_pem_text_or_file_key_left_out(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ganeti.example.com")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    pem = pem_key + certificate.public_bytes(serialization.Encoding.PEM).decode()  # rapi.pem
    path = tmp_path / "rapi.pem"
    path.write_text(pem)
    kept = pem_certificates(str(path))
    assert "PRIVATE KEY" not in kept and kept.startswith("-----BEGIN CERTIFICATE-----")
    for given in (pem, str(path), kept):
        context = ssl_context(given)
        assert context.check_hostname is False
        assert context.cert_store_stats()["x509"] == 1  # that one, and nothing else
    with pytest.raises(errors.InvalidInput, match="no PEM CERTIFICATE"):
        ssl_context(pem_key)
    with pytest.raises(errors.InvalidInput, match="Cannot read"):
        ssl_context(str(tmp_path / "missing.pem"))


# -- without a cluster: the event daemon over job files ----------------------------------------


class FakeQueue:
    """A job queue directory written as luxid writes it: a new copy renamed onto job-N."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.clock = 1_700_000_000.0

    def stamp(self) -> list[int]:
        self.clock += 0.25
        return [int(self.clock), int((self.clock % 1) * 1_000_000)]

    def write(self, job_id: int, instance: str, status: str, opcode: str = base.OP_STARTUP) -> None:
        op: dict[str, Any] = {
            "input": {"OP_ID": opcode, "instance_name": instance, "beparams": {"maxmem": 512}},
            "status": status,
            "result": ["OpExecError", ["Could not start instance"]] if status == "error" else None,
            "log": [[1, self.stamp(), "message", "* starting instance..."]],
            "start_timestamp": self.stamp(),
            "exec_timestamp": self.stamp(),
            "end_timestamp": self.stamp() if status in base.FINAL else None,
        }
        job = {
            "id": job_id,
            "ops": [op],
            "received_timestamp": [1_700_000_000, job_id],
            "end_timestamp": op["end_timestamp"],
        }
        temporary = self.path / f".job-{job_id}.tmp"
        temporary.write_text(json.dumps(job))
        temporary.rename(self.path / f"job-{job_id}")


@pytest.fixture(params=["inotify", "poll"])
async def watched(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[FakeQueue, list[Message], Callable[..., Awaitable[QueueWatcher]]]]:
    queue = FakeQueue(tmp_path / "queue")
    queue.path.mkdir()
    published: list[Message] = []
    tasks: list[asyncio.Task[None]] = []

    async def publish(routing_key: str, message: Message) -> None:
        assert routing_key == base.OP_ROUTING_KEY
        published.append(message)

    async def start(**options: Any) -> QueueWatcher:
        options.setdefault("publish", publish)
        watcher = QueueWatcher(queue.path, "g1", use_inotify=request.param == "inotify", **options)
        tasks.append(asyncio.create_task(watcher.run()))
        await asyncio.wait_for(watcher.ready.wait(), 5)
        assert watcher.mode == request.param
        return watcher

    yield queue, published, start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def settled(published: list[Message], count: int) -> None:
    await wait_until(lambda: len(published) >= count, within=5)
    await asyncio.sleep(0.3)  # and nothing more arrives


def seen(published: list[Message]) -> list[tuple[int, str]]:
    return [(m["jobId"], m["status"]) for m in published]


async def test_eventd_publishes_each_new_status_once(watched) -> None:
    queue, published, start = watched
    queue.write(1, "snf-1", "success")  # finished long before the daemon starts
    await start(replay_seconds=0)
    queue.write(2, "snf-2", "queued")
    queue.write(3, "other-vm", "queued")  # not nefos's
    await settled(published, 1)
    queue.write(2, "snf-2", "running")
    await settled(published, 2)
    queue.write(2, "snf-2", "running")  # a new log line only: same status
    queue.write(2, "snf-2", "error")
    await settled(published, 3)
    assert seen(published) == [(2, "queued"), (2, "running"), (2, "error")]
    failed = published[-1]
    assert failed["type"] == "ganeti-op-status"
    assert failed["instance"] == "snf-2" and failed["operation"] == base.OP_STARTUP
    assert failed["cluster"] == "g1"
    assert failed["logmsg"] == "OpExecError: Could not start instance"
    assert failed["job_fields"] == {"beparams": {"maxmem": 512, "memory": 512}}
    times = [m["event_time"] for m in published]
    assert times == sorted(times)


async def test_eventd_restart_replays_recent_and_unfinished_jobs(watched) -> None:
    queue, published, start = watched
    queue.write(1, "snf-1", "success")
    queue.write(2, "snf-2", "running")
    replay_all = 10 * 365 * 86400.0
    await start(replay_seconds=replay_all)
    await settled(published, 2)
    assert sorted(seen(published)) == [(1, "success"), (2, "running")]


async def test_eventd_keeps_what_the_bus_refused(watched) -> None:
    queue, published, start = watched
    failures = [ConnectionError("bus down")]

    async def flaky(routing_key: str, message: Message) -> None:
        if failures:
            raise failures.pop()
        published.append(message)

    await start(publish=flaky, replay_seconds=0, retry_seconds=0.1)
    queue.write(4, "snf-4", "queued")
    await settled(published, 1)
    queue.write(4, "snf-4", "success")
    await settled(published, 2)
    assert seen(published) == [(4, "queued"), (4, "success")]


def test_op_message_event_times_follow_the_status() -> None:
    job = {"id": 9, "received_timestamp": [10, 0], "end_timestamp": None}
    op = {
        "input": {"OP_ID": base.OP_CREATE, "instance_name": "snf-9", "tags": ["t"]},
        "start_timestamp": [11, 0],
        "exec_timestamp": [12, 0],
        "end_timestamp": [13, 5],
    }
    times = {
        status: op_message(job, {**op, "status": status}, "g")["event_time"]  # type: ignore[index]
        for status in ("queued", "waiting", "running", "success")
    }
    assert times == {"queued": [10, 0], "waiting": [11, 0], "running": [12, 0], "success": [13, 5]}
    assert op_message(job, {**op, "status": "success"}, "g")["tags"] == ["t"]  # type: ignore[index]
    assert op_message(job, {**op, "status": "unknown"}, "g") is None


# -- a real Ganeti -----------------------------------------------------------------------------


@pytest.fixture
async def cluster(ganeti: Ganeti) -> AsyncIterator[GanetiCluster]:
    found = GanetiCluster(
        "ganeti-test",
        ganeti.rapi_url,
        ganeti.rapi_user,
        ganeti.rapi_password,
        certificate=str(ganeti.rapi_cert),
        hypervisor="fake",
    )
    yield found
    await found.close()


@pytest.fixture
def doomed(rapi: httpx.Client) -> Iterator[Callable[[str], str]]:
    """Names of instances a test makes; whatever is left of them is removed afterwards."""
    names: list[str] = []
    yield lambda name: names.append(name) or name
    for name in names:
        force_remove(rapi, name)


async def run(
    cluster: GanetiCluster, timings: list[tuple[str, float]], what: str, job: Awaitable[int]
) -> tuple[int, dict[str, Any]]:
    started = time.monotonic()
    job_id = await job
    done = await cluster.wait(job_id, within=120)
    timings.append((f"backend: {what}", time.monotonic() - started))
    return job_id, done


async def test_cluster_runs_an_instance_through_its_life(
    ganeti: Ganeti, cluster: GanetiCluster, doomed, timings
) -> None:
    info = await cluster.info()
    assert info.runs_guests and info.hypervisor == "fake"
    assert {"file", "diskless"} <= set(info.disk_templates)
    assert 0 < info.mfree <= info.mtotal and 0 < info.dfree <= info.dtotal and info.ctotal >= 1

    name = doomed(new_name())
    spec = InstanceSpec(
        name, 1, 128, 1, "file", "noop", {}, [{"link": ganeti.bridge}], ["nefos:test"]
    )
    _, done = await run(
        cluster, timings, "create (1 GiB file disk)", cluster.submit(CreateInstance(spec))
    )
    assert done["status"] == "success", done["opresult"]
    assert (await cluster.instances())[name] == InstanceInfo(name, True, 1, 128, disks=())
    details = await cluster.rapi.instance(name)
    assert details["disk.sizes"] == [1024] and details["nic.links"] == [ganeti.bridge]
    assert details["os"] == "noop" and "nefos:test" in details["tags"]
    assert (await cluster.info()).pinst_cnt >= 1

    _, done = await run(
        cluster, timings, "shutdown", cluster.submit(ShutdownInstance(name, grace_seconds=5))
    )
    assert done["status"] == "success", done["opresult"]
    assert (await cluster.instances())[name].running is False
    _, done = await run(
        cluster, timings, "modify (2 CPUs, 256 MiB)", cluster.submit(ModifyInstance(name, 2, 256))
    )
    assert done["status"] == "success", done["opresult"]
    assert (await cluster.instances())[name] == InstanceInfo(name, False, 2, 256, disks=())
    _, done = await run(cluster, timings, "startup", cluster.submit(StartupInstance(name)))
    assert done["status"] == "success", done["opresult"]
    assert (await cluster.instances())[name].running is True
    _, done = await run(
        cluster, timings, "reboot (hard)", cluster.submit(RebootInstance(name, hard=True))
    )
    assert done["status"] == "success", done["opresult"]
    assert (await cluster.instances())[name].running is True
    _, done = await run(cluster, timings, "remove", cluster.submit(RemoveInstance(name)))
    assert done["status"] == "success", done["opresult"]
    assert name not in await cluster.instances()
    with pytest.raises(errors.NotFound):
        await cluster.rapi.instance(name)
    # A job on an instance that is gone is accepted, and fails as the update path expects.
    _, done = await run(
        cluster, timings, "startup of a missing instance", cluster.submit(StartupInstance(name))
    )
    assert done["status"] == "error" and "not known" in json.dumps(done["opresult"])


async def test_a_self_signed_cluster_needs_its_certificate(ganeti: Ganeti) -> None:
    blind = GanetiCluster("g", ganeti.rapi_url, ganeti.rapi_user, ganeti.rapi_password)
    with pytest.raises(errors.Unavailable, match="certificate"):
        await blind.info()
    await blind.close()


def amqp_reachable() -> bool:
    url = httpx.URL(AMQP_URL.replace("amqp://", "http://", 1))
    try:
        socket.create_connection((url.host, url.port or 5672), timeout=2).close()
    except OSError:
        return False
    return True


async def test_eventd_publishes_ganeti_jobs_in_order(
    ganeti: Ganeti, cluster: GanetiCluster, doomed, tmp_path: Path, timings
) -> None:
    """``nefos ganeti eventd`` as it runs on a master, publishing to RabbitMQ."""
    if not amqp_reachable():
        if IN_CI:
            pytest.fail(f"RabbitMQ is part of CI: nothing at {AMQP_URL}")
        pytest.skip(f"no RabbitMQ at {AMQP_URL}")
    tag = uuid.uuid4().hex[:12]
    exchange, queue, cluster_name = f"nefos-test-{tag}", f"nefos-test-eventd-{tag}", f"g-{tag}"
    name = doomed(new_name())
    got: list[Message] = []

    async def collect(message: Message) -> None:
        if message["instance"] == name and message["cluster"] == cluster_name:
            got.append(message)

    bus = AmqpBus(AMQP_URL, exchange=exchange)
    await bus.start()
    await bus.subscribe(queue, [base.OP_BINDING], collect)
    log = tmp_path / "eventd.log"
    process = await start_eventd(log, AMQP_URL, cluster_name, exchange, replay_minutes=0)
    try:
        spec = InstanceSpec(name, 1, 128, 1, "diskless", "noop", {}, [{"link": ganeti.bridge}])
        steps: list[tuple[str, Callable[[], Awaitable[int]]]] = [
            (base.OP_CREATE, lambda: cluster.submit(CreateInstance(spec))),
            (base.OP_SHUTDOWN, lambda: cluster.submit(ShutdownInstance(name, grace_seconds=5))),
            (base.OP_MODIFY, lambda: cluster.submit(ModifyInstance(name, 2, 256))),
            (base.OP_STARTUP, lambda: cluster.submit(StartupInstance(name))),
            (base.OP_REBOOT, lambda: cluster.submit(RebootInstance(name))),
            (base.OP_REMOVE, lambda: cluster.submit(RemoveInstance(name))),
            (base.OP_REMOVE, lambda: cluster.submit(RemoveInstance(name))),  # gone already: fails
        ]
        jobs: list[tuple[str, int, str]] = []
        for opcode, submit in steps:
            job_id, done = await run(cluster, timings, f"eventd: {opcode}", submit())
            jobs.append((opcode, job_id, done["status"]))
        assert [status for *_, status in jobs] == ["success"] * 6 + ["error"]

        last_job = jobs[-1][1]
        assert await wait_until(
            lambda: any(m["jobId"] == last_job and m["status"] == "error" for m in got)
        )
        positions: list[tuple[int, int]] = []
        for opcode, job_id, status in jobs:
            events = [(i, m) for i, m in enumerate(got) if m["jobId"] == job_id]
            statuses = [m["status"] for _, m in events]
            assert statuses[-1] == status, (opcode, statuses)
            assert statuses == sorted(set(statuses), key=ORDER.index), (opcode, statuses)
            times = [m["event_time"] for _, m in events]
            assert times == sorted(times), (opcode, times)
            for _, message in events:
                assert message["type"] == "ganeti-op-status" and message["operation"] == opcode
            positions.append((events[0][0], events[-1][0]))
        for (_, end), (start, _) in itertools.pairwise(positions):
            assert end < start  # each job's events before the next job's
        final = {m["jobId"]: m for m in got if m["status"] in base.FINAL}
        created = final[jobs[0][1]]["job_fields"]
        assert created["beparams"] == {"vcpus": 1, "maxmem": 128, "minmem": 128, "memory": 128}
        assert created["disks"] == [] and created["nics"] == [{"link": ganeti.bridge}]
        assert final[jobs[2][1]]["job_fields"]["beparams"]["memory"] == 256
        assert "not known" in final[last_job]["logmsg"]

        # Stopped by SIGTERM, a job meanwhile, started again: the job is not lost, and
        # recent jobs are published again (at least once; the dispatcher drops repeats).
        assert await stop_eventd(process) == 0
        missed, done = await run(
            cluster, timings, "eventd: while stopped", cluster.submit(StartupInstance(name))
        )
        assert done["status"] == "error"
        before = len(got)
        process = await start_eventd(log, AMQP_URL, cluster_name, exchange, replay_minutes=10)
        assert await wait_until(lambda: any(m["jobId"] == missed for m in got[before:]))
        assert await wait_until(lambda: any(m["jobId"] == last_job for m in got[before:]))
        assert [m["status"] for m in got[before:] if m["jobId"] == missed][-1] == "error"
    finally:
        await stop_eventd(process)
        await bus.delete_queue(queue)
        await bus.delete_exchange()
        await bus.close()
    assert "Traceback" not in log.read_text(), log.read_text()


# -- the whole path: compute over Ganeti, states moved by eventd's events ---------------------


async def until_status(
    engines: Engines, user: str, server_id: int, status: str, within: float = 60.0
) -> ServerView:
    deadline = time.monotonic() + within
    while True:
        view = await engines.compute.server(user, server_id)
        if view.status == status and not view.server.task:
            return view
        if time.monotonic() > deadline:
            jobs = [(j.opcode, j.status, j.logmsg) for j in await engines.compute.jobs(server_id)]
            raise AssertionError(f"server {server_id} stayed {view.status}: {jobs}")
        await asyncio.sleep(0.05)


async def test_servers_on_ganeti_move_on_its_events(
    ganeti: Ganeti, engines: Engines, doomed, timings
) -> None:
    compute = engines.compute
    first_id = await number_servers_apart(engines, 9)
    watcher = QueueWatcher(ganeti.queue_dir, "ganeti1", engines.bus.publish, replay_seconds=0)
    eventd = asyncio.create_task(watcher.run())
    try:
        await asyncio.wait_for(watcher.ready.wait(), 10)
        backend = await add_ganeti_backend(engines, ganeti)
        assert backend.hypervisor == "fake" and "file" in backend.disk_templates.split(",")
        assert backend.mtotal > 0 and backend.ctotal >= 1
        await engines.start_dispatcher()

        ours = await tenant(engines, "g", b"a disk image")
        user = ours.user

        started = time.monotonic()
        view, _ = await compute.create_server(user, "on-ganeti", ours.image_id, ours.flavor_id)
        server_id = view.server.id
        assert server_id == first_id and view.status == "BUILD"
        name = doomed(base.instance_name(server_id))
        active = await until_status(engines, user, server_id, "ACTIVE")
        to_active = time.monotonic() - started
        assert active.server.job_opcode == base.OP_CREATE and active.progress == 100
        cluster = compute.cluster(backend)
        assert isinstance(cluster, GanetiCluster)
        job = await cluster.rapi.job(_job_of(await compute.jobs(server_id), base.OP_CREATE))
        raw = _seconds(job["end_ts"]) - _seconds(job["received_ts"])
        timings.append(("whole path: create -> ACTIVE", to_active))
        timings.append(("whole path: its Ganeti job alone", raw))
        print(f"create -> ACTIVE {to_active:.2f} s; the Ganeti job {raw:.2f} s")
        assert (await cluster.instances())[name] == InstanceInfo(name, True, 1, 128, disks=())
        assert await usage(engines, user, "cyclades.vm") == (1, 1)
        assert await usage(engines, user, "cyclades.ram") == (128 * MiB, 128 * MiB)

        for what, action, status, running in [
            ("shutdown", lambda: compute.shutdown(user, server_id), "STOPPED", False),
            ("start", lambda: compute.start(user, server_id), "ACTIVE", True),
            ("reboot", lambda: compute.reboot(user, server_id, hard=False), "ACTIVE", True),
        ]:
            begun = time.monotonic()
            await action()
            await until_status(engines, user, server_id, status)
            timings.append((f"whole path: {what} -> {status}", time.monotonic() - begun))
            assert (await cluster.instances())[name].running is running
            expected = 0 if status == "STOPPED" else 128 * MiB
            assert await usage(engines, user, "cyclades.ram") == (expected, expected)

        begun = time.monotonic()
        await compute.delete_server(user, server_id)
        gone = await until_status(engines, user, server_id, "DELETED")
        timings.append(("whole path: delete -> DELETED", time.monotonic() - begun))
        assert gone.server.deleted and name not in await cluster.instances()
        for resource in ("cyclades.vm", "cyclades.cpu", "cyclades.total_ram", "cyclades.disk"):
            assert await usage(engines, user, resource) == (0, 0), resource
        finished = [j.opcode for j in await compute.jobs(server_id) if j.status == "success"]
        assert finished == [
            base.OP_CREATE,
            base.OP_SHUTDOWN,
            base.OP_STARTUP,
            base.OP_REBOOT,
            base.OP_REMOVE,
        ]
    finally:
        eventd.cancel()
        await asyncio.gather(eventd, return_exceptions=True)


def _job_of(jobs: list[Any], opcode: str) -> int:
    return next(j.job_id for j in jobs if j.opcode == opcode)


def _seconds(stamp: list[int]) -> float:
    return stamp[0] + stamp[1] / 1_000_000
