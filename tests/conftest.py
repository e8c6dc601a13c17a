"""Shared fixtures: a migrated database per test (SQLite always, PostgreSQL when
``NEFOS_TEST_DATABASE_URL`` is set), settings, engines, an in-process app client, and a
real ``nefos up`` server for end-to-end tests with real clients.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import asyncpg
import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy.engine import make_url

from nefos.core.config import Settings, ensure_data_dir
from nefos.core.db import Database
from nefos.core.migrate import upgrade
from nefos.identity import service as identity_service
from nefos.identity.service import Identity
from nefos.server.app import create_app
from nefos.server.engines import Engines
from tests.broker import private_broker  # noqa: F401 (a RabbitMQ that tests may restart)

PG_URL = os.environ.get("NEFOS_TEST_DATABASE_URL")
IN_CI = os.environ.get("CI") == "true"
NEFOS = str(Path(sys.executable).with_name("nefos"))

DATABASES = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(not PG_URL, reason="NEFOS_TEST_DATABASE_URL is not set"),
    ),
]


# -- running in parallel (pytest-xdist, ``make test`` runs ``-n 2 --dist loadgroup``) ----------

# Tests that share one thing that is not safe to share, or costly to have twice, run on
# one worker, together: the Ganeti cluster of the machine (one session starts it, and
# stops it at its end), the session's throwaway Ceph, and Chromium (with the ``nefos up``
# of its module). Every other test goes wherever a worker is free, except that a module
# whose tests share a module-scoped fixture that starts a process (a ``nefos up``, a
# private RabbitMQ node, the fuzzer's deployment) keeps them together, so it starts once.
SHARED_GROUPS = {"ganeti": "ganeti", "rapi": "ganeti", "ceph_conf": "ceph", "browser": "browser"}
MODULE_GROUPED = {"server", "private_broker", "fuzzed"}


def xdist_group_of(item: pytest.Item) -> str | None:
    """The ``xdist_group`` an item must run in, if any (see above)."""
    names = set(getattr(item, "fixturenames", ()))
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "rados" in params.values():  # the store fixtures ask for Ceph by their parameter
        names.add("ceph_conf")
    for fixture, group in SHARED_GROUPS.items():
        if fixture in names:
            return group
    shared = sorted(names & MODULE_GROUPED)
    if not shared:
        return None
    # A parametrized fixture (the fuzzer's world per database) is one group per value.
    values = [str(params[name]) for name in shared if name in params]
    return "::".join([item.nodeid.split("::", 1)[0], *values])


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # First: xdist's worker reads the marks in its own hook of the same name (to give each
    # item its group's suffix), and that hook, registered later, would otherwise run first.
    for item in items:
        group = xdist_group_of(item)
        if group is not None and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """On an xdist worker, every grouped item must carry its group in its id (that is all
    the scheduler sees): otherwise two workers would share the Ganeti cluster, and the one
    that started it would stop it under the other."""
    config = session.config
    if not hasattr(config, "workerinput") or not config.getvalue("loadgroup"):
        return
    lost = [
        item.nodeid
        for item in session.items
        if item.get_closest_marker("xdist_group") and "@" not in item.nodeid
    ]
    if lost:
        raise pytest.UsageError(f"xdist groups not applied (pytest-xdist too old?): {lost[:3]}")


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """argon2id at its lowest cost for the in-process services: the default costs a
    quarter of a second of CPU per hash or login, by design, and the suite makes
    hundreds. Verifying reads the cost from the stored hash, so nothing else changes;
    ``nefos up`` servers started by the tests keep the default."""
    with pytest.MonkeyPatch.context() as patch:
        cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
        patch.setattr(identity_service, "_hasher", cheap)
        yield


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "nefos.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


def _pg_admin_dsn() -> str:
    assert PG_URL is not None
    return make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_url_for(name: str) -> str:
    assert PG_URL is not None
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


async def _pg_execute(*statements: str) -> None:
    connection = await asyncpg.connect(_pg_admin_dsn())
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


class PgCopies:
    """Fresh copies of the session's migrated template database, made ahead of need.

    ``CREATE DATABASE ... TEMPLATE`` writes the whole copy (catalogs included, ~10 MB)
    to the WAL and waits for it on disk: most of a second on a busy machine, and the
    suite takes hundreds of copies. One thread makes the next ``AHEAD`` copies and drops
    used ones while tests run, so a test waits only when it outruns that thread; each
    copy is still made from the template and used by one test only. Commits in a copy
    do not wait for the server's WAL flush (``synchronous_commit = off``): that only
    matters if PostgreSQL itself crashes, which no test does, and what one connection
    commits is seen by the next exactly as before.
    """

    AHEAD = 2

    def __init__(self, template: str) -> None:
        self.template = template
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-copies")
        self.coming: deque[Future[str]] = deque()
        self.drops: list[Future[None]] = []
        self._top_up()

    def _make(self) -> str:
        name = f"nefos_test_{uuid.uuid4().hex[:12]}"
        asyncio.run(
            _pg_execute(
                f"CREATE DATABASE {name} TEMPLATE {self.template}",
                f"ALTER DATABASE {name} SET synchronous_commit = off",
            )
        )
        return name

    def _top_up(self) -> None:
        while len(self.coming) < self.AHEAD:
            self.coming.append(self.worker.submit(self._make))

    def take(self) -> str:
        """A fresh copy's name (the caller ``give_back``s it when done)."""
        name = self.coming.popleft().result()
        self._top_up()
        return name

    def give_back(self, name: str) -> None:
        """Drop a used copy, in the background (``close`` reports a drop that failed)."""
        self.drops.append(self.worker.submit(self._drop, name))

    @staticmethod
    def _drop(name: str) -> None:
        asyncio.run(_pg_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))

    def close(self) -> None:
        """Drop what was made ahead and wait for every drop to be done."""
        while self.coming:
            future = self.coming.popleft()
            with suppress(Exception):  # a copy that failed to be made has nothing to drop
                self.give_back(future.result())
        self.worker.shutdown(wait=True)
        for drop in self.drops:
            drop.result()


