"""Compute's server listing without HTTP: what the database part of ``GET
/servers/detail`` costs for 1,000 servers with metadata and tags (issue 19 moved that
work into SQL). One process, SQLite in a fresh data directory, rows written directly.

    python bench/compute_list_db.py [--servers 1000] [--requests 50]

It reads ``compute.servers(user)``, which every nefos since the first compute has, so
the same file times an older checkout too (run it with that checkout's Python).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from nefos.compute.models import Server, ServerMetadata, ServerTag
from nefos.core.config import Settings, ensure_data_dir
from nefos.core.migrate import upgrade

try:
    from nefos.server.engines import Engines
except ImportError:  # before the composition root left core
    from nefos.core.engines import Engines  # type: ignore[no-redef]


async def run(count: int, requests: int, scratch: str) -> None:
    url = f"sqlite+aiosqlite:///{scratch}/nefos.db"
    settings = ensure_data_dir(
        Settings(data_dir=Path(scratch), database_url=url, log_level="WARNING")
    )
    engines = Engines(settings)
    await engines.start()
    try:
        flavor = (await engines.compute.ensure_default_flavors())[0]
        user = str(uuid.uuid4())
        async with engines.db.session() as s, s.begin():
            rows = [
                Server(
                    name=f"s{n}", user_id=user, project=user, flavor_id=flavor.id,
                    image_id=str(uuid.uuid4()), operstate="STARTED",
                )
                for n in range(count)
            ]  # fmt: skip
            s.add_all(rows)
            await s.flush()
            for row in rows:
                s.add(ServerMetadata(server_id=row.id, key="role", value="web"))
                s.add(ServerTag(server_id=row.id, tag="bench"))
        times = []
        for _ in range(requests):
            began = time.perf_counter()
            views = await engines.compute.servers(user)
            times.append((time.perf_counter() - began) * 1000)
            assert len(views) == count
    finally:
        await engines.close()
    times.sort()
    print(
        f"compute.servers ({count} servers, metadata and tags): p50 "
        f"{statistics.median(times):.1f} ms, p90 {times[int(len(times) * 0.9)]:.1f} ms "
        f"over {requests} calls"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        upgrade(f"sqlite+aiosqlite:///{scratch}/nefos.db")  # runs its own event loop
        asyncio.run(run(args.servers, args.requests, scratch))


if __name__ == "__main__":
    main()
