"""Create -> ACTIVE from a 10 GiB image and from a 10 MiB one, on Ganeti (issue 22).

Target: within 10 % of each other. A server on the volume disk template (a flavor on
``ext_nefos``) boots from a root volume cloned from the image's map, no data copied,
and nefos's OS provider only customises the clone (through ``nefos volumed``), so the
image's size should not show; peers copy the image, and their spawn grows with it.

Needs the dev cluster of ``scripts/ganeti-dev.sh`` (its KEY=VALUE lines in
/run/nefos-ganeti/env), root, and disk room for the large image's distinct blocks (an
ext4 file system of that size, made by mkfs.ext4: its metadata, the rest zeros, which
the block store keeps once). nefos runs in this process (the compute service, a SQLite
database, the dispatcher, the vmapi on the cluster's host address, the Ganeti job
queue followed in-process); ``nefos volumed`` runs as a process of its own. The guests
are KVM (QEMU TCG) booting the dev cluster's test kernel: ACTIVE is Ganeti's create job
done (disk, OS provider, start), not the guest's boot.

    python bench/volume_spawn.py [--runs 3] [--large-gib 10] [--small-mib 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn
from sqlalchemy import text

from nefos.backends import base
from nefos.backends.ganeti import GanetiCluster
from nefos.backends.ganeti.eventd import QueueWatcher
from nefos.backends.ganeti.osprovider import os_type
from nefos.core.config import Settings, ensure_data_dir
from nefos.core.migrate import upgrade
from nefos.server.app import create_app
from nefos.server.engines import Engines

NEFOS = str(Path(sys.executable).with_name("nefos"))
GANETI_ENV = Path("/run/nefos-ganeti/env")
QUEUE_DIR = Path("/var/lib/ganeti/queue")
HOST_IP = "198.18.0.254"  # the machine's end of the dev cluster's network
MiB, GiB = 1 << 20, 1 << 30


def ganeti_env() -> dict[str, str]:
    if not GANETI_ENV.exists():
        sys.exit(f"{GANETI_ENV} is missing: run scripts/ganeti-dev.sh start first")
    lines = GANETI_ENV.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def ext4_image(path: Path, size: int) -> None:
    """A Linux root file system of ``size`` bytes (sparse; metadata written by mkfs)."""
    tree = path.with_suffix(".tree")
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (tree / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    (tree / "etc/group").write_text("root:x:0:\n")
    (tree / "etc/hostname").write_text("debian\n")
    with path.open("wb") as sink:
        sink.truncate(size)
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-E", "root_owner=0:0", "-d", str(tree), str(path)],
        check=True,
        capture_output=True,
    )
    shutil.rmtree(tree)


async def chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        while chunk := await asyncio.to_thread(source.read, 4 * MiB):
            yield chunk


def node_side(provider: str, run_dir: Path, settings: Settings, root: Path) -> subprocess.Popen:
    """What an operator installs on the node: the ExtStorage provider (under a name of
    this run), the OS provider, and ``nefos volumed`` on the deployment."""
    subprocess.run(
        [NEFOS, "ganeti", "install-extstorage", "--name", provider, "--run-dir", str(run_dir)],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run([NEFOS, "ganeti", "install-os"], check=True, capture_output=True)
    return subprocess.Popen(
        [NEFOS, "volumed", "--run-dir", str(run_dir)],
        env={**os.environ, "NEFOS_DATA_DIR": str(settings.data_dir),
             "NEFOS_DATABASE_URL": settings.database},
        stdout=subprocess.DEVNULL, stderr=(root / "volumed.log").open("wb"),
    )  # fmt: skip


def remove_instance(env: dict[str, str], server_id: int) -> None:
    subprocess.run(
        [*env["EXEC"].split(), "gnt-instance", "remove", "-f", "--shutdown-timeout=0",
         base.instance_name(server_id)],
        capture_output=True,
    )  # fmt: skip


async def until(engines: Engines, user: str, server_id: int, status: str, within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        view = await engines.compute.server(user, server_id)
        if view.status == status and not view.server.task:
            return
        if view.status == "ERROR" or time.monotonic() > deadline:
            jobs = [(j.opcode, j.status, j.logmsg) for j in await engines.compute.jobs(server_id)]
            raise RuntimeError(f"server {server_id} is {view.status}, not {status}: {jobs}")
        await asyncio.sleep(0.05)


async def main(args: argparse.Namespace) -> None:
    env = ganeti_env()
    tag = secrets.token_hex(4)
    provider = f"nefos-b{tag}"
    with tempfile.TemporaryDirectory(prefix="nefos-spawn-") as scratch:
        root = Path(scratch)
        database = f"sqlite+aiosqlite:///{root}/nefos.db"
        await asyncio.to_thread(upgrade, database)
        port = free_port(HOST_IP)
        settings = ensure_data_dir(
            Settings(
                data_dir=root / "data",
                database_url=database,
                log_level="WARNING",
                compute={
                    "embedded_backend": False,
                    "reconcile_seconds": 0,
                    "vmapi_url": f"http://{HOST_IP}:{port}",
                    "volume_provider": provider,
                },
                quota_defaults={"cyclades.disk": 1 << 50, "pithos.diskspace": 1 << 50},
            )
        )
        run_dir = Path(tempfile.mkdtemp(prefix="nvb-", dir="/tmp"))  # a short socket path
        os_folder = Path("/srv/ganeti/os/nefos")
        had_os = await asyncio.to_thread(os_folder.exists)  # an operator's: left as it is
        extstorage = Path("/srv/ganeti/extstorage") / provider
        volumed = await asyncio.to_thread(node_side, provider, run_dir, settings, root)
        engines = Engines(settings)
        await engines.start()
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings, engines), host=HOST_IP, port=port, lifespan="off",
                log_config=None,
            )
        )  # fmt: skip
        api = asyncio.create_task(server.serve())
        watcher = QueueWatcher(QUEUE_DIR, "ganeti1", engines.bus.publish, replay_seconds=0)
        eventd = asyncio.create_task(watcher.run())
        made: list[int] = []
        try:
            while not (run_dir / "control.sock").exists() or not server.started:
                if volumed.poll() is not None:
                    raise RuntimeError((root / "volumed.log").read_text())
                await asyncio.sleep(0.05)
            await asyncio.wait_for(watcher.ready.wait(), 10)
            async with engines.db.transaction() as s:  # instance names apart from other runs
                await s.execute(
                    text("INSERT INTO sqlite_sequence (name, seq) VALUES ('compute_servers', :s)"),
                    {"s": 7 * 10**8 + secrets.randbelow(10**8)},
                )
            compute = engines.compute
            hvparams = {"kernel_path": env["KVM_KERNEL"], "initrd_path": env["KVM_INITRD"]}
            compute._clusters["ganeti1"] = GanetiCluster(
                "ganeti1", env["RAPI_URL"], env["RAPI_USER"], env["RAPI_PASSWORD"],
                certificate=env["RAPI_CERT"], os_type=os_type(), hypervisor="kvm",
                hvparams=hvparams,
            )  # fmt: skip
            await compute.add_backend(
                "ganeti1", "ganeti", env["RAPI_URL"], env["RAPI_USER"], env["RAPI_PASSWORD"],
                default_link=env["BRIDGE"], certificate=env["RAPI_CERT"],
            )  # fmt: skip
            await engines.start_dispatcher()

            owner, _ = await engines.identity.create_user(f"spawn-{tag}@example.org")
            user = str(owner.id)
            await engines.storage.create_container(user, "images")
            images = {}
            for label, size in (("small", args.small_mib * MiB), ("large", args.large_gib * GiB)):
                path = root / f"{label}.raw"
                await asyncio.to_thread(ext4_image, path, size)
                began = time.monotonic()
                await engines.storage.put_object(user, "images", path.name, chunks(path))
                image = await engines.images.register(
                    user, f"pithos://{user}/images/{path.name}", label, disk_format="raw",
                    properties={"OSFAMILY": "linux"},
                )  # fmt: skip
                path.unlink()
                images[label] = str(image.id)
                print(f"{label} image: {size / MiB:.0f} MiB registered in "
                      f"{time.monotonic() - began:.1f} s")  # fmt: skip
            flavor = await compute.create_flavor(1, 128, args.large_gib + 1, "ext_nefos")
            times: dict[str, list[float]] = {"small": [], "large": []}
            for run in range(args.runs):
                for label in ("small", "large") if run % 2 == 0 else ("large", "small"):
                    began = time.monotonic()
                    view, _ = await compute.create_server(
                        user, f"{label}-{run}", images[label], flavor.id
                    )
                    made.append(view.server.id)
                    await until(engines, user, view.server.id, "ACTIVE", 600)
                    times[label].append(time.monotonic() - began)
                    print(f"run {run + 1} {label}: create -> ACTIVE {times[label][-1]:.2f} s")
                    await compute.delete_server(user, view.server.id)
                    await until(engines, user, view.server.id, "DELETED", 300)
                    made.remove(view.server.id)
            small, large = (statistics.median(times[k]) for k in ("small", "large"))
            print(
                f"median create -> ACTIVE: {args.small_mib} MiB image {small:.2f} s, "
                f"{args.large_gib} GiB image {large:.2f} s, large/small {large / small:.3f}"
            )
            ratios = [b / a for a, b in zip(times["small"], times["large"], strict=True)]
            print("pairwise large/small: " + ", ".join(f"{r:.3f}" for r in ratios))
        finally:
            for server_id in made:  # a run cut short: its instance goes by hand
                await asyncio.to_thread(remove_instance, env, server_id)
            eventd.cancel()
            server.should_exit = True
            await asyncio.gather(eventd, api, return_exceptions=True)
            await engines.close()
            volumed.send_signal(signal.SIGTERM)
            await asyncio.to_thread(volumed.wait, 60)
            shutil.rmtree(extstorage, ignore_errors=True)
            if not had_os:
                shutil.rmtree(os_folder, ignore_errors=True)
            shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="creates of each image")
    parser.add_argument("--large-gib", type=int, default=10)
    parser.add_argument("--small-mib", type=int, default=10)
    asyncio.run(main(parser.parse_args()))