@pytest.fixture(scope="session")
def pg_copies() -> Iterator[PgCopies]:
    name = f"nefos_template_{os.getpid()}"
    asyncio.run(_pg_execute(f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"))
    upgrade(_pg_url_for(name))
    copies = PgCopies(name)
    yield copies
    copies.close()
    asyncio.run(_pg_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@contextmanager
def fresh_database(request: pytest.FixtureRequest, directory: Path) -> Iterator[str]:
    """A freshly migrated, empty database of the kind ``request.param`` names (a SQLite
    file in ``directory``, or a PostgreSQL database dropped afterwards)."""
    if request.param == "sqlite":
        path = directory / "nefos.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    copies: PgCopies = request.getfixturevalue("pg_copies")
    name = copies.take()
    try:
        yield _pg_url_for(name)
    finally:
        copies.give_back(name)


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated, empty database of each kind the run can reach."""
    with fresh_database(request, tmp_path) as url:
        yield url


async def run_nefos(
    settings: Settings, *args: str, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """An operator command against the deployment of ``settings`` (without blocking);
    ``input`` is its standard input (else none: not a terminal)."""
    env = {
        **os.environ,
        "NEFOS_DATA_DIR": str(settings.data_dir),
        "NEFOS_DATABASE_URL": settings.database,
    }
    return await asyncio.to_thread(
        subprocess.run,
        [NEFOS, *args],
        env=env,
        input=input or "",
        capture_output=True,
        text=True,
        check=check,
        timeout=60,
    )


# One in-process command at a time: CliRunner swaps the process's sys.stdout/stderr.
_CLI_LOCK = threading.Lock()


def nefos_in_process(
    *args: str, env: Mapping[str, str | None], check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``nefos *args`` in this process, with ``env`` over ``os.environ`` (None unsets):
    the same command, exit code and output as the installed script, without paying a
    process start (a second or more under load) per command. Tests keep at least one
    real process per command group to prove the script works end to end.

    Call it with no event loop running (the command runs its own): ``invoke_nefos``
    from async tests.
    """
    from typer.testing import CliRunner

    from nefos.cli.main import app

    env = {**env, "COLUMNS": "1000"}  # as wide as piped output, even under `pytest -s`
    root = logging.getLogger()
    with _CLI_LOCK:
        # The command configures logging for its process; this process's other tests
        # must not inherit it (root at INFO made httpx log every URL into caplog).
        level, handlers = root.level, list(root.handlers)
        try:
            result = CliRunner().invoke(app, list(args), env=env, input=input)
        finally:
            root.setLevel(level)
            root.handlers[:] = handlers
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        # What the process would have printed before exiting 1.
        stderr += "".join(traceback.format_exception(result.exception))
    done = subprocess.CompletedProcess([NEFOS, *args], result.exit_code, result.stdout, stderr)
    if check:
        done.check_returncode()
    return done


async def invoke_nefos(
    settings: Settings, *args: str, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``run_nefos`` in process (``nefos_in_process``), in a thread: the command calls
    ``asyncio.run`` itself, on its own engines, as the process would."""
    env = {"NEFOS_DATA_DIR": str(settings.data_dir), "NEFOS_DATABASE_URL": settings.database}
    return await asyncio.to_thread(
        partial(nefos_in_process, *args, env=env, check=check, input=input)
    )


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return ensure_data_dir(
        Settings(data_dir=tmp_path / "data", database_url=database_url, log_level="WARNING")
    )


@pytest.fixture
async def engines(settings: Settings) -> AsyncIterator[Engines]:
    engines = Engines(settings)
    await engines.start()
    yield engines
    await engines.close()


@pytest.fixture
def db(engines: Engines) -> Database:
    return engines.db


@pytest.fixture
def identity(engines: Engines) -> Identity:
    return engines.identity


@pytest.fixture
async def client(settings: Settings, engines: Engines) -> AsyncIterator[httpx.AsyncClient]:
    """The whole app in process, on the same engines as the other fixtures."""
    app = create_app(settings, engines)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url=settings.base_url) as http:
        yield http


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    output: Path
    admin_email: str
    admin_password: str
    admin_token: str
    admin_uuid: str

    def env(self) -> dict[str, str]:
        return {**os.environ, "NEFOS_DATA_DIR": str(self.data_dir)}

    def nefos(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run an operator command against this server's deployment (``input``: its
        standard input, else none)."""
        return subprocess.run(
            [NEFOS, *args],
            env=self.env(),
            input=input or "",
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def invoke(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``nefos`` in process (``nefos_in_process``), as ``nefos`` runs it: another
        process than the server's all the same."""
        env = {"NEFOS_DATA_DIR": str(self.data_dir)}
        return nefos_in_process(*args, env=env, check=check, input=input)


def wait_until_up(process: subprocess.Popen[bytes], url: str, output: Path | None = None) -> None:
    """Wait for a started server to answer its identity root, or fail with its output."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{output.read_text() if output else ''}")
        try:
            if httpx.get(f"{url}/identity/v3", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server did not answer:\n{output.read_text() if output else ''}")


def _start_server(tmp_path: Path, extra_env: dict[str, str] | None = None) -> Server:
    port = free_port()
    data_dir = tmp_path / "cloud"
    output = tmp_path / "nefos-up.out"
    env = {**os.environ, **(extra_env or {})}
    env.pop("NEFOS_DATA_DIR", None)
    env.pop("NEFOS_CONFIG", None)
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [NEFOS, "up", "--data-dir", str(data_dir), "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
    url = f"http://127.0.0.1:{port}"
    wait_until_up(process, url, output)
    deadline = time.monotonic() + 10  # the credentials follow the server's first answer
    while "  token:" not in output.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    printed = dict(
        line.strip().split(":", 1)
        for line in output.read_text().splitlines()
        if line.startswith("  ") and ":" in line
    )
    return Server(
        url=url,
        data_dir=data_dir,
        process=process,
        output=output,
        admin_email=printed["e-mail"].strip(),
        admin_password=printed["password"].strip(),
        admin_token=printed["token"].strip(),
        admin_uuid=printed["uuid"].strip(),
    )


def _stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


# Public names for test modules that start a server of their own (with settings in env).
start_server = _start_server
stop_server = _stop_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``nefos up`` as a user runs it, on a free port and its own data directory."""
    running = _start_server(tmp_path_factory.mktemp("server"))
    yield running
    _stop_server(running)
