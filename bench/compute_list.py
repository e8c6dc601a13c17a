"""``GET /compute/v2.1/servers/detail`` with 1,000 servers (target: p50 at most 50 ms).

Starts ``nefos up`` (one process, embedded defaults) on a fresh data directory, creates
1,000 servers for its admin through the Compute API (the embedded backend builds them
with no delay), waits until all are ACTIVE, then times sequential detailed listings.

    python bench/compute_list.py [--servers 1000] [--requests 50]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

NEFOS = str(Path(sys.executable).with_name("nefos"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch) / "cloud"
        data_dir.mkdir()
        (data_dir / "nefos.toml").write_text(
            "[compute]\nembedded_delay = 0.0\nreconcile_seconds = 0\n"
            f'[quota_defaults]\n"cyclades.vm" = {args.servers}\n'
            f'"cyclades.total_cpu" = {args.servers}\n"cyclades.cpu" = {args.servers}\n'
            f'"cyclades.total_ram" = {args.servers << 30}\n"cyclades.ram" = {args.servers << 30}\n'
            f'"cyclades.disk" = {args.servers * 20 << 30}\n'
        )
        port = 18000 + os.getpid() % 1000
        output = Path(scratch) / "nefos.out"
        with output.open("wb") as sink:
            process = subprocess.Popen(
                [NEFOS, "up", "--data-dir", str(data_dir), "--port", str(port)],
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        try:
            run(f"http://127.0.0.1:{port}", output, args.servers, args.requests)
        finally:
            process.terminate()
            process.wait(timeout=30)


def run(url: str, output: Path, count: int, requests: int) -> None:
    for _ in range(300):
        try:
            if httpx.get(f"{url}/identity/v3", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    token = next(
        line.split(":", 1)[1].strip()
        for line in output.read_text().splitlines()
        if line.strip().startswith("token:")
    )
    auth = {"X-Auth-Token": token}
    with httpx.Client(base_url=url, headers=auth, timeout=60) as http:
        image_id = http.post(
            "/image/v2/images",
            json={"name": "bench", "disk_format": "raw", "container_format": "bare"},
        ).json()["id"]
        http.put(
            f"/image/v2/images/{image_id}/file",
            content=b"disk",
            headers={"Content-Type": "application/octet-stream"},
        )
        body = {"server": {"name": "b", "imageRef": image_id, "flavorRef": "1"}}
        started = time.perf_counter()

        def create(index: int) -> int:
            with httpx.Client(base_url=url, headers=auth, timeout=60) as own:
                reply = own.post("/compute/v2.1/servers", json=body)
                return reply.status_code

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(create, range(count)))
        assert codes.count(202) == count, {c: codes.count(c) for c in set(codes)}
        while True:
            servers = http.get("/compute/v2.1/servers/detail").json()["servers"]
            if all(s["status"] == "ACTIVE" for s in servers):
                break
            time.sleep(0.5)
        built = time.perf_counter() - started
        times = []
        for _ in range(requests):
            begin = time.perf_counter()
            reply = http.get("/compute/v2.1/servers/detail")
            times.append((time.perf_counter() - begin) * 1000)
            assert reply.status_code == 200 and len(reply.json()["servers"]) == count
    times.sort()
    print(f"{count} servers created through the API and ACTIVE in {built:.1f} s")
    print(
        f"GET /servers/detail ({count} servers): p50 {statistics.median(times):.1f} ms, "
        f"p90 {times[int(len(times) * 0.9)]:.1f} ms, max {times[-1]:.1f} ms "
        f"over {requests} requests (target p50 <= 50 ms)"
    )


if __name__ == "__main__":
    main()
