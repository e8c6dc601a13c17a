"""Create -> ACTIVE on Ganeti: nefos' total against Ganeti's own job times (issue 6).

Target: nefos adds at most 15 % to what Ganeti's jobs take. Needs the dev cluster of
``scripts/ganeti-dev.sh`` (fake hypervisor; its KEY=VALUE lines in /run/nefos-ganeti/env)
and a RabbitMQ. nefos runs in this process as the API would drive it (the compute service,
a SQLite database, the dispatcher on the AMQP bus); ``nefos ganeti eventd`` runs as its own
process on the same broker, under an exchange and queue of this run's own.

* single: one server at a time, create -> ACTIVE (our database says so) against its
  create job's received -> end in Ganeti (RAPI ``/2/jobs/<id>``);
* batch: N servers submitted at once until all are ACTIVE, against Ganeti's own span
  for those jobs (first received -> last end), and the sum of their run times; then all
  are deleted, timed the same way.

With ``--public-nic`` (issue 20) every server gets one NIC on a public network with an
IPv4 subnet, made by nefos on the cluster (``POST /2/networks`` and ``connect``) with the
first server, which is kept until the end so that the network stays; the others' create
jobs carry their NIC (network, IP, MAC) as nefos's pools gave them.

    python bench/ganeti_create.py [--single 5] [--servers 100] [--public-nic] [--bus ...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from nefos.backends import base
from nefos.backends.ganeti import GanetiCluster
from nefos.backends.ops import RemoveInstance, RemoveNetwork, ShutdownInstance
from nefos.compute.models import Flavor, Server
from nefos.core.bus import AmqpBus
from nefos.core.config import Settings, ensure_data_dir
from nefos.core.migrate import upgrade
from nefos.network.access import Caller
from nefos.network.nics import NicRequest
from nefos.server.engines import Engines

NEFOS = str(Path(sys.executable).with_name("nefos"))
GANETI_ENV = Path("/run/nefos-ganeti/env")
RAM_MIB = 64


def seconds(stamp: list[int]) -> float:
    return stamp[0] + stamp[1] / 1_000_000


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


class Bench:
    def __init__(
        self, engines: Engines, cluster: GanetiCluster, user: str, image: str, flavor: Flavor
    ) -> None:
        self.engines = engines
        self.compute = engines.compute
        self.cluster = cluster
        self.user = user
        self.image = image
        self.flavor = flavor
        self.ids: list[int] = []
        self.networks: list[NicRequest] | None = None  # --public-nic: the NIC each one gets
        # How long each RAPI submission took (request -> job id), to tell Ganeti's RAPI
        # from nefos' own work in the time before a job reaches Ganeti.
        self.rapi_seconds: list[float] = []
        cluster.submit = self._timed(cluster.submit)  # type: ignore[method-assign]

    def _timed(self, submit: Callable[..., Awaitable[int]]) -> Callable[..., Awaitable[int]]:
        async def timed(*args: Any, **kwargs: Any) -> int:
            begun = time.perf_counter()
            try:
                return await submit(*args, **kwargs)
            finally:
                self.rapi_seconds.append(time.perf_counter() - begun)

        return timed

    async def create(self, name: str) -> int:
        view, _ = await self.compute.create_server(
            self.user, name, self.image, self.flavor.id, networks=self.networks
        )
        self.ids.append(view.server.id)
        return view.server.id

    async def until(self, ids: list[int], done: str, poll: float) -> float:
        """Wait until every server is ACTIVE (or deleted); when that was seen."""
        wanted = set(ids)
        while True:
            async with self.engines.db.session() as s:
                rows = (
                    await s.execute(
                        select(Server.id, Server.operstate, Server.task, Server.deleted).where(
                            Server.id.in_(wanted)
                        )
                    )
                ).all()
            for server_id, operstate, task, deleted in rows:
                if task is None and (
                    (done == "ACTIVE" and operstate == "STARTED") or (done == "DELETED" and deleted)
                ):
                    wanted.discard(server_id)
            if not wanted:
                return time.time()
            await asyncio.sleep(poll)

    async def jobs(self, ids: list[int], opcode: str) -> list[dict[str, Any]]:
        found = []
        for server_id in ids:
            job_id = next(
                j.job_id for j in await self.compute.jobs(server_id) if j.opcode == opcode
            )
            found.append(await self.cluster.rapi.job(job_id))
        return found

    async def single(self, count: int) -> None:
        totals, raws = [], []
        for n in range(count):
            begun = time.time()
            server_id = await self.create(f"single-{n}")
            ended = await self.until([server_id], "ACTIVE", 0.01)
            (job,) = await self.jobs([server_id], base.OP_CREATE)
            totals.append(ended - begun)
            raws.append(seconds(job["end_ts"]) - seconds(job["received_ts"]))
            await self.compute.delete_server(self.user, server_id)
            await self.until([server_id], "DELETED", 0.05)
        total, raw = statistics.median(totals), statistics.median(raws)
        print(
            f"single create -> ACTIVE, median of {count}: nefos {total:.2f} s, "
            f"Ganeti job (received -> end) {raw:.2f} s, overhead {100 * (total / raw - 1):.0f} %"
        )
        print(
            "  each (nefos / Ganeti): "
            + ", ".join(f"{t:.2f}/{r:.2f}" for t, r in zip(totals, raws, strict=True))
        )

    async def batch(self, count: int) -> None:
        self.rapi_seconds.clear()
        begun = time.time()
        ids = list(await asyncio.gather(*(self.create(f"batch-{n}") for n in range(count))))
        submitted = time.time()
        ended = await self.until(ids, "ACTIVE", 0.2)
        report("create", count, begun, submitted, ended, await self.jobs(ids, base.OP_CREATE))
        rapi_report(self.rapi_seconds)

        self.rapi_seconds.clear()
        begun = time.time()
        await asyncio.gather(*(self.compute.delete_server(self.user, i) for i in ids))
        submitted = time.time()
        ended = await self.until(ids, "DELETED", 0.2)
        report("delete", count, begun, submitted, ended, await self.jobs(ids, base.OP_REMOVE))
        rapi_report(self.rapi_seconds)


def rapi_report(times: list[float]) -> None:
    times = sorted(times)
    print(
        f"  RAPI submissions (request -> job id): median {statistics.median(times):.2f} s, "
        f"max {times[-1]:.2f} s, sum {sum(times):.1f} s"
    )


def report(
    what: str, count: int, begun: float, submitted: float, ended: float, jobs: list[dict[str, Any]]
) -> None:
    received = [seconds(j["received_ts"]) for j in jobs]
    started = [seconds(j["start_ts"]) for j in jobs]
    finished = [seconds(j["end_ts"]) for j in jobs]
    span = max(finished) - min(received)
    ran = sum(e - s for s, e in zip(started, finished, strict=True))
    nefos = ended - begun
    print(
        f"{count} servers, {what} at once: nefos {nefos:.1f} s (all submitted after "
        f"{submitted - begun:.1f} s); Ganeti's span (first received -> last end) {span:.1f} s, "
        f"overhead {100 * (nefos / span - 1):.0f} %"
    )
    print(
        f"  first job received {min(received) - begun:.2f} s after the first request, last "
        f"{max(received) - begun:.2f} s; last job ended -> all {what}d in nefos "
        f"{ended - max(finished):.2f} s (polled every 0.2 s); sum of job run times {ran:.1f} s "
        f"(mean {ran / count:.2f} s, queued before running: mean "
        f"{statistics.mean(s - r for r, s in zip(received, started, strict=True)):.1f} s)"
    )


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


async def main(args: argparse.Namespace, env: dict[str, str]) -> None:
    tag = uuid.uuid4().hex[:8]
    exchange, queue = f"nefos-bench-{tag}", f"nefos-bench-events-{tag}"
    room = args.servers + 2  # and the --public-nic holder
    with tempfile.TemporaryDirectory() as scratch:
        database = f"sqlite+aiosqlite:///{scratch}/nefos.db"
        await asyncio.to_thread(upgrade, database)
        settings = ensure_data_dir(
            Settings(
                data_dir=Path(scratch) / "data",
                database_url=database,
                bus_url=args.bus,
                log_level="WARNING",
                compute={
                    "dispatcher_queue": queue,
                    "embedded_backend": False,
                    "reconcile_seconds": 0,
                },
                quota_defaults={
                    "cyclades.vm": room,
                    "cyclades.cpu": room,
                    "cyclades.total_cpu": room,
                    "cyclades.ram": room << 30,
                    "cyclades.total_ram": room << 30,
                    "cyclades.disk": room << 30,
                },
            )
        )
        bus = AmqpBus(args.bus, exchange=exchange)
        engines = Engines(settings, bus=bus)
        await engines.start()
        log = Path(scratch) / "eventd.log"
        with log.open("ab") as sink:
            eventd = await asyncio.create_subprocess_exec(
                NEFOS,
                *("ganeti", "eventd", "--cluster", "ganeti1"),
                *("--exchange", exchange, "--replay-minutes", "0"),
                env={**os.environ, "NEFOS_BUS_URL": args.bus},  # its password: not in argv
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=sink,
            )
        bench: Bench | None = None
        try:
            while "watching" not in _text(log):
                if eventd.returncode is not None:
                    raise RuntimeError(f"eventd exited:\n{_text(log)}")
                await asyncio.sleep(0.1)
            # Server ids name the instances (snf-<id>): keep clear of other runs.
            async with engines.db.transaction() as s:
                await s.execute(
                    text("INSERT INTO sqlite_sequence (name, seq) VALUES ('compute_servers', :s)"),
                    {"s": 6 * 10**8 + secrets.randbelow(10**8)},
                )
            compute = engines.compute
            backend = await compute.add_backend(
                "ganeti1", "ganeti", env["RAPI_URL"], env["RAPI_USER"], env["RAPI_PASSWORD"],
                default_link=env["BRIDGE"], certificate=env["RAPI_CERT"],
            )  # fmt: skip
            cluster = compute.cluster(backend)
            assert isinstance(cluster, GanetiCluster)
            await engines.start_dispatcher()
            owner, _ = await engines.identity.create_user(f"bench-{tag}@example.org")
            user = str(owner.id)
            await engines.storage.create_container(user, "images")
            await engines.storage.put_object(user, "images", "disk", one_chunk(b"disk"))
            image = await engines.images.register(user, f"pithos://{user}/images/disk", "Disk")
            flavor = await compute.create_flavor(1, RAM_MIB, 1, args.disk_template)
            bench = Bench(engines, cluster, user, str(image.id), flavor)
            if args.public_nic:
                await public_nic(bench, tag)
            print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            if args.single:
                await bench.single(args.single)
            if args.servers:
                await bench.batch(args.servers)
            print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        finally:
            if bench is not None:
                await cleanup(bench)
            if eventd.returncode is None:
                eventd.send_signal(signal.SIGTERM)
            await eventd.wait()
            await engines.close()
            cleaner = AmqpBus(args.bus, exchange=exchange)
            await cleaner.start()
            await cleaner.delete_queue(queue)
            await cleaner.delete_exchange()
            await cleaner.close()


async def public_nic(bench: Bench, tag: str) -> None:
    """A public network, and a first server on it that keeps it on the cluster: its
    create -> ACTIVE includes the network's add and connect jobs."""
    network, admin = bench.compute.network, Caller("admin", admin=True)
    public = await network.create_network(admin, f"bench-public-{tag}", "CUSTOM", public=True)
    prefix = f"10.{200 + secrets.randbelow(50)}.{4 * secrets.randbelow(60)}"
    await network.create_subnet(admin, str(public.id), f"{prefix}.0/22", 4)
    bench.networks = [NicRequest(network=str(public.id))]
    begun = time.time()
    holder = await bench.create("holder")
    ended = await bench.until([holder], "ACTIVE", 0.01)
    (job,) = await bench.jobs([holder], base.OP_CREATE)
    print(
        f"first server on the network (its add and connect jobs first): nefos "
        f"{ended - begun:.2f} s, its create job (received -> end) "
        f"{seconds(job['end_ts']) - seconds(job['received_ts']):.2f} s"
    )


