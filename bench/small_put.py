"""Small object PUTs through the whole app in process (no network), on SQLite: what each
write's transaction costs, with nothing else in the way.

    .venv/bin/python bench/small_put.py [--count 2000] [--size 1024]

Prints the seconds the PUTs took. Run it under ``farm-bench`` to compare two trees
(``PYTHONPATH=<tree>/src``), as bench/RESULTS.md does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

import httpx

from nefos.core.config import Settings, ensure_data_dir
from nefos.core.migrate import upgrade
from nefos.server.app import create_app
from nefos.server.engines import Engines


async def run(directory: Path, url: str, count: int, size: int) -> float:
    settings = ensure_data_dir(
        Settings(data_dir=directory / "data", database_url=url, log_level="WARNING")
    )
    engines = Engines(settings)
    await engines.start()
    try:
        user, token = await engines.identity.create_user("bench@example.org")
        app = create_app(settings, engines)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        base = f"/object-store/v1/{user.id}/bench"
        auth = {"X-Auth-Token": token}
        async with httpx.AsyncClient(transport=transport, base_url=settings.base_url) as http:
            await http.put(base, headers=auth)
            started = time.perf_counter()
            for i in range(count):
                response = await http.put(f"{base}/o{i}", headers=auth, content=os.urandom(size))
                assert response.status_code == 201, response.text
            return time.perf_counter() - started
    finally:
        await engines.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="nefos-small-put-", dir="/var/tmp"))
    url = f"sqlite+aiosqlite:///{directory / 'nefos.db'}"
    upgrade(url)  # runs its own event loop
    try:
        took = asyncio.run(run(directory, url, args.count, args.size))
    finally:
        shutil.rmtree(directory)
    print(f"{took:.3f} s for {args.count} PUTs")


if __name__ == "__main__":
    main()
