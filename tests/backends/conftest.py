"""A real single-node Google Ganeti, brought up once per session by ``scripts/ganeti-dev.sh``.

The script installs Debian's packages and runs the cluster inside network and UTS namespaces
of its own (the machine's hostname, /etc/hosts and eth0 stay untouched); RAPI is reachable
from here at https://198.18.0.10:5080. In CI (``CI=true``) Ganeti is part of the suite: any
problem bringing it up is an error. Elsewhere the Ganeti tests skip, saying why, when we are
not root, the packages cannot be installed or the cluster does not come up.

A cluster that is already up (``scripts/ganeti-dev.sh start`` by hand) is used as it is and
left running; one that the session starts, it stops.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import secrets
import signal
import ssl
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from nefos.backends import base
from nefos.backends.ops import RemoveInstance, ShutdownInstance
from nefos.compute.models import Backend
from nefos.server.engines import Engines
from tests.conftest import NEFOS

IN_CI = os.environ.get("CI") == "true"
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ganeti-dev.sh"
FINAL_JOB_STATUSES = {"success", "error", "canceled"}
START_LOCK = Path("/tmp/nefos-ganeti-dev.lock")
TIMINGS = pytest.StashKey[list[tuple[str, float]]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[TIMINGS] = []


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    timings = config.stash.get(TIMINGS, [])
    if timings:
        terminalreporter.section("Ganeti timings")
        for what, seconds in timings:
            terminalreporter.write_line(f"{what:<40} {seconds:7.2f} s")


def _unavailable(reason: str) -> None:
    """Fail in CI, where a broken Ganeti is a broken suite; skip anywhere else."""
    if IN_CI:
        pytest.fail(f"Ganeti is required in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _script(*args: str, timeout: float = 300, check: bool = True) -> str:
    done = subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if check and done.returncode:
        raise RuntimeError(f"ganeti-dev.sh {' '.join(args)}: {done.stderr.strip()[-3000:]}")
    return done.stdout if not done.returncode else ""


def _parse_env(text: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and line[:1].isupper()
    )


@dataclass(frozen=True)
class Ganeti:
    """How to reach the cluster: what ``ganeti-dev.sh start`` prints as KEY=VALUE lines."""

    rapi_url: str
    rapi_user: str
    rapi_password: str
    rapi_cert: Path
    node: str
    cluster: str
    bridge: str
    private_bridge: str
    kvm_kernel: str
    kvm_initrd: str
    file_storage_dir: Path
    queue_dir: Path = Path("/var/lib/ganeti/queue")
    kvm_ctrl_dir: Path = Path("/var/run/ganeti/kvm-hypervisor/ctrl")

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Ganeti:
        return cls(
            rapi_url=env["RAPI_URL"],
            rapi_user=env["RAPI_USER"],
            rapi_password=env["RAPI_PASSWORD"],
            rapi_cert=Path(env["RAPI_CERT"]),
            node=env["NODE"],
            cluster=env["CLUSTER"],
            bridge=env["BRIDGE"],
            private_bridge=env["PRIVATE_BRIDGE"],
            kvm_kernel=env["KVM_KERNEL"],
            kvm_initrd=env["KVM_INITRD"],
            file_storage_dir=Path(env["FILE_STORAGE_DIR"]),
        )

    def exec(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a command inside the cluster's namespaces (e.g. ``gnt-instance list``)."""
        return subprocess.run(
            ["bash", str(SCRIPT), "exec", *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def ssl_context(self) -> ssl.SSLContext:
        """Trust exactly the cluster's self-signed certificate (its CN is not the address)."""
        context = ssl.create_default_context(cafile=str(self.rapi_cert))
        context.check_hostname = False
        return context


@contextmanager
def _one_at_a_time(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` across processes: two test processes (xdist workers,
    or two runs) never install or start the cluster at the same time, so a second one
    finds it up and leaves it to the first, which stops it."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def ganeti(pytestconfig: pytest.Config) -> Iterator[Ganeti]:
    """The cluster; under ``make test``'s workers, every test that uses it is in one
    ``xdist_group`` (tests/conftest.py), so one worker's session starts and stops it."""
    # setdefault: tests elsewhere (tests/ui) import this fixture without this conftest's hooks
    timings = pytestconfig.stash.setdefault(TIMINGS, [])
    if os.geteuid() != 0:
        _unavailable("the Ganeti tests install and run a Ganeti cluster: they need root")
    with _one_at_a_time(START_LOCK):
        started = time.monotonic()
        try:
            _script("install", timeout=900)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            _unavailable(f"cannot install Ganeti's Debian packages: {error}")
        timings.append(("ganeti-dev.sh install", time.monotonic() - started))
        already_up = _script("status", timeout=30, check=False)
        if not already_up:
            started = time.monotonic()
            try:
                env = _parse_env(_script("start", timeout=300))
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                _script("stop", timeout=120, check=False)  # whatever half came up
                _unavailable(f"the Ganeti cluster did not come up: {error}")
            timings.append(("ganeti-dev.sh start", time.monotonic() - started))
    if already_up:
        yield Ganeti.from_env(_parse_env(already_up))
        return
    try:
        yield Ganeti.from_env(env)
    finally:
        started = time.monotonic()
        _script("stop", timeout=120)
        timings.append(("ganeti-dev.sh stop", time.monotonic() - started))


@pytest.fixture(scope="session")
def rapi(ganeti: Ganeti) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=ganeti.rapi_url,
        auth=(ganeti.rapi_user, ganeti.rapi_password),
        verify=ganeti.ssl_context(),
        timeout=30,
    ) as client:
        yield client


@pytest.fixture
def timings(request: pytest.FixtureRequest) -> list[tuple[str, float]]:
    """Durations to report at the end of the run (``Ganeti timings``)."""
    return request.config.stash[TIMINGS]


def wait_for_job(rapi: httpx.Client, job_id: int | str, timeout: float = 120) -> dict[str, Any]:
    """Follow a job with ``GET /2/jobs/ID/wait`` (long polls) until it ends; its final state."""
    deadline = time.monotonic() + timeout
    previous_info: list[Any] | None = None
    previous_serial: int | None = None
    while time.monotonic() < deadline:
        response = rapi.request(
            "GET",
            f"/2/jobs/{job_id}/wait",
            json={
                "fields": ["status"],
                "previous_job_info": previous_info,
                "previous_log_serial": previous_serial,
            },
        )
        response.raise_for_status()
        change = response.json()
        if change:  # None: nothing changed within the server's wait
            previous_info = change["job_info"]
            for entry in change["log_entries"]:
                previous_serial = max(previous_serial or 0, entry[0])
            if previous_info[0] in FINAL_JOB_STATUSES:
                break
    job = rapi.get(f"/2/jobs/{job_id}")
    job.raise_for_status()
    result = job.json()
    if result["status"] not in FINAL_JOB_STATUSES:
        raise TimeoutError(f"job {job_id} still {result['status']} after {timeout}s")
    return result


def queue_file(ganeti: Ganeti, job_id: int | str) -> dict[str, Any]:
    """The job as luxid wrote it: ``queue/job-N``, or under ``queue/archive/`` once archived."""
    path = ganeti.queue_dir / f"job-{job_id}"
    if not path.exists():
        path = next(ganeti.queue_dir.glob(f"archive/*/job-{job_id}"))
    return json.loads(path.read_text())


@pytest.fixture
def database_url(sqlite_template: Path, tmp_path: Path) -> str:
    """SQLite only, for every test here: what is under test is the cluster's side, the
    provider and the bus between them, not the database (tests/compute covers both)."""
    path = tmp_path / "nefos.db"
    path.write_bytes(sqlite_template.read_bytes())
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def instance_name(rapi: httpx.Client) -> Iterator[str]:
    """A fresh name; the instance is forced off and removed afterwards, whatever happened."""
    name = f"snf-test-{uuid.uuid4().hex[:8]}"
    yield name
    force_remove(rapi, name)


def force_remove(rapi: httpx.Client, name: str) -> None:
    """Force an instance off and remove it, if it is there (through RAPI)."""
    if rapi.get(f"/2/instances/{name}").status_code != 200:
        return
    for method, path, body in [
        ("PUT", f"/2/instances/{name}/shutdown", {"timeout": 0}),
        ("DELETE", f"/2/instances/{name}", None),
    ]:
        job = rapi.request(method, path, json=body)
        if job.status_code == 200:
            wait_for_job(rapi, job.json())


# -- what the tests of compute over Ganeti share ---------------------------------------------


async def wait_until(condition: Callable[[], bool], within: float = 30.0) -> bool:
    """Poll ``condition``; whether it came true in time."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def number_servers_apart(engines: Engines, block: int) -> int:
    """Start this test's server ids at a random point of ``block`` hundred millions:
    ids name the instances (``snf-<id>``) on the cluster that every run shares."""
    first_id = block * 10**8 + secrets.randbelow(10**8)
    async with engines.db.transaction() as s:
        await s.execute(
            text("INSERT INTO sqlite_sequence (name, seq) VALUES ('compute_servers', :seq)"),
            {"seq": first_id - 1},
        )
    return first_id


async def remove_leftovers(engines: Engines, server_ids: list[int]) -> None:
    """Whatever a failed test left of its servers on the shared cluster (through nefos)."""
    if not server_ids:
        return
    cluster = engines.compute.cluster(await engines.compute.backend("ganeti1"))
    ours = {base.instance_name(i) for i in server_ids}
    for name in set(await cluster.instances()) & ours:
        await cluster.wait(await cluster.submit(ShutdownInstance(name, 0)), within=60)
        await cluster.wait(await cluster.submit(RemoveInstance(name)), within=60)


async def add_ganeti_backend(engines: Engines, ganeti: Ganeti, name: str = "ganeti1") -> Backend:
    return await engines.compute.add_backend(
        name,
        "ganeti",
        ganeti.rapi_url,
        ganeti.rapi_user,
        ganeti.rapi_password,
        default_link=ganeti.bridge,
        certificate=str(ganeti.rapi_cert),  # the PEM file's path or text
    )


@dataclass
class Tenant:
    """A user with an image and a flavor to create servers from."""

    user: str
    image_id: str
    flavor_id: int


async def tenant(engines: Engines, prefix: str, disk: bytes = b"disk") -> Tenant:
    owner, _ = await engines.identity.create_user(f"{prefix}-{uuid.uuid4().hex[:6]}@example.org")
    user = str(owner.id)
    await engines.storage.create_container(user, "images")
    await engines.storage.put_object(user, "images", "disk", one_chunk(disk))
    image = await engines.images.register(user, f"pithos://{user}/images/disk", "Disk")
    flavor = await engines.compute.create_flavor(1, 128, 1, "file")
    return Tenant(user, str(image.id), flavor.id)


def log_text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


async def start_eventd(
    log: Path,
    bus: str,
    cluster: str = "ganeti1",
    exchange: str | None = None,
    replay_minutes: float = 0,
) -> asyncio.subprocess.Process:
    """``nefos ganeti eventd`` in its own process, as on a master; returns once watching.
    The bus URL has a password: it goes in the environment, never the command line."""
    starts = log_text(log).count("watching")
    options = ["--exchange", exchange] if exchange else []
    with log.open("ab") as sink:
        process = await asyncio.create_subprocess_exec(
            NEFOS,
            *("ganeti", "eventd", "--cluster", cluster, *options),
            *("--replay-minutes", str(replay_minutes), "--log-level", "DEBUG"),
            env={**os.environ, "NEFOS_BUS_URL": bus},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=sink,
        )
    started = await wait_until(lambda: log_text(log).count("watching") > starts, within=20)
    if not started or process.returncode is not None:
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise AssertionError(f"eventd did not start:\n{log_text(log)}")
    return process


async def stop_eventd(process: asyncio.subprocess.Process) -> int:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(process.wait(), 15)