async def cleanup(bench: Bench) -> None:
    """Whatever a failure left on the shared cluster goes."""
    ours = {base.instance_name(i) for i in bench.ids}
    for name in set(await bench.cluster.instances()) & ours:
        await bench.cluster.wait(await bench.cluster.submit(ShutdownInstance(name, 0)), within=120)
        await bench.cluster.wait(await bench.cluster.submit(RemoveInstance(name)), within=120)
    names = {base.network_name(n.network) for n in bench.networks or [] if n.network}
    for found in await bench.cluster.rapi.networks():
        if found["name"] in names:
            done = await bench.cluster.submit(RemoveNetwork(found["name"]))
            await bench.cluster.wait(done, within=120)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", type=int, default=5, help="single creates, one by one")
    parser.add_argument("--servers", type=int, default=100, help="servers created at once")
    parser.add_argument("--disk-template", default="file")
    parser.add_argument("--public-nic", action="store_true", help="one public NIC each")
    parser.add_argument(
        "--bus",
        default=os.environ.get("NEFOS_TEST_AMQP_URL") or "amqp://guest:guest@127.0.0.1:5672/",
    )
    ganeti = dict(line.split("=", 1) for line in _text(GANETI_ENV).splitlines() if "=" in line)
    asyncio.run(main(parser.parse_args(), ganeti))
