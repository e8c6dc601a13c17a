"""IP allocations per second under 50 concurrent clients (issue 20, Performance), on
PostgreSQL, and on SQLite for comparison.

    python bench/ip_allocations.py [--clients 50] [--ports 2000] [--runs 5] [--prefix 16]
        [--pg postgresql://postgres@127.0.0.1:5432/postgres] [--only postgresql|sqlite]

Each database is a throwaway one, migrated first and dropped after (PostgreSQL: a
database made on the server ``--pg`` names; SQLite: a file in a temporary directory).
Each run makes a fresh private MAC_FILTERED network with one IPv4 subnet (a /16 by
default: 65,533 free addresses, so the pool never runs short), then ``--clients``
asyncio tasks create ports on it until ``--ports`` exist, each port one allocation. They
call ``NetworkService.create_port``, the service call behind ``POST /ports``, in one
process: the figure is the database and the pool (lock the subnet's pool row, take the
lowest free address, write the port and its address), without HTTP, JSON or auth in
front. The engines are ``nefos up``'s, so PostgreSQL uses SQLAlchemy's default pool (5
connections and 10 more on demand) and SQLite its group commit. Every run checks that no
address was given twice, both in the answers and in the database, and the median of the
runs is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy import func, select

from nefos.core.config import Settings, ensure_data_dir
from nefos.core.migrate import upgrade
from nefos.network.models import IpAddress
from nefos.network.service import Caller
from nefos.server.engines import Engines


async def one_run(engines: Engines, clients: int, ports: int, prefix: int) -> float:
    """Allocations per second of one run, on a network of its own."""
    # Its own user, so the private network quota (5 per user) never stops the runs.
    user, _ = await engines.identity.create_user(f"bench-{uuid.uuid4().hex[:8]}@example.org")
    caller = Caller(str(user.id))
    net = engines.network
    network = await net.create_network(caller, "bench", "MAC_FILTERED")
    cidr = ipaddress.ip_network(f"10.0.0.0/{prefix}")
    await net.create_subnet(caller, str(network.id), str(cidr))
    left = ports
    given: list[str] = []

    async def client() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            port = await net.create_port(caller, str(network.id))
            given.extend(a.address for a in port.addresses)

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - began
    assert len(given) == ports, (len(given), ports)
    assert len(set(given)) == ports, "an address was given twice"
    async with engines.db.session() as s:
        rows = await s.scalar(
            select(func.count()).where(IpAddress.network_id == network.id).select_from(IpAddress)
        )
        distinct = await s.scalar(
            select(func.count(func.distinct(IpAddress.address))).where(
                IpAddress.network_id == network.id
            )
        )
    assert rows == distinct == ports, (rows, distinct, ports)
    return ports / elapsed


async def measure(url: str, scratch: Path, args: argparse.Namespace) -> list[float]:
    settings = ensure_data_dir(Settings(data_dir=scratch, database_url=url, log_level="WARNING"))
    engines = Engines(settings)
    await engines.start()
    try:
        await one_run(engines, args.clients, min(200, args.ports), args.prefix)  # warm-up
        return [
            await one_run(engines, args.clients, args.ports, args.prefix) for _ in range(args.runs)
        ]
    finally:
        await engines.close()


def report(kind: str, rates: list[float], args: argparse.Namespace) -> None:
    shown = ", ".join(f"{r:,.0f}" for r in rates)
    print(
        f"{kind}: median {statistics.median(rates):,.0f} allocations/s "
        f"({args.clients} clients, {args.ports} ports per run, /{args.prefix}; runs: {shown})",
        flush=True,
    )


async def _pg(admin: str, sql: str) -> None:
    connection = await asyncpg.connect(admin)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def on_postgresql(args: argparse.Namespace, scratch: Path) -> None:
    name = f"nefos_bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg(args.pg, f'CREATE DATABASE "{name}"'))
    try:
        base = args.pg.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        url = f"{base}/{name}"
        upgrade(url)  # runs its own event loop
        report("PostgreSQL", asyncio.run(measure(url, scratch, args)), args)
    finally:
        asyncio.run(_pg(args.pg, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def on_sqlite(args: argparse.Namespace, scratch: Path) -> None:
    url = f"sqlite+aiosqlite:///{scratch}/nefos.db"
    upgrade(url)
    report("SQLite", asyncio.run(measure(url, scratch, args)), args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--ports", type=int, default=2000, help="allocations per run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--prefix", type=int, default=16, help="the subnet's prefix length")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--only", choices=["postgresql", "sqlite"])
    args = parser.parse_args()
    free = 2 ** (32 - args.prefix) - 3  # less the network, broadcast and gateway addresses
    if args.ports > free:
        parser.error(f"a /{args.prefix} has {free} free addresses, fewer than --ports")
    for kind, run in (("postgresql", on_postgresql), ("sqlite", on_sqlite)):
        if args.only in (None, kind):
            with tempfile.TemporaryDirectory() as scratch:
                run(args, Path(scratch))


if __name__ == "__main__":
    main()
